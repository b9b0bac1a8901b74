"""LLM members against the loopback OpenAI-compatible server, for benchmarks 2 and 3.

The server (tests/fake_openai.py) runs in its own process, so its CPU time, threads
and GIL never count against, or compete inside, the client process being measured.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import ROOT

from assembly.llm_setup import LLMSetup
from assembly.model_config import ModelProfile
from assembly.runner import execute
from assembly.scenario import Scenario

PATHS = ("litellm", "openai")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def fake_server(latency_s: float) -> Iterator[str]:
    """Start tests/fake_openai.py in a subprocess; yield its base URL (…/v1)."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fake_openai.py"), "--port", str(port),
                             "--latency", str(latency_s)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"(http://\S+)", line)
        if not found:
            raise RuntimeError(f"fake server did not start: {line!r}")
        yield found.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def profile(base_url: str, client: str, max_concurrent: int = 1024) -> ModelProfile:
    """A keyless profile on the loopback server. `max_concurrent` is far above any N
    measured, so the profile's own limiter never queues a request."""
    return ModelProfile(name=f"bench-{client}", model="openai/fake-model", client=client,  # type: ignore[arg-type]
                        api_base=base_url, timeout_s=60.0, retries=2, max_concurrent=max_concurrent)


def run(sc: Scenario, run_dir: Path, prof: ModelProfile) -> dict[str, Any]:
    """One run with every LLM seat on `prof`; the response cache is the run's own
    (fresh) folder, so nothing is answered from cache."""
    setup = LLMSetup(profiles={prof.name: prof})
    return asyncio.run(execute(sc, run_dir, factory=setup.factory()))
