"""Is a model profile usable for runs right now? (`assembly models`)

A profile with an `api_base` (vLLM, Ollama, LM Studio, a litellm proxy) is first asked
`GET {api_base}/models`, which costs nothing and tells whether the server serves the
profile's model. Then every profile gets one real structured request with a run's own
output schema (the consensus game's proposal, with its integer bounds and string
lengths), in the profile's `structured_output` mode, because reachability proves little:
a server may answer `/models` and still reject every `json_schema` request a run makes.
When that mode fails, the other one is tried, and the report says which one works.

Every reason shown is scrubbed: a provider that echoes the key in an error message
(as OpenAI does on a 401) must not put it on the terminal.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from assembly.llm.keys import register_secret, scrub
from assembly.llm.profiles import ModelProfile

Mode = Literal["json_schema", "json_object"]
# The probe: a proposal of the consensus game, asked as a run asks it. Its max tokens
# are the longest answer the schema admits (`core.answer_size`), not the game's 300:
# the probe asks whether the server takes the mode, and an answer cut short (a small
# model writing digits and the grammar's widest whitespace) would wrongly say no.
PROBE_SYSTEM = (
    "You are agent_0, an agent in a consensus game: the agents must agree on one integer from 0 to 50. "
    'Answer with one JSON object with the fields "strategy" (a private note), "value" (your integer) and '
    '"justification" (one sentence for the others), and nothing else.'
)
PROBE_USER = "ROUND 1 of 3. Your initial value is 17. Propose a value."


@dataclass(frozen=True)
class CheckResult:
    profile: str
    ok: bool
    reason: str


async def check_profile(profile: ModelProfile, timeout_s: float | None = None) -> CheckResult:
    """Reachability, then one structured request per mode until one works (see the module doc)."""
    try:
        key = profile.api_key()
    except KeyError:
        return CheckResult(profile.name, False, f"environment variable {profile.api_key_env} is not set")
    register_secret(key)
    limit = timeout_s if timeout_s is not None else profile.timeout_s
    try:
        async with asyncio.timeout(limit):
            if profile.api_base is not None:
                listed = await _listed_models(profile.api_base, key)
                if listed and profile.provider_model not in listed:
                    shown = ", ".join(listed[:8]) + (", ..." if len(listed) > 8 else "")
                    return CheckResult(
                        profile.name,
                        False,
                        scrub(f"the server answers but does not serve {profile.provider_model} (it serves: {shown})"),
                    )
            return await _structured(profile)
    except TimeoutError:
        return CheckResult(profile.name, False, f"no answer within {limit:g}s")
    except OSError as exc:
        return CheckResult(profile.name, False, scrub(f"cannot connect to {profile.api_base} ({exc})"))
    except Exception as exc:
        return CheckResult(profile.name, False, scrub(f"{type(exc).__name__}: {exc}"))


async def check_all(profiles: Iterable[ModelProfile], timeout_s: float | None = None) -> list[CheckResult]:
    return list(await asyncio.gather(*(check_profile(p, timeout_s) for p in profiles)))


async def _structured(profile: ModelProfile) -> CheckResult:
    configured: Mode = profile.structured_output
    other: Mode = "json_object" if configured == "json_schema" else "json_schema"
    failed = await structured_probe(profile, configured)
    if failed is None:
        return CheckResult(profile.name, True, f"answered a structured request ({configured})")
    if await structured_probe(profile, other) is None:
        return CheckResult(
            profile.name,
            False,
            f"{configured} requests fail ({failed}); {other} works: set `structured_output: {other}` in the profile",
        )
    return CheckResult(profile.name, False, f"no structured output works: {configured}: {failed}")


async def structured_probe(profile: ModelProfile, mode: Mode) -> str | None:
    """None if the profile answers the probe validly in `mode`, else why not."""
    from autogen_core.models import SystemMessage, UserMessage

    from assembly.core.answer_size import longest_answer_chars
    from assembly.llm.clients import make_client
    from assembly.llm.structured import call_structured
    from assembly.protocols.consensus_game.prompts import proposal_model

    output = proposal_model(0, 50, False)
    max_tokens = longest_answer_chars(output.model_json_schema())
    probe = profile.model_copy(update={"retries": 0, "structured_output": mode, "max_tokens": {"default": max_tokens}})
    client = make_client(probe)
    try:
        result = await call_structured(
            client,
            [SystemMessage(content=PROBE_SYSTEM), UserMessage(content=PROBE_USER, source="user")],
            output,
            profile=probe,
            kind="propose",
            max_malformed_retries=0,
        )
    except Exception as exc:  # not retryable (e.g. HTTP 400 or 500 for an unsupported response_format)
        return scrub(f"{type(exc).__name__}: {exc}", 200)
    finally:
        await client.close()
    if result.ok:
        return None
    last = result.attempts[-1] if result.attempts else None
    return scrub(f"{last.error_kind}: {last.detail}" if last else "no answer", 200)


async def _listed_models(api_base: str, key: str | None) -> list[str] | None:
    """Model ids from GET /models, or None if the server has no such endpoint."""
    import aiohttp

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        async with (
            aiohttp.ClientSession(trust_env=True) as http,
            http.get(api_base.rstrip("/") + "/models", headers=headers) as response,
        ):
            status, text = response.status, await response.text()
    except aiohttp.ClientConnectionError as exc:
        raise ConnectionError(str(exc) or type(exc).__name__) from None
    if status in (404, 405):
        return None
    if status != 200:
        raise RuntimeError(f"GET /models answered HTTP {status}: {text[:200]}")
    data = json.loads(text).get("data") or []
    return [str(m.get("id")) for m in data if isinstance(m, dict)]
