"""Is a model profile usable right now? (`assembly models`)

Users find out that a key, a server or a model name is wrong before a run, at no
cost: for a profile with an `api_base` (vLLM, Ollama, LM Studio, a litellm proxy)
the check is `GET {api_base}/models`, which also tells whether the server serves
the profile's model; without one, or when the server has no `/models`, it is a
one-token completion. Every reason shown is scrubbed, since providers echo keys in
error messages (OpenAI does on a 401).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from assembly.llm.keys import register_secret, scrub
from assembly.llm.profiles import ModelProfile


@dataclass(frozen=True)
class CheckResult:
    profile: str
    ok: bool
    reason: str


async def check_profile(profile: ModelProfile, timeout_s: float = 15.0) -> CheckResult:
    try:
        key = profile.api_key()
    except KeyError:
        return CheckResult(profile.name, False, f"environment variable {profile.api_key_env} is not set")
    register_secret(key)
    try:
        async with asyncio.timeout(timeout_s):
            if profile.api_base is not None:
                listed = await _listed_models(profile.api_base, key)
                if listed is not None:
                    if listed and profile.provider_model not in listed:
                        shown = ", ".join(listed[:8]) + (", ..." if len(listed) > 8 else "")
                        return CheckResult(
                            profile.name,
                            False,
                            scrub(
                                f"the server answers but does not serve {profile.provider_model} (it serves: {shown})"
                            ),
                        )
                    return CheckResult(profile.name, True, f"{profile.api_base} serves {profile.provider_model}")
            await _one_token(profile)
            return CheckResult(profile.name, True, f"{profile.model} answered a 1-token request")
    except TimeoutError:
        return CheckResult(profile.name, False, f"no answer within {timeout_s:g}s")
    except OSError as exc:
        return CheckResult(profile.name, False, scrub(f"cannot connect to {profile.api_base} ({exc})"))
    except Exception as exc:
        return CheckResult(profile.name, False, scrub(f"{type(exc).__name__}: {exc}"))


async def check_all(profiles: Iterable[ModelProfile], timeout_s: float = 15.0) -> list[CheckResult]:
    return list(await asyncio.gather(*(check_profile(p, timeout_s) for p in profiles)))


async def _listed_models(api_base: str, key: str | None) -> list[str] | None:
    """Model ids from GET /models, or None if the server has no such endpoint."""
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        async with httpx.AsyncClient(timeout=None) as http:
            response = await http.get(api_base.rstrip("/") + "/models", headers=headers)
    except httpx.TransportError as exc:
        raise ConnectionError(str(exc) or type(exc).__name__) from None
    if response.status_code in (404, 405):
        return None
    if response.status_code != 200:
        raise RuntimeError(f"GET /models answered HTTP {response.status_code}: {response.text[:200]}")
    data = response.json().get("data") or []
    return [str(m.get("id")) for m in data if isinstance(m, dict)]


async def _one_token(profile: ModelProfile) -> None:
    from autogen_core.models import UserMessage

    from assembly.llm.clients import make_client

    client = make_client(profile.model_copy(update={"retries": 0}))
    try:
        await client.create([UserMessage(content="Reply with OK.", source="user")], extra_create_args={"max_tokens": 1})
    finally:
        await client.close()
