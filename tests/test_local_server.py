"""The embedded llama.cpp server, for real: real model, real HTTP, real processes and signals.

Needs the `local` extra (xllamacpp + the bundled SmolLM2 GGUF). Without it these tests skip, except
under CI, where a silently skipped suite would hide a broken install, so they fail instead.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from assembly.llm.local_server import (
    INSTALL_HINT,
    LocalModelServer,
    LocalModelUnavailable,
    LocalServerError,
    resolve_model,
)

pytestmark = pytest.mark.local_model

ROOT = Path(__file__).resolve().parent.parent

VOTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["stance", "confidence", "reason"],
    "properties": {
        "stance": {"enum": ["support", "oppose", "abstain"]},
        "confidence": {"type": "integer", "minimum": 0, "maximum": 100},
        "reason": {"type": "string", "maxLength": 40},
    },
}


def require_local_model() -> None:
    """Skip when the optional install is missing; fail under CI, where it must be present."""
    try:
        resolve_model("smollm2")
        if importlib.util.find_spec("xllamacpp") is None:  # not imported here: the server runs elsewhere
            raise LocalModelUnavailable("xllamacpp is not installed")
    except LocalModelUnavailable as error:
        reason = f"local model not installed ({error}); run: {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def alive(pid: int) -> bool:
    """Whether any thread of the process still runs. A zombie counts as dead (it only waits for a
    reaper, which may be slow in a container), but its main thread turns zombie before the others
    have exited and released the socket, hence the check of every thread."""
    if not Path("/proc/self/task").is_dir():  # not Linux: signal 0 is the best we have
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    states = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        with contextlib.suppress(OSError):
            states.append(stat.read_text().rsplit(")", 1)[1].split()[0])
    return any(state not in ("Z", "X") for state in states)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


@pytest.fixture(scope="module")
def server() -> Iterator[LocalModelServer]:
    require_local_model()
    srv = LocalModelServer("smollm2", threads=1, parallel=2, ctx_size=2048).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_structured_chat_completion_follows_the_schema(server: LocalModelServer) -> None:
    body = {
        "model": server.model_id,
        "max_tokens": 64,
        "temperature": 0,
        "seed": 7,
        "messages": [
            {"role": "system", "content": "You are a citizen in an assembly. Answer in JSON."},
            {"role": "user", "content": "Should the town build a bike lane on Main Street? Be brief."},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "vote", "strict": True, "schema": VOTE_SCHEMA},
        },
    }
    request = urllib.request.Request(
        f"{server.base_url}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.load(response)
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "stop", choice  # not cut off by max_tokens
    jsonschema.validate(json.loads(choice["message"]["content"]), VOTE_SCHEMA)


def test_stop_kills_the_server() -> None:
    require_local_model()
    srv = LocalModelServer("smollm2", parallel=1, ctx_size=512).start()
    pid, port = srv.pid, srv.port
    assert pid is not None and alive(pid) and port_open(port)
    srv.stop()
    assert not alive(pid)
    assert not port_open(port)
    srv.stop()  # idempotent


async def test_async_context_manager_stops_the_server_on_error() -> None:
    require_local_model()
    srv = LocalModelServer("smollm2", parallel=1, ctx_size=512)
    with pytest.raises(RuntimeError, match="boom"):
        async with srv:
            assert srv.pid is not None
            pid, port = srv.pid, srv.port
            assert port_open(port)
            raise RuntimeError("boom")
    assert not alive(pid)
    assert not port_open(port)


# A parent process that starts a server, reports its pid and port, then waits to be killed. "thread"
# starts it from a worker thread that then ends, where PR_SET_PDEATHSIG cannot be used and only the
# stdin watchdog protects us; "async" runs it under asyncio.run, which turns Ctrl-C into cancellation.
PARENT = textwrap.dedent(
    """
    import asyncio, sys, threading, time
    from assembly.llm.local_server import LocalModelServer

    async def serve():
        async with LocalModelServer("smollm2", ctx_size=512) as srv:
            print(srv.pid, srv.port, flush=True)
            await asyncio.sleep(600)

    servers = []
    if sys.argv[1] == "async":
        try:
            asyncio.run(serve())
        except KeyboardInterrupt:
            print("interrupted", flush=True)  # only once __aexit__ has stopped the server
        sys.exit()
    if sys.argv[1] == "thread":
        starter = threading.Thread(target=lambda: servers.append(LocalModelServer("smollm2", ctx_size=512).start()))
        starter.start()
        starter.join()
    else:
        servers.append(LocalModelServer("smollm2", ctx_size=512).start())
    print(servers[0].pid, servers[0].port, flush=True)
    time.sleep(600)
    """
)


@contextlib.contextmanager
def parent_with_server(mode: str) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    """Yield (parent, server pid, server port); whatever happens, leave no process behind."""
    require_local_model()
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, mode],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server_pid = None
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()  # blocks until the server is healthy (or the parent died)
        assert line, f"parent failed to start the server: {parent.stderr.read() if parent.stderr else ''}"
        server_pid, port = (int(word) for word in line.split())
        assert alive(server_pid) and port_open(port)
        yield parent, server_pid, port
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if server_pid is not None and alive(server_pid):
            os.kill(server_pid, signal.SIGKILL)


@pytest.mark.parametrize("started_from", ["main", "thread"])
def test_server_dies_with_its_sigkilled_parent(started_from: str) -> None:
    with parent_with_server(started_from) as (parent, server_pid, port):
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        assert wait_until(lambda: not alive(server_pid), timeout=15), "server outlived its SIGKILLed parent"
        assert not port_open(port)


def test_ctrl_c_in_an_asyncio_parent_stops_the_server() -> None:
    with parent_with_server("async") as (parent, server_pid, port):
        os.kill(parent.pid, signal.SIGINT)
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "interrupted"
        assert not alive(server_pid)  # already gone while the parent still runs: stopped, not orphaned
        assert not port_open(port)
        assert parent.wait(timeout=10) == 0


def test_resolve_model_errors_name_the_problem(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(FileNotFoundError, match=r"GGUF model file not found: .*nope\.gguf"):
        resolve_model(str(missing))
    with pytest.raises(ValueError, match=r"unknown local model 'gpt-9'.*available: 'smollm2'"):
        resolve_model("gpt-9")


def test_a_server_that_cannot_start_reports_its_own_error(tmp_path: Path) -> None:
    require_local_model()
    bad = tmp_path / "broken.gguf"
    bad.write_text("not a model")
    with pytest.raises(LocalServerError, match=r"exited with code 2:(.|\n)*failed to load model"):
        LocalModelServer(str(bad)).start()
