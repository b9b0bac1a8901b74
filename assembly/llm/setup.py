"""Which models LLM members call: the run's setup (profile registry, `--model`, response cache).

The model flags of `run`, `sweep`, `models` and `rerun` become one `LLMSetup`
(`from_flags`): the registry of named profiles (configs/models.yaml, or `--models
FILE`); with `--model`, one more profile (a litellm model string, or a registry
name, or `local/smollm2` / `local/PATH.gguf` for the embedded llama.cpp server, which
`serving` starts) and scenario overrides that seat every member on it; and where responses are
cached (`--cache DIR`, or each run's `<run_dir>/cache`). A setup is a value passed
explicitly to the member factory (`member.factory_for`), never a process-wide
current one, so runs on different setups can share a process. Keys never pass
through here: profiles name environment variables, whose values `keys` registers
for scrubbing.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import ValidationError

from assembly.core.errors import UserError
from assembly.core.redaction import has_redacted_credentials, redact_url, register_url_credentials
from assembly.core.spec import MAX_MEMBERS
from assembly.llm.keys import register_env_secrets
from assembly.llm.profiles import DEFAULT_MODELS_PATH, LocalServer, ModelProfile, load_models_file

if TYPE_CHECKING:
    from assembly.scenario.model import Scenario

CACHE_DIR = "cache"  # a run's own response cache, inside its run folder
CACHE_POINTER = "cache.json"  # written into a run folder whose cache lives elsewhere (--cache)

# Settings of the ad-hoc profile that --model makes (a models file sets them per profile).
# Its concurrency is not among them: it is the number of seated members of each run
# (`LLMSetup.seat_profile`), so that no member of an ad-hoc run waits for the tool,
# capped by --max-concurrent when the server can take fewer.
ADHOC_DEFAULTS: dict[str, Any] = {
    "max_tokens": {"default": 1024},
    "timeout_s": 120.0,
    "retries": 3,
}

# Settings of the profile `--model local/...` makes. A small model on a shared CPU reads a
# long prompt for tens of seconds, so one attempt may take minutes; the server never
# fails transiently, so one retry is plenty. One request per slot (`max_concurrent` =
# `parallel`): the rest wait in the run's own queue, which members' deadlines leave out.
LOCAL_PREFIX = "local/"
LOCAL_DEFAULTS: dict[str, Any] = {
    "max_tokens": {"default": 512},
    "timeout_s": 600.0,
    "retries": 1,
    "price_per_1k_input": 0.0,
    "price_per_1k_output": 0.0,
}


class ModelSetupError(UserError):
    """Model flags, a models file or a profile name that cannot be used."""


@dataclass(frozen=True)
class LLMSetup:
    """Profiles by name, the profile `--model` selected (if any), and the response cache."""

    profiles: Mapping[str, ModelProfile] = field(default_factory=dict)
    cache_dir: Path | None = None  # None: each run's own <run_dir>/cache
    model: str | None = None  # the profile every seat uses (--model), else the scenario's names
    source: str = "no models file"  # where the profiles came from, for error messages
    max_concurrent: int | None = None  # --max-concurrent: caps every profile's requests in flight
    per_seat: frozenset[str] = frozenset()  # profiles allowed one request in flight per seated member

    def seat_profile(self, name: str | None, seats: int) -> ModelProfile:
        """The profile a seat of a run with `seats` members uses, with its concurrency resolved:
        one request in flight per seated member for an ad-hoc (`--model ... --api-base`)
        profile, else the profile's own `max_concurrent`; either capped by --max-concurrent."""
        profile = self.profile(name)
        limit = max(1, seats) if profile.name in self.per_seat else profile.max_concurrent
        if self.max_concurrent is not None:
            limit = min(limit, self.max_concurrent)
        return profile if limit == profile.max_concurrent else profile.model_copy(update={"max_concurrent": limit})

    # Base URLs of the embedded servers this process runs for local profiles (`serving`).
    served: Mapping[str, str] = field(default_factory=dict)

    def named(self, name: str | None) -> ModelProfile:
        """A profile by name, as configured."""
        if name is None:
            raise ModelSetupError("an LLM seat has no model profile; set members.profile or pass --model")
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise ModelSetupError(
                f"unknown model profile {name!r} (profiles from {self.source}: {known}); "
                "add it to the models file, pass --models FILE, or --model"
            ) from None

    def profile(self, name: str | None) -> ModelProfile:
        """A profile by name, ready to call: a local one points at the server this process runs for it."""
        profile = self.named(name)
        if profile.local is not None and name is not None:
            if name in self.served:
                return profile.model_copy(update={"api_base": self.served[name], "client": "openai"})
            if profile.api_base is None:  # never without an address: the SDK would fall back to OpenAI's
                raise ModelSetupError(f"profile {name!r} needs its embedded server running (assembly.llm.serving)")
        return profile

    def with_recorded(self, recorded: LLMSetup) -> LLMSetup:
        """This setup plus the profiles a run recorded, which win for the same name (a
        resumed or forked seat calls the same model with the same settings), and this
        process's embedded servers, which replace the addresses of the run's ended ones."""
        return dataclasses.replace(
            self,
            profiles={**self.profiles, **recorded.profiles},
            cache_dir=self.cache_dir or recorded.cache_dir,
            source=f"{self.source} and {recorded.source}",
        )

    def scenario_overrides(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Overrides that put every seat of a scenario (raw YAML `data`) on the `--model` profile.

        Role-level policies and profiles and `members.assign` are cleared too: `--model`
        means "run this scenario on this model"."""
        if self.model is None:
            return {}
        out: dict[str, Any] = {
            "members.policy": "llm",
            "members.profile": self.model,
            "members.assign": [],
            "facilitator.policy": "llm",
            "facilitator.profile": self.model,
        }
        population = data.get("population")
        roles = population.get("roles") if isinstance(population, Mapping) else None
        for i in range(len(roles) if isinstance(roles, list) else 0):
            out[f"population.roles.{i}.policy"] = None
            out[f"population.roles.{i}.profile"] = None
        return out

    def scenario_overrides_for(self, scenario_file: Path) -> dict[str, Any]:
        """`scenario_overrides` for a scenario file (errors in it are left to the scenario loader)."""
        if self.model is None:
            return {}
        try:
            data = yaml.safe_load(scenario_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            data = None
        return self.scenario_overrides(data if isinstance(data, Mapping) else {})

    def describe(self) -> str:
        """One line for the terminal: the --model profile and where responses are cached."""
        parts = []
        if self.model is not None:
            p = self.profiles[self.model]
            where = f" (embedded llama.cpp server, {p.local.gguf})" if p.local else ""
            parts.append(
                f"model {p.model} via {p.client}" + (f" at {redact_url(p.api_base)}" if p.api_base else "") + where
            )
        parts.append(f"cache {self.cache_dir}" if self.cache_dir else "cache in the run folder")
        return ", ".join(parts)

    def check(self, scenario: Scenario) -> None:
        """Fail before anything runs if an LLM seat names a profile this setup lacks."""
        for name in profiles_named(scenario):
            self.named(name)

    def cache_for(self, run_dir: Path) -> Path:
        return self.cache_dir if self.cache_dir is not None else run_dir / CACHE_DIR


def profiles_named(scenario: Scenario) -> list[str]:
    """Every profile an LLM seat of the scenario may be given."""
    m = scenario.members
    names: list[str | None] = []
    llm_roles = [r for r in scenario.population.roles if (r.policy or m.policy) == "llm"]
    for r in llm_roles:
        names.append(r.profile)
        if r.profile is None:
            names.extend([a.profile for a in m.assign] or [m.profile])
    if scenario.protocol.has_facilitator and scenario.facilitator.policy == "llm":
        names.append(scenario.facilitator.profile or m.profile)
    return sorted({n for n in names if n is not None})


# ----------------------------------------------------------------------------- building a setup


def load_profiles(path: Path) -> dict[str, ModelProfile]:
    if not path.exists():
        raise ModelSetupError(f"no models file {path}")
    try:
        return dict(load_models_file(path).profiles)
    except (ValidationError, ValueError, OSError) as exc:
        # Validation errors hide their inputs (a misplaced key must not be echoed).
        first = exc.errors(include_url=False)[0] if isinstance(exc, ValidationError) else None
        reason = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}" if first else str(exc)
        raise ModelSetupError(f"{path}: {reason}") from None


def adhoc_name(model: str) -> str:
    """A profile name for a model string (profile names cannot hold slashes)."""
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", model).strip("_")[:64] or "model"


def from_flags(
    *,
    model: str | None = None,
    api_base: str | None = None,
    client: Literal["litellm", "openai"] | None = None,
    api_key_env: str | None = None,
    models_file: Path | None = None,
    cache: Path | None = None,
    max_concurrent: int | None = None,
) -> LLMSetup:
    """The setup that the model flags of `run`, `sweep` and `models` ask for.

    `client` defaults to `openai` (autogen's OpenAI client) when `api_base` is given for
    an `openai/...` model, the usual OpenAI-compatible local server, and to `litellm`
    otherwise (any provider litellm knows, keys from the provider's usual variable).
    `max_concurrent` (--max-concurrent) caps every profile's requests in flight."""
    if max_concurrent is not None and max_concurrent < 1:
        raise ModelSetupError(f"--max-concurrent must be at least 1, not {max_concurrent}")
    path = models_file if models_file is not None else DEFAULT_MODELS_PATH
    if models_file is not None or path.exists():
        profiles, source = load_profiles(path), str(path)
    else:
        profiles, source = {}, "no models file"
    chosen: str | None = None
    per_seat: frozenset[str] = frozenset()
    if model is not None and model.startswith(LOCAL_PREFIX):
        if api_base is not None or client is not None or api_key_env is not None:
            raise ModelSetupError(
                f"--model {model} runs its own server; --api-base, --client and --api-key-env do not apply"
            )
        adhoc = local_profile(model)
        profiles = {**profiles, adhoc.name: adhoc}
        chosen = adhoc.name
    elif model is not None:
        if "/" in model:
            provider = model.partition("/")[0]
            kind = client or ("openai" if api_base and provider == "openai" else "litellm")
            try:
                adhoc = ModelProfile(
                    name=adhoc_name(model),
                    model=model,
                    client=kind,
                    api_base=api_base,
                    api_key_env=api_key_env,
                    # Stored as the most a run can need; each run narrows it to its seats.
                    max_concurrent=max_concurrent or MAX_MEMBERS,
                    **ADHOC_DEFAULTS,
                )
            except ValidationError as exc:
                raise ModelSetupError(f"--model {model}: {exc.errors(include_url=False)[0]['msg']}") from None
            profiles = {**profiles, adhoc.name: adhoc}
            chosen = adhoc.name
            per_seat = frozenset({adhoc.name})
        else:
            base = LLMSetup(profiles, source=source).named(model)
            changes = {
                k: v
                for k, v in (("api_base", api_base), ("client", client), ("api_key_env", api_key_env))
                if v is not None
            }
            profiles = {**profiles, model: base.model_copy(update=changes)} if changes else profiles
            chosen = model
    elif api_base is not None or client is not None or api_key_env is not None:
        raise ModelSetupError(
            "--api-base, --client and --api-key-env describe the --model they go with; "
            "pass --model too (or set them in the models file)"
        )
    register_env_secrets()
    for profile in profiles.values():
        register_url_credentials(profile.api_base)
    return LLMSetup(
        profiles=profiles,
        cache_dir=cache.resolve() if cache is not None else None,
        model=chosen,
        source=source,
        max_concurrent=max_concurrent,
        per_seat=per_seat,
    )


def local_profile(model: str) -> ModelProfile:
    """The profile for `--model local/NAME` or `--model local/PATH.gguf`.

    The model file is looked up now, so a missing install or file fails before anything
    runs (exit 2, naming the pip command or the path)."""
    from assembly.llm.local_server import LocalModelUnavailable, resolve_model

    spec = model.removeprefix(LOCAL_PREFIX)
    try:
        path = resolve_model(spec)
    except LocalModelUnavailable as exc:
        raise ModelSetupError(f"--model {model}: {exc}") from None
    except (FileNotFoundError, ValueError) as exc:
        raise ModelSetupError(f"--model {model}: {exc}") from None
    gguf = str(path) if spec.lower().endswith(".gguf") else spec.lower()
    alias = adhoc_name(spec.lower() if not spec.lower().endswith(".gguf") else path.stem)
    local = LocalServer(gguf=gguf)
    return ModelProfile(
        name=adhoc_name(f"local_{alias}"),
        model=f"openai/{alias}",
        client="openai",
        local=local,
        **LOCAL_DEFAULTS,
    )


def recorded(run_dir: Path, current: LLMSetup | None = None) -> LLMSetup | None:
    """The setup a finished or interrupted run used: its recorded profiles and cache.

    Reruns and resumes rebuild clients from this, so they call the same models with
    the same settings even if configs/models.yaml changed since."""
    from assembly.core.transcript import TranscriptError, read_transcript

    try:
        started = read_transcript(run_dir).started
    except TranscriptError:
        return None
    if not started.models:
        return None
    mine = current.profiles if current is not None else {}
    profiles = {
        name: _with_credentials(ModelProfile.model_validate(rec), mine.get(name))
        for name, rec in started.models.items()
    }
    return LLMSetup(profiles=profiles, cache_dir=recorded_cache(run_dir), source=f"the run in {run_dir}")


def _with_credentials(profile: ModelProfile, mine: ModelProfile | None) -> ModelProfile:
    """A recorded profile whose api_base had credentials (never stored) gets them back
    from the current setup's profile of the same name, if that one has the same URL."""
    if not has_redacted_credentials(profile.api_base):
        return profile
    if mine is not None and redact_url(mine.api_base) == profile.api_base:
        return profile.model_copy(update={"api_base": mine.api_base})
    return profile


def recorded_cache(run_dir: Path) -> Path:
    """Where a run's responses were cached: its own folder, or where cache.json points."""
    pointer = run_dir / CACHE_POINTER
    if pointer.exists():
        try:
            return Path(json.loads(pointer.read_text(encoding="utf-8"))["cache_dir"])
        except (ValueError, KeyError, TypeError):
            pass
    return run_dir / CACHE_DIR


def note_cache(run_dir: Path, cache_dir: Path) -> None:
    """Leave a pointer in the run folder when its cache lives elsewhere (for `assembly rerun`)."""
    if cache_dir.resolve() == (run_dir / CACHE_DIR).resolve():
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CACHE_POINTER).write_text(json.dumps({"cache_dir": str(cache_dir.resolve())}) + "\n", encoding="utf-8")
