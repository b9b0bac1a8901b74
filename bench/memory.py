"""Benchmark 5: peak memory (RSS) of one round of a 10,000-member assembly with sim members.

Each size runs in a fresh subprocess: `runner.execute` of the citizens' assembly with
sim members (zero latency and faults, as in benchmark 1), all-to-all hearing, one
round, and voting from round 1 so the round has all three phases (speak, synthesize,
vote). The peak is the child's max RSS as the kernel reports it to the parent
(`os.wait4`), so it covers everything: interpreter, imports, seating, the round, the
transcript summary. The child also reports its RSS after imports, which separates
the fixed cost of the libraries from what the assembly itself needs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import ROOT, command_line, machine_info, table, write_result

SCENARIO = ROOT / "scenarios" / "citizens_assembly.yaml"
GIB = 2**30


def child(n: int, out: Path) -> None:
    """Runs in the subprocess: one round, then its figures as JSON on stdout."""
    import psutil

    from assembly.launch import execute
    from assembly.scenario.loading import load_scenario

    rss_imports = psutil.Process().memory_info().rss
    sc = load_scenario(
        SCENARIO,
        {
            "members": n,
            "rounds": 1,
            "protocol.first_vote_round": 1,
            "topology.kind": "all_to_all",
            "members.sim.latency.median_s": 0,
            "members.sim.faults": {},
        },
    )
    t0 = time.perf_counter()
    summary = asyncio.run(execute(sc, out))
    wall = time.perf_counter() - t0
    turns = (out / "transcript.jsonl").read_text(encoding="utf-8").count('"type":"turn"')
    print(
        json.dumps(
            {
                "members": n,
                "rss_after_imports": rss_imports,
                "wall_s": wall,
                "member_turns": turns,
                "rounds": summary["rounds"],
                "transcript_bytes": (out / "transcript.jsonl").stat().st_size,
                "self_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            }
        )
    )


def measure(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as td:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", str(n), "--out", str(Path(td) / "run")],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        assert proc.stdout is not None
        raw = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"child for N={n} exited with {proc.returncode}")
    data: dict[str, Any] = json.loads(raw)
    data["peak_rss"] = usage.ru_maxrss * 1024  # Linux reports KiB
    return data


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        child(args.child, args.out)
        return None
    machine = machine_info()
    rows = []
    for n in sorted(args.sizes):
        reps = [measure(n) for _ in range(args.reps)]
        row = dict(reps[0])
        for key in ("peak_rss", "rss_after_imports", "wall_s"):
            row[key] = statistics.median(r[key] for r in reps)
        row["peak_rss_all"] = [r["peak_rss"] for r in reps]
        rows.append(row)
    fig: dict[str, Any] = {"rows": rows}
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        fig["bytes_per_member"] = (b["peak_rss"] - a["peak_rss"]) / (b["members"] - a["members"])
    machine["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    write_result("memory", command_line(), fig, machine)
    print(f"Benchmark 5: peak RSS of one round (speak, synthesize, vote), sim members, median of {args.reps}")
    print(
        table(
            ["N", "member-turns", "peak RSS", "RSS after imports", "assembly's own (peak − imports)", "execute wall"],
            [
                [
                    f"{r['members']:,}",
                    f"{r['member_turns']:,}",
                    f"{r['peak_rss'] / 2**20:,.0f} MiB",
                    f"{r['rss_after_imports'] / 2**20:,.0f} MiB",
                    f"{(r['peak_rss'] - r['rss_after_imports']) / 2**20:,.0f} MiB",
                    f"{r['wall_s']:.1f} s",
                ]
                for r in rows
            ],
        )
    )
    if "bytes_per_member" in fig:
        print(f"marginal memory per member: {fig['bytes_per_member'] / 1024:,.1f} KiB")
    return fig


if __name__ == "__main__":
    main()
