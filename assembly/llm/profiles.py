"""Model profiles: which model to call, how, and within which limits.

A run names a profile (from ``configs/models.yaml``, ``profiles:`` name -> profile)
rather than spelling out a model, so a sweep can swap models without touching
scenarios, and limits such as ``max_concurrent``/``rpm`` are declared once per
endpoint. API keys are never read from files: a profile only names the environment
variable that holds the key (``api_key_env``), and validation rejects an
``api_key`` field and values of ``api_key_env`` that look like a pasted key,
because a key committed in a YAML file is the most common way keys leak. Three
settings adapt a profile to its server: ``structured_output`` (``json_object`` for
servers that reject ``json_schema``), ``thinking: false`` (sent as
``chat_template_kwargs: {enable_thinking: false}``, which vLLM and llama.cpp hand to
the chat template) and ``local`` (serve the model with the embedded llama.cpp server).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_MODELS_PATH = Path("configs/models.yaml")

#: Call kinds a profile may tune. Keys are checked so that a typo such as
#: ``stop_vtoe`` fails loudly instead of silently falling back to ``default``
#: (which would change an experiment without anyone noticing).
KNOWN_CALL_KINDS: frozenset[str] = frozenset(
    {"default", "speak", "synthesize", "vote", "propose", "stop_vote", "facilitate", "summarize"}
)

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Prefixes of real provider keys; an api_key_env holding one means a key was pasted in.
_KEY_LIKE = re.compile(r"^(sk-|sk_|pk-|gsk_|xai-|hf_|AIza)", re.IGNORECASE)


class LocalServer(BaseModel):
    """How to serve a profile's model with the embedded llama.cpp server.

    Defaults suit a machine with 2 shared cores: 1 thread (2 were measured several
    times slower under load), 4 slots (concurrent requests, each keeping its own
    prompt cache, so a member's unchanged system prompt is not read again), and a
    16,384-token KV cache split evenly across the slots (4,096 tokens of prompt +
    answer each)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gguf: str = Field(default="smollm2", description="A bundled model name (smollm2) or a path to a .gguf file.")
    threads: int = Field(default=1, ge=1, le=256)
    parallel: int = Field(default=4, ge=1, le=256, description="Slots: requests the server runs at once.")
    ctx_size: int = Field(default=16384, ge=256, description="KV cache tokens, split evenly across the slots.")
    start_timeout_s: float = Field(default=120.0, gt=0)


def _check_kinds(values: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(values) - KNOWN_CALL_KINDS)
    if unknown:
        raise ValueError(f"unknown call kind(s) {unknown}; known kinds: {sorted(KNOWN_CALL_KINDS)}")
    return values


class ModelProfile(BaseModel):
    """One named way of calling a model."""

    # Inputs are hidden in validation errors: a misplaced key must not be echoed to logs.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str = Field(default="", description="Filled from the key in models.yaml.")
    model: str = Field(
        description="litellm-style 'provider/model', e.g. 'openai/gpt-4o-mini' or 'openai/Qwen/Qwen3-14B'."
    )
    client: Literal["litellm", "openai"] = "litellm"
    api_base: str | None = None
    api_key_env: str | None = Field(
        default=None,
        description="NAME of the environment variable holding the key; None for keyless servers.",
    )
    temperature: dict[str, float] = Field(default_factory=dict)
    max_tokens: dict[str, int] = Field(default_factory=dict)
    timeout_s: float = Field(default=60.0, gt=0)
    retries: int = Field(default=3, ge=0, description="Retries of provider errors (429, 5xx, connection, timeout).")
    max_concurrent: int = Field(default=8, ge=1)
    rpm: float | None = Field(default=None, gt=0, description="Requests per minute; None means unlimited.")
    price_per_1k_input: float | None = Field(default=None, ge=0)
    price_per_1k_output: float | None = Field(default=None, ge=0)
    backoff_base_s: float = Field(default=0.5, ge=0, description="First retry delay without Retry-After.")
    backoff_max_s: float = Field(default=30.0, ge=0, description="Cap on any single retry delay.")
    structured_output: Literal["json_schema", "json_object"] = Field(
        default="json_schema", description="How the output schema is sent (see the module doc)."
    )
    thinking: bool | None = Field(
        default=None, description="False: ask a reasoning model not to think; None: the server's default."
    )
    local: LocalServer | None = Field(default=None, description="Serve the model with the embedded llama.cpp server.")

    @model_validator(mode="before")
    @classmethod
    def _no_inline_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "api_key" in data:
            raise ValueError(
                "api_key is not allowed in model profiles; set api_key_env to the NAME of an "
                "environment variable that holds the key"
            )
        return data

    @model_validator(mode="before")
    @classmethod
    def _one_request_per_slot(cls, data: Any) -> Any:
        """A local server runs `parallel` requests at once; by default the profile sends no
        more, so the rest wait in the run's own queue (which deadlines leave out), not the server's."""
        if (
            isinstance(data, dict)
            and isinstance(data.get("local"), dict | LocalServer)
            and "max_concurrent" not in data
        ):
            local = data["local"]
            parallel = local.parallel if isinstance(local, LocalServer) else local.get("parallel")
            data = {**data, "max_concurrent": parallel if isinstance(parallel, int) else LocalServer().parallel}
        return data

    @field_validator("model")
    @classmethod
    def _provider_prefix(cls, value: str) -> str:
        provider, sep, rest = value.partition("/")
        if not sep or not provider or not rest:
            raise ValueError(f"model must be 'provider/model' (litellm style), got {value!r}")
        return value

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if _KEY_LIKE.match(value) or not _ENV_NAME.match(value):
            # Do not echo the value: it may be a real key.
            raise ValueError("api_key_env must be the NAME of an environment variable (e.g. OPENAI_API_KEY)")
        return value

    @field_validator("temperature")
    @classmethod
    def _temperatures(cls, value: dict[str, float]) -> dict[str, float]:
        for kind, temp in _check_kinds(value).items():
            if not 0.0 <= temp <= 2.0:
                raise ValueError(f"temperature for {kind!r} must be in [0, 2], got {temp}")
        return value

    @field_validator("max_tokens")
    @classmethod
    def _max_tokens(cls, value: dict[str, int]) -> dict[str, int]:
        for kind, limit in _check_kinds(value).items():
            if limit < 1:
                raise ValueError(f"max_tokens for {kind!r} must be >= 1, got {limit}")
        return value

    def temperature_for(self, kind: str) -> float | None:
        """Temperature for a call kind, falling back to ``default``; None means provider default."""
        return self.temperature.get(kind, self.temperature.get("default"))

    def max_tokens_for(self, kind: str) -> int | None:
        """Completion-token cap for a call kind, falling back to ``default``."""
        return self.max_tokens.get(kind, self.max_tokens.get("default"))

    @property
    def provider_model(self) -> str:
        """The model name as the provider knows it (without the litellm provider prefix)."""
        return self.model.partition("/")[2]

    def api_key(self) -> str | None:
        """The key from the environment, or None for keyless profiles.

        Raises if the named variable is unset, because silently sending no key
        would surface later as a confusing 401 from the provider.
        """
        if self.api_key_env is None:
            return None
        value = os.environ.get(self.api_key_env)
        if not value:
            raise KeyError(f"environment variable {self.api_key_env} (api_key_env of profile {self.name!r}) is not set")
        return value


class ModelsFile(BaseModel):
    """Top level of ``configs/models.yaml``."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    default: str | None = None
    profiles: dict[str, ModelProfile] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _names_from_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("profiles"), dict):
            profiles = {}
            for name, body in data["profiles"].items():
                if isinstance(body, dict):
                    if body.get("name", name) != name:
                        raise ValueError(f"profile {name!r} has a different 'name' field: {body['name']!r}")
                    body = {**body, "name": name}
                profiles[name] = body
            data = {**data, "profiles": profiles}
        return data

    @model_validator(mode="after")
    def _default_exists(self) -> ModelsFile:
        if self.default is not None and self.default not in self.profiles:
            raise ValueError(f"default profile {self.default!r} is not defined")
        return self


def load_models_file(path: str | Path = DEFAULT_MODELS_PATH) -> ModelsFile:
    """Parse and validate a models YAML file."""
    text = Path(path).read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return ModelsFile.model_validate(data)
