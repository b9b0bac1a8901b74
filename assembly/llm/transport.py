"""The transport: the provider client that puts a profile's requests on the wire.

One function, `provider_client`, decides how a request reaches a server:

* ``client: openai``: the lean OpenAI-compatible client (`openai_http`): whole answers
  on `http1`'s keep-alive connections, streams and proxied requests on one pooled
  aiohttp session, per event loop;
* ``client: litellm``: litellm resolves the model string to a provider once, when the
  client is built. A self-hosted OpenAI-compatible endpoint (provider ``openai``,
  ``custom_openai`` or ``hosted_vllm`` with an ``api_base``) then gets the same lean
  client, since litellm would only forward the request to it; every other provider
  (Anthropic, Bedrock, Gemini, api.openai.com with its per-model parameter rules...)
  goes through ``litellm.acompletion``, which translates the request.

Everything above it (rate limits, cache, retries) is the same for every path. It
also keeps keys where they belong: a keyless local server gets a placeholder, never
a real key from the environment.
"""

from __future__ import annotations

import importlib

from autogen_core.models import ChatCompletionClient

from assembly.llm.json_text import Literals
from assembly.llm.keys import register_profile_secret
from assembly.llm.litellm_client import LiteLLMChatCompletionClient, import_litellm
from assembly.llm.openai_http import OpenAICompatClient
from assembly.llm.profiles import ModelProfile

#: litellm providers whose endpoint at a given api_base speaks Chat Completions as is.
OPENAI_WIRE_PROVIDERS = frozenset({"openai", "custom_openai", "hosted_vllm"})


def provider_client(profile: ModelProfile, literals: Literals | None = None) -> ChatCompletionClient:
    """The bare client for a profile: no rate limit, cache or retries. ``literals``
    are the escaped message texts it may share with the cache above it (`json_text`).

    Raises KeyError if the profile's key variable is not set.
    """
    api_key = profile.api_key()
    register_profile_secret(profile)
    if api_key is None and profile.api_base is not None:
        # A keyless local server: send a placeholder so that no client falls back to
        # a real key from OPENAI_API_KEY and ships it to a third-party endpoint.
        api_key = "no-key"
    if profile.client == "openai":
        return OpenAICompatClient(
            model=profile.provider_model,
            base_url=profile.api_base,
            api_key=api_key,
            timeout_s=profile.timeout_s,
            names=True,  # what autogen's OpenAI client sent, so servers see the same requests
            literals=literals,
        )
    # Imported here, when a litellm client is built (before any timed turn), never
    # inside a call's deadline: importing it takes seconds of CPU.
    litellm = import_litellm()
    model, provider, _, _ = litellm.get_llm_provider(profile.model, api_base=profile.api_base)
    if provider in OPENAI_WIRE_PROVIDERS and profile.api_base is not None:
        return OpenAICompatClient(
            model=model, base_url=profile.api_base, api_key=api_key, timeout_s=profile.timeout_s, literals=literals
        )
    # What litellm's first request would import (the OpenAI SDK's resources, which its
    # providers build on): seconds that would otherwise block the loop inside a turn.
    importlib.import_module("openai.resources")
    return LiteLLMChatCompletionClient(
        profile.model, api_base=profile.api_base, api_key=api_key, timeout_s=profile.timeout_s
    )
