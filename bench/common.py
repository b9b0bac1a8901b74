"""Shared benchmark plumbing: machine info, repeated timing, results files, tables.

Every benchmark writes `bench/results/<name>.json` holding its figures next to the
machine they were measured on (CPU, cores, RAM, load, versions, git commit), so a
number is never separated from its context. Timings are medians of several
repetitions; process CPU time is recorded beside wall time because this machine is
shared, and CPU time is far less sensitive to other processes than wall time is.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"

_PACKAGES = (
    "assembly",
    "pydantic",
    "pydantic-core",
    "numpy",
    "networkx",
    "autogen-agentchat",
    "autogen-core",
    "autogen-ext",
    "openai",
    "httpx",
    "litellm",
    "psutil",
    "pyinstrument",
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    """HEAD, with `+dirty` when the tree has uncommitted changes (figures then describe
    a working tree, not a commit, and the results file should say so)."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def machine_info() -> dict[str, Any]:
    import psutil

    versions: dict[str, str] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "git": git_commit(),
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


@dataclass
class Sample:
    """Wall and process CPU seconds of one repetition."""

    wall_s: float
    cpu_s: float


@dataclass
class Samples:
    items: list[Sample] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(s.wall_s for s in self.items)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu_s for s in self.items)

    def as_json(self) -> dict[str, Any]:
        return {
            "median_wall_s": round(self.wall, 6),
            "median_cpu_s": round(self.cpu, 6),
            "wall_s": [round(s.wall_s, 6) for s in self.items],
            "cpu_s": [round(s.cpu_s, 6) for s in self.items],
        }


@contextmanager
def measured(collect: bool = True) -> Iterator[Sample]:
    """Time a block: wall clock and this process's CPU time (all threads).

    By default a full collection first, so one repetition does not pay for the
    garbage of the one before it (not wanted when timing a part of a timed run)."""
    if collect:
        gc.collect()
    sample = Sample(0.0, 0.0)
    c0, t0 = time.process_time(), time.perf_counter()
    try:
        yield sample
    finally:
        sample.wall_s = time.perf_counter() - t0
        sample.cpu_s = time.process_time() - c0


def repeat(fn: Callable[[], Any], reps: int) -> tuple[Samples, list[Any]]:
    """Run `fn` `reps` times, each measured; returns the samples and fn's results."""
    samples, results = Samples(), []
    for _ in range(reps):
        with measured() as s:
            results.append(fn())
        samples.items.append(s)
    return samples, results


def write_result(name: str, command: str, figures: dict[str, Any], machine: dict[str, Any] | None = None) -> Path:
    """Write bench/results/<name>.json atomically."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "command": command, "machine": machine or machine_info(), **figures}
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_result(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (pastes into the README as is, and reads fine in a terminal)."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    return "\n".join(
        [line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in cells[1:])]
    )


def command_line() -> str:
    """How this benchmark was invoked, relative to the repository root."""
    script = Path(sys.argv[0]).resolve()
    try:
        shown = str(script.relative_to(ROOT))
    except ValueError:
        shown = str(script)
    return " ".join([".venv/bin/python", shown, *sys.argv[1:]])


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.2f} ms"


def inclusive_time(root: Any, parts: Sequence[tuple[str, str, str]]) -> dict[str, float]:
    """Seconds a pyinstrument frame tree spends inside each named part.

    `parts` are (name, class name or "", function name). A frame matching a part adds
    its time once: frames nested inside the same part are not counted again."""
    out: dict[str, float] = {}

    def walk(frame: Any, inside: frozenset[str]) -> None:
        here = inside
        for name, cls, fn in parts:
            if frame.function == fn and (not cls or frame.class_name == cls) and name not in inside:
                out[name] = out.get(name, 0.0) + frame.time
                here = here | {name}
        for child in frame.children:
            walk(child, here)

    walk(root, frozenset())
    return out
