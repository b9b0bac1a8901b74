"""What a model call cost in USD, for the transcript's attempts, summaries and `--max-cost` budgets.

Explicit profile prices win (negotiated rates, or 0 for a self-hosted model whose
name litellm happens to know); otherwise the price in litellm's bundled price file;
otherwise 0, since an unknown model (e.g. on a custom ``api_base``) is assumed to be
a free local one.

The price file (``model_prices_and_context_window_backup.json`` inside the installed
litellm package) is read as data, never by importing litellm: importing it costs
seconds of CPU, and a run on the ``openai`` client path must not pay that to look
up a price. The package is located with ``importlib.util.find_spec``, which finds a
top-level package without executing it.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from assembly.llm.profiles import ModelProfile

PRICE_FILE = "model_prices_and_context_window_backup.json"


@functools.lru_cache(maxsize=1)
def price_map() -> Mapping[str, Any]:
    """litellm's bundled price map, by model name ({} when litellm or its file is missing).

    Read once per process (about 4,000 entries, tens of milliseconds)."""
    spec = importlib.util.find_spec("litellm")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = Path(folder) / PRICE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return data
    return {}


def price_of(model: str) -> tuple[float, float] | None:
    """USD per prompt token and per completion token of a litellm model string, if priced.

    Looked up as litellm does for the common cases: the full string
    (``openrouter/...``, ``gpt-4o-mini``), then without its provider prefix
    (``openai/gpt-4o-mini`` -> ``gpt-4o-mini``)."""
    prices = price_map()
    provider, _, bare = model.partition("/")
    for key in (model, bare) if bare else (model,):
        entry = prices.get(key)
        if not isinstance(entry, dict):
            continue
        owner = entry.get("litellm_provider")
        if key == bare and isinstance(owner, str) and not owner.startswith(provider):
            continue  # another provider's model of the same name
        try:
            return float(entry["input_cost_per_token"]), float(entry["output_cost_per_token"])
        except (KeyError, TypeError, ValueError):
            continue
    return None


def cost_usd(profile: ModelProfile, prompt_tokens: int, completion_tokens: int) -> float:
    """USD cost of one call (see the module doc for where prices come from)."""
    if profile.price_per_1k_input is not None or profile.price_per_1k_output is not None:
        return (profile.price_per_1k_input or 0.0) * prompt_tokens / 1000.0 + (
            profile.price_per_1k_output or 0.0
        ) * completion_tokens / 1000.0
    price = price_of(profile.model)
    if price is None:
        return 0.0
    return price[0] * prompt_tokens + price[1] * completion_tokens
