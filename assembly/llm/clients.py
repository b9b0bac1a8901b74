"""Model clients for a profile: the stack every model call goes through, built in one place.

Each concern of a call sits in its own layer, and `make_client` is the one place
that stacks them, outermost first: the response cache, the rate-limit gate, the
provider client. The cache sits outside the gate so that replayed calls use no
rate-limit budget; retries live above the stack, in `structured`, so that every
provider error is seen, recorded and retried in one place.
"""

from __future__ import annotations

from pathlib import Path

from autogen_core.models import ChatCompletionClient

from assembly.llm.cost import cost_usd
from assembly.llm.json_text import Literals
from assembly.llm.profiles import ModelProfile
from assembly.llm.rate_limit import limiter_for
from assembly.llm.response_cache import cached
from assembly.llm.transport import provider_client
from assembly.llm.wrappers import GatedClient


def make_client(profile: ModelProfile, cache_dir: Path | None = None) -> ChatCompletionClient:
    """An autogen ``ChatCompletionClient`` for a profile, in layers (outermost first)::

        ChatCompletionCache (optional, on disk)   -- response_cache: replay without HTTP
          GatedClient                             -- wrappers: the profile's rate limit,
                                                     per-attempt deadline, private
                                                     create args stripped
            provider client                       -- transport: lean HTTP or litellm

    Raises KeyError if the profile's key variable is not set.
    """
    literals = Literals()  # message texts escaped once, for the cache key and the request body
    bare = provider_client(profile, literals)
    client: ChatCompletionClient = GatedClient(bare, limiter_for(profile), profile.timeout_s)
    return client if cache_dir is None else cached(client, cache_dir, profile.model, literals)


def prepare(profile: ModelProfile) -> None:
    """Spend, before a run starts, the time a profile's first call would block the
    event loop for (the first price lookup reads litellm's price file): never inside
    a timed turn."""
    cost_usd(profile, 0, 0)
