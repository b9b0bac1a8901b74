"""The real CLI in a real process, with a fault at a chosen point (for crash and race tests).

python -m tests.cli_under_fault stop-after-lock -- resume RUN
    Stops itself (SIGSTOP) right after taking its first writer lock, so a test
    can start a second writer while the first surely holds the lock, then kill
    the holder or let it go on (SIGCONT). Timing plays no part.

python -m tests.cli_under_fault kill-at-lines COUNT_FILE N1,N2,... -- run SCENARIO --out DIR-{n}
    For each N, a child process (forked after the imports, so each costs a run,
    not a start-up) kills itself (SIGKILL) at the N-th line executed in the
    modules that start a run (lock, run folder, transcript creation), counted
    until the transcript's first events are on disk; `{n}` in the arguments is
    replaced by N. N = 0 kills nothing and writes the number of such lines to
    COUNT_FILE, so a test can spread kill points over all of them. Prints one
    line per child: N and how it ended (its exit code, or minus the signal).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

START_UP = ("core/lock.py", "core/run.py", "core/transcript.py", "core/atomic.py", "launch.py")


def _stop_after_lock() -> None:
    from assembly.core import lock

    original = lock.writer_lock
    stopped = [False]

    @contextlib.contextmanager
    def stopping(folder: Path, command: str) -> Iterator[None]:
        with original(folder, command):
            if not stopped[0]:
                stopped[0] = True
                os.kill(os.getpid(), signal.SIGSTOP)
            yield

    # Modules bind the name when they import it; they are imported after this.
    lock.writer_lock = stopping  # type: ignore[assignment]


def _kill_at_line(n: int, count_file: Path) -> None:
    root = str(Path(__file__).resolve().parent.parent / "assembly")
    watched = tuple(os.path.join(root, f) for f in START_UP)
    seen = [0]
    done = [False]

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if done[0]:
            return None
        if event == "line":
            seen[0] += 1
            if seen[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)
        elif event == "return" and frame.f_code.co_name == "_create":
            done[0] = True  # the transcript holds its first events: start-up is over
            count_file.write_text(str(seen[0]))
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        if done[0] or not frame.f_code.co_filename.startswith(watched):
            return None
        return local(frame, event, arg)

    sys.settrace(tracer)


def _kill_at_lines(count_file: Path, points: list[int], cli_args: list[str]) -> None:
    import importlib

    from assembly.cli import app

    # What `run` imports lazily, imported once here: the children count only the lines
    # a run executes, and start in milliseconds.
    for module in ("assembly.launch", "assembly.inspection.console", "assembly.llm.setup", "assembly.protocols"):
        importlib.import_module(module)

    for n in points:
        pid = os.fork()
        if pid == 0:
            _kill_at_line(n, count_file)
            sys.argv = ["assembly", *(a.replace("{n}", str(n)) for a in cli_args)]
            try:
                app()
            except SystemExit as exc:
                os._exit(exc.code if isinstance(exc.code, int) else 1)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print("ended", n, os.waitstatus_to_exitcode(status), flush=True)


def main() -> None:
    split = sys.argv.index("--")
    mode, options, cli_args = sys.argv[1], sys.argv[2:split], sys.argv[split + 1 :]
    if mode == "kill-at-lines":
        _kill_at_lines(Path(options[0]), [int(n) for n in options[1].split(",")], cli_args)
        return
    if mode != "stop-after-lock":
        raise SystemExit(f"unknown mode {mode!r}")
    _stop_after_lock()
    from assembly.cli import app

    sys.argv = ["assembly", *cli_args]
    sys.exit(app())


if __name__ == "__main__":
    main()
