"""Where an assembly run's time goes: pyinstrument over benchmark 1's run, per N.

Profiles exactly what `overhead.py` times (sim members, zero latency and faults,
all-to-all, 10 rounds); small N are run 512/N times so a profile has enough samples. The profiler slows the run down, so
only shares are reported, never absolute times. Two views per N:

- buckets: inclusive share of the run in each part of the pipeline (outermost call
  only, so nothing is counted twice within a bucket);
- hottest functions by self time (pyinstrument's flat view).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import RESULTS, command_line, inclusive_time, machine_info, table, write_result
from overhead import scenario
from pyinstrument import Profiler
from pyinstrument.frame import Frame

from assembly import launch as runner

# (bucket, class name or "", function name): the parts of a run, in pipeline order.
BUCKETS: list[tuple[str, str, str]] = [
    ("seating + building members", "FacilitatedAssembly", "seat"),
    ("seating + building members", "", "build_members"),
    ("sim policy (SimMember.act_now)", "SimMember", "act_now"),
    ("sim policy (SimMember.act_now)", "SimMember", "act"),
    ("building views (ViewBuilder.view)", "ViewBuilder", "view"),
    ("task scheduling (ensure_future; none for sim members)", "", "ensure_future"),
    ("recording turns (Engine._turn)", "Engine", "_turn"),
    ("folding events (Engine.observe)", "Engine", "observe"),
    ("writing the transcript", "TranscriptWriter", "dump"),
    ("writing the transcript", "TranscriptWriter", "write_dumped"),
    ("fsync per round", "TranscriptWriter", "sync"),
    ("tally + disclosures", "FacilitatedAssembly", "_tally"),
    ("tally + disclosures", "FacilitatedAssembly", "_disclosures"),
    ("summary (from the written events)", "", "write_summary"),
]


def _buckets(root: Frame) -> dict[str, float]:
    return inclusive_time(root, BUCKETS)


def _self_times(root: Frame) -> dict[str, float]:
    """Self time per function over the whole tree (pyinstrument's processors off, so
    library frames are not folded into their callers)."""
    out: dict[str, float] = {}

    def walk(frame: Frame, owner: str) -> None:
        synthetic = frame.function.startswith("[")  # e.g. [self]: time of the caller itself
        key = owner if synthetic else _name(frame)
        own = frame.time - sum(c.time for c in frame.children)
        out[key] = out.get(key, 0.0) + own
        for child in frame.children:
            walk(child, key)

    walk(root, _name(root))
    return out


def _name(frame: Frame) -> str:
    fn = f"{frame.class_name}.{frame.function}" if frame.class_name else frame.function
    path = (frame.file_path_short or "").replace("../", "")
    return f"{fn} ({path}:{frame.line_no})" if path else fn


def profile(n: int, work: Path, interval: float) -> dict[str, Any]:
    sc = scenario(n)
    runs = max(1, 512 // n)  # small runs are repeated, or a profile would hold a few dozen samples
    profiler = Profiler(interval=interval, async_mode="disabled")
    profiler.start()
    for i in range(runs):
        asyncio.run(runner.execute(sc, work / f"run-{n}-{i}"))
    profiler.stop()
    session = profiler.last_session
    assert session is not None
    root = session.root_frame()
    assert root is not None
    # Member tasks run from the event loop, not under `execute`'s frame, so shares are
    # of the whole profiled time (the runs are all there is under the profiler).
    total = root.time
    shares = {k: v / total for k, v in _buckets(root).items()}
    tree = profiler.output_text(time="percent_of_total")
    (RESULTS / f"profile_overhead_{n}.txt").write_text(tree, encoding="utf-8")
    selfs = sorted(_self_times(root).items(), key=lambda kv: -kv[1])
    top = [f"{t / total:5.1%}  {name}" for name, t in selfs[:12]]
    return {
        "members": n,
        "runs": runs,
        "profiled_s": round(total, 3),
        "buckets": {k: round(v, 4) for k, v in shares.items()},
        "other": round(1.0 - sum(shares.values()), 4),
        "top_self": top,
    }


def render(rows: list[dict[str, Any]]) -> str:
    names = list(dict.fromkeys(b for b, _, _ in BUCKETS))
    head = ["part of the run", *[f"N={r['members']}" for r in rows]]
    body = [[name, *[f"{r['buckets'].get(name, 0.0):.0%}" for r in rows]] for name in names]
    body.append(["other (event loop, asyncio, protocol glue)", *[f"{r['other']:.0%}" for r in rows]])
    out = [table(head, body)]
    for r in rows:
        out.append(f"\nN={r['members']}: hottest functions by self time (% of the run)")
        out.extend("  " + line for line in r["top_self"][:8])
    return "\n".join(out)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 64, 512, 2048])
    ap.add_argument("--interval", type=float, default=0.001, help="sampling interval, seconds")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as td:
        asyncio.run(runner.execute(scenario(8), Path(td) / "warm-up"))
        for n in sorted(args.sizes):
            rows.append(profile(n, Path(td), args.interval))
            print(f"  N={n}: done", file=sys.stderr, flush=True)
    write_result("profile_overhead", command_line(), {"rows": rows}, machine_info())
    print("Where the time goes (pyinstrument, share of one run; full trees in bench/results/profile_overhead_N.txt)")
    print(render(rows))
    return rows


if __name__ == "__main__":
    main()
