"""Embedded llama.cpp servers for the profiles that ask for one (`local:`), for as long as a command runs.

`serving(setup, names)` starts one `LocalModelServer` per local profile among `names`, on a
free 127.0.0.1 port, waits until it is healthy, sends it one short warm-up request, and
yields the setup with those profiles pointed at their servers (`LLMSetup.served`). On exit,
Ctrl-C included, every server it started is stopped; a crash of ours takes the servers with
it (their stdin watchdog, see `local_server`).

Start-up and warm-up happen before the run, so no member's turn pays for loading the model
or for the first request's one-time costs (paging the weights in, building the compute
graph). A run's own queueing in front of the server (the profile's `max_concurrent`, one
request per slot by default) is kept out of members' deadlines by the engine's turn clock.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager as ContextManager
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

from assembly.core.errors import UserError
from assembly.llm import setup as llm_setup
from assembly.llm.check import CheckResult
from assembly.llm.local_server import LocalModelServer, LocalModelUnavailable, LocalServerError
from assembly.llm.profiles import ModelProfile
from assembly.llm.setup import LLMSetup, ModelSetupError


class LocalServerFailed(UserError):
    """The embedded server did not come up (an I/O-like failure: exit 1)."""

    exit_code = 1


def served(setup: LLMSetup | None, names: Iterable[str], run_dir: Path | None = None) -> ContextManager[Any]:
    """What the commands use: `setup` with embedded servers behind the local profiles among
    `names` (with `run_dir`, also those that run recorded, for a resume or fork), stopped
    when the context ends, Ctrl-C included; `setup` as it is when there are none."""
    if run_dir is not None:
        return serving_run(setup if setup is not None else LLMSetup(), run_dir, names)
    if setup is None or not local_profiles(setup, names):
        return nullcontext(setup)
    return serving(setup, names)


def local_profiles(setup: LLMSetup, names: Iterable[str]) -> list[ModelProfile]:
    """The profiles among `names` that ask for an embedded server."""
    return [setup.profiles[n] for n in sorted(set(names)) if n in setup.profiles and setup.profiles[n].local]


@contextmanager
def serving(setup: LLMSetup, names: Iterable[str]) -> Iterator[LLMSetup]:
    """`setup` with a running embedded server behind every local profile among `names`."""
    wanted = local_profiles(setup, names)
    if not wanted:
        yield setup
        return
    with ExitStack() as stack:
        served = dict(setup.served)
        for profile in wanted:
            server = start_server(profile)
            stack.callback(server.stop)
            served[profile.name] = server.base_url
        yield replace(setup, served=served)


@contextmanager
def serving_run(setup: LLMSetup, run_dir: Path, names: Iterable[str] = ()) -> Iterator[LLMSetup]:
    """`setup` with embedded servers for the named profiles and for the local profiles the
    run in `run_dir` recorded (a resume or fork goes on with those; `LLMSetup.with_recorded`)."""
    recorded = llm_setup.recorded(run_dir, setup)
    both = setup.with_recorded(recorded) if recorded is not None else setup
    wanted = [*names, *(recorded.profiles if recorded is not None else ())]
    with serving(both, wanted) as running:
        # Only the addresses: the run's recorded profiles still win where members are built.
        yield replace(setup, served=running.served)


@contextmanager
def local_servers(profiles: Iterable[ModelProfile]) -> Iterator[tuple[list[ModelProfile], dict[str, CheckResult]]]:
    """For `assembly models`: the profiles, local ones pointed at a server started for them,
    and a failed check for each local one whose server cannot start (the others still run)."""
    out: list[ModelProfile] = []
    failed: dict[str, CheckResult] = {}
    with ExitStack() as stack:
        for p in profiles:
            if p.local is None:
                out.append(p)
                continue
            try:
                server = start_server(p)
            except UserError as exc:
                failed[p.name] = CheckResult(p.name, False, str(exc))
                continue
            stack.callback(server.stop)
            out.append(p.model_copy(update={"api_base": server.base_url, "client": "openai"}))
        yield out, failed


def start_server(profile: ModelProfile) -> LocalModelServer:
    """Start and warm the embedded server for one local profile, or fail with a user-facing message."""
    local = profile.local
    assert local is not None
    try:
        server = LocalModelServer(
            local.gguf,
            threads=local.threads,
            parallel=local.parallel,
            ctx_size=local.ctx_size,
            start_timeout=local.start_timeout_s,
            alias=profile.provider_model,
        )
    except LocalModelUnavailable as exc:
        raise ModelSetupError(f"profile {profile.name!r}: {exc}") from None
    except (FileNotFoundError, ValueError) as exc:
        raise ModelSetupError(f"profile {profile.name!r}: local.gguf: {exc}") from None
    try:
        server.start()
        warm_up(server.base_url, profile.provider_model)
    except LocalModelUnavailable as exc:
        server.stop()
        raise ModelSetupError(f"profile {profile.name!r}: {exc}") from None
    except (LocalServerError, OSError) as exc:
        server.stop()
        raise LocalServerFailed(f"profile {profile.name!r}: the embedded llama.cpp server failed: {exc}") from None
    except BaseException:  # Ctrl-C while starting: never leave a server behind
        server.stop()
        raise
    return server


def warm_up(base_url: str, model: str, timeout_s: float = 120.0) -> None:
    """One short completion, so the first member's turn does not pay the server's first-request costs."""
    body = {"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "Hello."}]}
    request = urllib.request.Request(
        f"{base_url}/chat/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        response.read()
