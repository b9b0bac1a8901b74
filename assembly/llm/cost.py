"""What a model call cost in USD, for the transcript's attempts, summaries and `--max-cost` budgets.

Explicit profile prices win (negotiated rates, or 0 for a self-hosted model whose
name litellm happens to know); otherwise litellm's bundled price map; otherwise 0,
since an unknown model is assumed to be a free local one.
"""

from __future__ import annotations

from assembly.llm.litellm_client import import_litellm
from assembly.llm.profiles import ModelProfile

# Models litellm has no price for, so each is looked up (and fails) once per process.
_UNPRICED: set[str] = set()


def cost_usd(profile: ModelProfile, prompt_tokens: int, completion_tokens: int) -> float:
    """USD cost of one call (see the module doc for where prices come from)."""
    if profile.price_per_1k_input is not None or profile.price_per_1k_output is not None:
        return (profile.price_per_1k_input or 0.0) * prompt_tokens / 1000.0 + (
            profile.price_per_1k_output or 0.0
        ) * completion_tokens / 1000.0
    if profile.model in _UNPRICED:
        return 0.0
    try:
        prompt_cost, completion_cost = import_litellm().cost_per_token(
            model=profile.model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
    except Exception:
        _UNPRICED.add(profile.model)
        return 0.0
    return float(prompt_cost) + float(completion_cost)
