"""LLM members against a loopback OpenAI-compatible server, for the latency benchmarks.

The server (bench/latency_server.py: every answer exactly L after its request
arrives) runs in its own process, so its CPU time never counts against, or competes
inside, the client process being measured.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from common import ROOT

from assembly.core.engine import Listener
from assembly.core.events import RoundEnded, RoundStarted
from assembly.launch import execute
from assembly.llm.member import factory_for
from assembly.llm.profiles import ModelProfile
from assembly.llm.setup import LLMSetup
from assembly.scenario.model import Scenario

PATHS = ("litellm", "openai")

# litellm's typed dicts make pydantic warn once per process on import; it says nothing
# about the figures and would bury the tables.
warnings.filterwarnings("ignore", message=".*ReadOnly.*", category=UserWarning)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    url: str  # base URL, …/v1
    pid: int

    def arrivals(self) -> list[float]:
        """When each chat completion reached the server since the last call (monotonic clock)."""
        with urllib.request.urlopen(self.url.removesuffix("/v1") + "/arrivals", timeout=10) as answer:
            return [float(t) for t in json.load(answer)["arrivals"]]

    def cpu_s(self) -> float:
        """CPU seconds the server process has used so far (all its threads)."""
        t = psutil.Process(self.pid).cpu_times()
        return float(t.user + t.system)


@contextmanager
def fake_server(latency_s: float) -> Iterator[Server]:
    """Start bench/latency_server.py in a subprocess.

    On a machine with two CPUs or more, the server runs on the last one and this
    process on the others, as a remote provider would run on other hardware: the
    server's own CPU is then never the client's, and
    what a round costs the tool is what is measured. The affinity is restored after."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "latency_server.py"), "--port", str(port), "--latency", str(latency_s)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    mine = os.sched_getaffinity(0)
    if len(mine) > 1:
        server_cpu = max(mine)
        os.sched_setaffinity(proc.pid, {server_cpu})
        os.sched_setaffinity(0, mine - {server_cpu})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"(http://\S+)", line)
        if not found:
            raise RuntimeError(f"fake server did not start: {line!r}")
        yield Server(found.group(1), proc.pid)
    finally:
        os.sched_setaffinity(0, mine)
        proc.terminate()
        proc.wait(timeout=10)


def profile(base_url: str, client: str, max_concurrent: int = 1024) -> ModelProfile:
    """A keyless profile on the loopback server. `max_concurrent` is far above any N
    measured, so the profile's own limiter never queues a request."""
    return ModelProfile(
        name=f"bench-{client}",
        model="openai/fake-model",
        client=client,  # type: ignore[arg-type]
        api_base=base_url,
        timeout_s=60.0,
        retries=2,
        max_concurrent=max_concurrent,
    )


class RoundCpu:
    """A run listener: this process's CPU seconds spent inside each round."""

    def __init__(self) -> None:
        self.per_round: dict[int, float] = {}
        self._start = 0.0

    def __call__(self, event: Any) -> None:
        if isinstance(event, RoundStarted):
            self._start = time.process_time()
        elif isinstance(event, RoundEnded):
            self.per_round[event.round] = time.process_time() - self._start


def run(sc: Scenario, run_dir: Path, prof: ModelProfile, listeners: Sequence[Listener] = ()) -> dict[str, Any]:
    """One run with every LLM seat on `prof`; the response cache is the run's own
    (fresh) folder, so nothing is answered from cache."""
    setup = LLMSetup(profiles={prof.name: prof})
    return asyncio.run(execute(sc, run_dir, factory=factory_for(setup), listeners=listeners))
