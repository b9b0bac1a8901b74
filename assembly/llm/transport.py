"""The transport: the provider client that puts a profile's requests on the wire.

One function, `provider_client`, decides how a request reaches a server for each
client path: autogen-ext's OpenAI client over a shared httpx pool, or our litellm
client. Everything above it (rate limits, cache, retries) is the same for both, so
a leaner HTTP path changes this module only. It also keeps keys where they belong:
a keyless local server gets a placeholder, never a real key from the environment.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from autogen_core.models import ChatCompletionClient, ModelInfo

from assembly.llm.keys import register_profile_secret
from assembly.llm.litellm_client import DEFAULT_MODEL_INFO, LiteLLMChatCompletionClient
from assembly.llm.profiles import ModelProfile

# Connections one HTTP client keeps open. httpcore scans its whole connection pool
# for every request it places (encode/httpx#3215), so one pool of hundreds of
# connections spends seconds of CPU per round; a profile allowed more concurrent
# requests gets several clients (shards) instead, each with a small pool. They share
# the profile's rate limiter and response cache.
CONNECTIONS_PER_CLIENT = 16


def shards(profile: ModelProfile) -> tuple[int, int]:
    """How many provider clients a run makes for a profile, and each one's ``pool_size``."""
    count = -(-profile.max_concurrent // CONNECTIONS_PER_CLIENT) if profile.client == "openai" else 1
    return count, min(profile.max_concurrent, CONNECTIONS_PER_CLIENT)


def provider_client(profile: ModelProfile, *, pool_size: int | None = None) -> ChatCompletionClient:
    """The bare client for a profile: no rate limit, cache or retries (the SDKs' own are off).

    ``pool_size`` (openai client) is how many connections the client keeps open; by
    default the profile's ``max_concurrent``, so bursts do not reconnect. Raises
    KeyError if the profile's key variable is not set.
    """
    api_key = profile.api_key()
    register_profile_secret(profile)
    if api_key is None and profile.api_base is not None:
        # A keyless local server: send a placeholder so that neither SDK falls back to
        # a real key from OPENAI_API_KEY and ships it to a third-party endpoint.
        api_key = "no-key"
    if profile.client == "openai":
        return _openai_client(profile, api_key, pool_size)
    return LiteLLMChatCompletionClient(
        profile.model, api_base=profile.api_base, api_key=api_key, timeout_s=profile.timeout_s
    )


def warm_up() -> None:
    """Import what the first request would import (the OpenAI SDK's resources; litellm
    uses them too): seconds that would otherwise block the event loop inside a timed turn."""
    importlib.import_module("openai.resources")


def _openai_client(profile: ModelProfile, api_key: str | None, pool_size: int | None) -> ChatCompletionClient:
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    openai_info: ModelInfo = {**DEFAULT_MODEL_INFO, "function_calling": True}  # type: ignore[typeddict-item]
    kwargs: dict[str, Any] = {
        "model": profile.provider_model,
        "max_retries": 0,
        "timeout": profile.timeout_s,
        "model_info": openai_info,
        "http_client": _http_client(profile, pool_size),
    }
    if profile.api_base is not None:
        kwargs["base_url"] = profile.api_base
    if api_key is not None:
        kwargs["api_key"] = api_key
    return OpenAIChatCompletionClient(**kwargs)


@functools.lru_cache(maxsize=1)
def _ssl_context() -> Any:
    # Building an SSL context (loading the CA bundle) takes ~70 ms; clients share one.
    import httpx

    return httpx.create_ssl_context()


def _http_client(profile: ModelProfile, pool_size: int | None) -> Any:
    import httpx
    import openai

    keep = max(1, pool_size or profile.max_concurrent)
    return openai.DefaultAsyncHttpxClient(
        verify=_ssl_context(),
        timeout=profile.timeout_s,
        limits=httpx.Limits(max_connections=max(keep, 1000), max_keepalive_connections=keep),
    )
