"""Benchmark 4: sweep throughput, 1,000 sim consensus-game runs (N=8, up to 50 rounds).

Runs `bench/sweeps/consensus_1000.yaml` through the sweep machinery users get
(`load_sweep` + `run_sweep` with the process-pool executor, one worker per core),
into a fresh folder per repetition, including what `assembly sweep` does after the
runs: results tables and figures. Timed from loading the sweep file (which
validates all 1,000 scenarios) to the last figure written; the runs phase alone
(first run submitted to last result in) is reported beside it.

CPU utilisation is reported two ways: the sweep's own process tree (this process,
the forkserver and its workers, sampled every 0.1 s) as a share of wall time x
cores, and the whole machine's busy share over the same interval, which also counts
anything else running on it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from common import BENCH, command_line, machine_info, table, write_result

from assembly.sweeps.executors import ProcessExecutor
from assembly.sweeps.sweep import Tally, load_sweep, run_sweep

SWEEP = BENCH / "sweeps" / "consensus_1000.yaml"


class TreeCpu:
    """CPU seconds used by this process and all its descendants, sampled in a thread.

    Workers are not our direct children (forkserver forks them), so their CPU never
    reaches RUSAGE_CHILDREN; the last value seen for each pid is kept instead (an
    undercount of at most one sampling interval per worker)."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.me = psutil.Process()
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        for p in self.me.children(recursive=True):
            try:
                t = p.cpu_times()
            except psutil.Error:
                continue
            self.seen[p.pid] = max(self.seen.get(p.pid, 0.0), t.user + t.system)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> TreeCpu:
        t = self.me.cpu_times()
        self.own0 = t.user + t.system
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sample()
        self._stop.set()
        self._thread.join()
        t = self.me.cpu_times()
        self.own = t.user + t.system - self.own0

    @property
    def total(self) -> float:
        return self.own + sum(self.seen.values())


def busy(before: Any, after: Any) -> float:
    """Machine-wide busy share between two psutil.cpu_times() readings.

    Linux counts guest time inside user time as well, so guest fields are left out of
    the total; idle and iowait are the idle part."""
    fields = [f for f in after._fields if f not in ("guest", "guest_nice")]
    total = sum(getattr(after, f) - getattr(before, f) for f in fields)
    idle = sum(getattr(after, f) - getattr(before, f) for f in ("idle", "iowait") if f in fields)
    return 1.0 - idle / total if total > 0 else 0.0


def once(work: Path, workers: int, draw: bool) -> dict[str, Any]:
    out = work / "sweep"
    if out.exists():
        shutil.rmtree(out)
    marks: list[float] = []
    seen: list[int] = []

    def progress(tally: Tally) -> None:
        # Called as runs finish and, twice a second, with live turn counts: mark only
        # the start and each finished run, so the run phase ends at the last run.
        if not seen or tally.done != seen[-1]:
            seen.append(tally.done)
            marks.append(time.perf_counter())

    sys0 = psutil.cpu_times()
    with TreeCpu() as cpu:
        t0 = time.perf_counter()
        plan = load_sweep(SWEEP)
        report = run_sweep(plan, out, ProcessExecutor(workers), progress=progress, draw=draw)
        wall = time.perf_counter() - t0
    sys1 = psutil.cpu_times()
    runs = report.tally.done - report.tally.skipped
    if report.tally.failed or runs != len(plan.runs):
        raise RuntimeError(f"{report.tally.failed} failed / {runs} of {len(plan.runs)} runs done")
    rounds = report.results["rounds"]
    shutil.rmtree(out)
    cores = os.cpu_count() or 1
    return {
        "runs": runs,
        "wall_s": wall,
        "runs_phase_s": marks[-1] - marks[0],
        "tree_cpu_s": cpu.total,
        "tree_utilisation": cpu.total / (wall * cores),
        "machine_busy": busy(sys0, sys1),
        "workers": workers,
        "rounds_mean": float(rounds.mean()),
        "rounds_max": int(rounds.max()),
        "outcomes": dict(report.tally.outcomes),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-figures", action="store_true", help="skip drawing figures (tables are still written)")
    args = ap.parse_args(argv)
    machine = machine_info()
    reps = []
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as td:
        for _ in range(args.reps):
            reps.append(once(Path(td), args.workers, draw=not args.no_figures))
    med = {
        k: statistics.median(r[k] for r in reps)
        for k in ("wall_s", "runs_phase_s", "tree_cpu_s", "tree_utilisation", "machine_busy")
    }
    runs = reps[0]["runs"]
    fig = {
        "runs": runs,
        "workers": args.workers,
        "reps": len(reps),
        "median": med,
        "runs_per_s": runs / med["wall_s"],
        "runs_per_s_runs_phase": runs / med["runs_phase_s"],
        "cpu_ms_per_run": med["tree_cpu_s"] / runs * 1e3,
        "repetitions": reps,
    }
    machine["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    write_result("sweep_throughput", command_line(), fig, machine)
    print(
        f"Benchmark 4: sweep throughput, {runs} consensus-game runs (sim, N=8, up to 50 rounds), "
        f"{args.workers} worker processes, median of {len(reps)}"
    )
    print(
        table(
            [
                "wall, load to figures",
                "runs phase",
                "runs/s (runs phase)",
                "CPU per run",
                "sweep CPU utilisation",
                "machine busy",
            ],
            [
                [
                    f"{med['wall_s']:.1f} s",
                    f"{med['runs_phase_s']:.1f} s",
                    f"{fig['runs_per_s']:.1f} ({fig['runs_per_s_runs_phase']:.1f})",
                    f"{fig['cpu_ms_per_run']:.0f} ms",
                    f"{med['tree_utilisation']:.0%}",
                    f"{med['machine_busy']:.0%}",
                ]
            ],
        )
    )
    print(
        f"rounds per run: mean {reps[0]['rounds_mean']:.1f}, max {reps[0]['rounds_max']}; "
        f"outcomes {reps[0]['outcomes']}"
    )
    return fig


if __name__ == "__main__":
    main()
