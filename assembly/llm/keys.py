"""API keys kept out of everything we store: the scrubber and the registry of key values it removes.

Profiles only name environment variables, but provider SDKs echo keys in error
messages and may pick one up from a provider's default variable by themselves. So
every configured key value is registered here, and every text that may reach a
transcript, a log or the terminal goes through `scrub`. The registry is
process-wide on purpose: a key must be scrubbed whichever run, sweep job or check
registered it.
"""

from __future__ import annotations

import os
import re
import threading

from assembly.llm.profiles import ModelProfile

_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
# Shapes of provider keys, scrubbed even if they were never registered (e.g. a key
# litellm picked up from a provider's default env var).
_KEY_SHAPES = re.compile(r"\b(?:sk|gsk|xai|hf|pk)[-_][A-Za-z0-9_\-]{8,}|AIza[A-Za-z0-9_\-]{20,}")
_BEARER = re.compile(r"(Bearer\s+)\S+", re.IGNORECASE)
# Environment variables whose values are keys (registered before any call).
_SECRET_ENV = re.compile(r"(API_KEY|_TOKEN|_SECRET|_SECRET_KEY)$")


def register_secret(value: str | None) -> None:
    """Remember a key value so that `scrub` removes it from any text we store."""
    if value and len(value) >= 6:
        with _SECRETS_LOCK:
            _SECRETS.add(value)


def register_profile_secret(profile: ModelProfile) -> None:
    """Register the value of the profile's key variable, if it is set."""
    if profile.api_key_env:
        register_secret(os.environ.get(profile.api_key_env))


def register_env_secrets() -> None:
    """Register every key-like environment value, so that even a key a provider SDK
    picks up by itself cannot reach a transcript or a log."""
    for name, value in os.environ.items():
        if _SECRET_ENV.search(name.upper()):
            register_secret(value)


def scrub(text: str, limit: int = 300) -> str:
    """Text safe to log: registered keys and key-shaped tokens removed, truncated."""
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, "[REDACTED]")
    text = _KEY_SHAPES.sub("[REDACTED]", text)
    text = _BEARER.sub(r"\1[REDACTED]", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
