"""API keys kept out of everything we store: registering the keys the LLM layer knows of.

Profiles only name environment variables, but provider SDKs echo keys in error
messages and may pick one up from a provider's default variable by themselves. So
every configured key value, and every credential written into an `api_base`, is
registered with the process-wide scrubber (`core.redaction`), which every writer and
the terminal apply at their boundary. The registry is process-wide on purpose: a
key must be scrubbed whichever run, sweep job or check registered it.
"""

from __future__ import annotations

import os
import re

from assembly.core.redaction import register_secret, register_url_credentials, scrub
from assembly.llm.profiles import ModelProfile

__all__ = ["register_env_secrets", "register_profile_secret", "register_secret", "scrub"]

# Environment variables whose values are keys (registered before any call).
_SECRET_ENV = re.compile(r"(API_KEY|_TOKEN|_SECRET|_SECRET_KEY)$")


def register_profile_secret(profile: ModelProfile) -> None:
    """Register the value of the profile's key variable, if it is set, and any
    credentials written into its `api_base`."""
    if profile.api_key_env:
        register_secret(os.environ.get(profile.api_key_env))
    register_url_credentials(profile.api_base)


def register_env_secrets() -> None:
    """Register every key-like environment value, so that even a key a provider SDK
    picks up by itself cannot reach a transcript or a log."""
    for name, value in os.environ.items():
        if _SECRET_ENV.search(name.upper()):
            register_secret(value)
