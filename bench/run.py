"""Run every benchmark, then print the goals table.

    .venv/bin/python bench/run.py                  # everything (about 8 minutes on 2 cores)
    .venv/bin/python bench/run.py --only overhead memory

Each benchmark runs in its own subprocess (so one benchmark's imports, caches and
garbage never flavour another's figures), prints its own table and writes
bench/results/<name>.json; this script then reads those files and checks the goals
of issues 7 and 12 against them. A goal whose figure is missing is reported as not
measured, never as met.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from common import BENCH, ROOT, machine_info, read_result, table

# In the order they run; each profile follows the benchmark whose run it explains.
BENCHMARKS = [
    "overhead",
    "profile_overhead",
    "concurrency",
    "profile_llm",
    "client_cpu",
    "round_wall",
    "prompt_growth",
    "sweep_throughput",
    "memory",
]

Check = Callable[[], tuple[str, str, bool | None]]  # (goal, measured, met); met None = not measured


def _get(name: str) -> dict[str, Any] | None:
    return read_result(name)


def _row(rows: list[dict[str, Any]], key: str, value: Any) -> dict[str, Any] | None:
    return next((r for r in rows if r.get(key) == value), None)


def goal_overhead() -> tuple[str, str, bool | None]:
    goal = "overhead per member-turn ≥ 50× below RoundRobinGroupChat at N=64"
    data = _get("overhead")
    row = _row(data["rows"], "members", 64) if data else None
    if row is None or "ratio_wall" not in row:
        return goal, "not measured", None
    return (
        goal,
        (
            f"{row['ratio_wall']:.0f}× wall, {row['ratio_cpu']:.0f}× CPU "
            f"({row['sim']['per_turn_wall_s'] * 1e6:.0f} µs vs "
            f"{row['autogen']['per_turn_wall_s'] * 1e3:.2f} ms)"
        ),
        row["ratio_wall"] >= 50,
    )


def goal_flat() -> tuple[str, str, bool | None]:
    goal = "< 2× growth per member-turn from N=8 to N=2048"
    data = _get("overhead")
    if not data or data["growth"]["from"] != 8 or data["growth"]["to"] != 2048:
        return goal, "not measured", None
    g = data["growth"]["sim"]
    return goal, f"{g['total']:.2f}× wall ({g['cpu']:.2f}× CPU)", g["total"] < 2


def goal_client_cpu() -> tuple[str, str, bool | None]:
    goal = "client CPU ≤ 1 ms per call at N=256, both client paths"
    data = _get("client_cpu")
    rows = [r for r in data["rows"] if r["members"] == 256] if data else []
    ours = {r["stack"]: statistics.median(r["cpu_per_call_s"]) for r in rows}
    if "assembly openai" not in ours or "assembly litellm" not in ours:
        return goal, "not measured", None
    text = ", ".join(f"{k.removeprefix('assembly ')} {v * 1e3:.2f} ms" for k, v in ours.items() if "assembly" in k)
    text += f" (http1 floor {ours.get('http1 floor', float('nan')) * 1e3:.2f} ms"
    text += f", aiohttp floor {ours.get('aiohttp floor', float('nan')) * 1e3:.2f} ms"
    text += f", OpenAI SDK {ours.get('openai SDK', float('nan')) * 1e3:.2f} ms)"
    return goal, text, max(ours["assembly openai"], ours["assembly litellm"]) <= 1e-3


def _round_wall(members: int, latency: float) -> dict[str, Any] | None:
    data = _get("round_wall")
    rows = data["rows"] if data else []
    return next((r for r in rows if r["members"] == members and r["latency_s"] == latency), None)


def goal_round_wall(latency: float, bound: float) -> Check:
    def check() -> tuple[str, str, bool | None]:
        goal = f"round wall ≤ {bound:g} × L at N=256, L = {latency:g} s"
        row = _round_wall(256, latency)
        if row is None:
            return goal, "not measured", None
        floor = row.get("http_floor_warm_over_L")
        beside = f" (bare transport, same server: {floor:.2f} × L)" if floor is not None else ""
        # Three decimals: at two, a ratio just over its bound would print as the bound.
        return goal, f"{row['warm_over_L']:.3f} × L{beside}", row["warm_over_L"] <= bound

    return check


def goal_no_failed_turns() -> tuple[str, str, bool | None]:
    goal = "no turn_timeout/provider_error/malformed at N=256, L = 1 s, 5 s deadline"
    row = _round_wall(256, 1.0)
    if row is None:
        return goal, "not measured", None
    failed = row["turn_timeouts"] + row["provider_errors"] + row["malformed"]
    return (
        goal,
        f"{row['turn_timeouts']} / {row['provider_errors']} / {row['malformed']} ({row['throttled']} throttled)",
        failed == 0,
    )


def goal_round_wall_1024() -> tuple[str, str, bool | None]:
    goal = "round wall at N=1,024, L = 1 s (measured)"
    row = _round_wall(1024, 1.0)
    if row is None:
        return goal, "not measured", None
    return (
        goal,
        f"{row['warm_over_L']:.2f} × L; {row['turn_timeouts']} turn_timeouts, {row['throttled']} throttled",
        True,
    )


def goal_prompt() -> tuple[str, str, bool | None]:
    goal = "prompt tokens at round 30 ≤ 2× round 1, with the window"
    data = _get("prompt_growth")
    if not data or "window_growth" not in data:
        return goal, "not measured", None
    g = data["window_growth"]
    return goal, f"{g:.2f}×", g <= 2


def goal_sweep() -> tuple[str, str, bool | None]:
    goal = "1,000 sim consensus-game runs in < 60 s"
    data = _get("sweep_throughput")
    if not data:
        return goal, "not measured", None
    wall = data["median"]["wall_s"]
    return (
        goal,
        (
            f"{wall:.1f} s ({data['runs_per_s']:.1f} runs/s, sweep CPU utilisation "
            f"{data['median']['tree_utilisation']:.0%})"
        ),
        data["runs"] == 1000 and wall < 60,
    )


def goal_memory() -> tuple[str, str, bool | None]:
    goal = "a 10,000-member round under 2 GiB"
    data = _get("memory")
    row = _row(data["rows"], "members", 10000) if data else None
    if row is None:
        return goal, "not measured", None
    return goal, f"{row['peak_rss'] / 2**20:,.0f} MiB peak RSS", row["peak_rss"] < 2 * 2**30


GOALS: list[Check] = [
    goal_overhead,
    goal_flat,
    goal_client_cpu,
    goal_round_wall(1.0, 1.2),
    goal_round_wall(2.0, 1.1),
    goal_no_failed_turns,
    goal_round_wall_1024,
    goal_prompt,
    goal_sweep,
    goal_memory,
]


def goals_table() -> str:
    rows = []
    for check in GOALS:
        goal, measured, met = check()
        rows.append([goal, measured, "not measured" if met is None else "met" if met else "MISSED"])
    return table(["goal", "measured", ""], rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these benchmarks")
    ap.add_argument("--skip", nargs="+", choices=BENCHMARKS, default=[], help="do not run these")
    ap.add_argument("--goals", action="store_true", help="only print the goals table from existing results")
    args = ap.parse_args(argv)
    failed = []
    t0 = time.perf_counter()
    if not args.goals:
        m = machine_info()
        print(
            f"machine: {m['cpu']}, {m['logical_cpus']} CPUs, {m['ram_gib']} GiB RAM, Python {m['python']}, "
            f"git {m['git']}, load average {m['load_avg_1_5_15']}\n",
            flush=True,
        )
        for name in args.only or BENCHMARKS:
            if name in args.skip:
                continue
            script = BENCH / f"{name}.py"
            if not script.exists():
                print(f"== {name}: no script yet, skipped\n", flush=True)
                continue
            print(f"== {name}", flush=True)
            t = time.perf_counter()
            code = subprocess.run([sys.executable, str(script)], cwd=ROOT, check=False).returncode
            print(
                f"({name}: {time.perf_counter() - t:.0f} s{'' if code == 0 else f', FAILED with exit {code}'})\n",
                flush=True,
            )
            if code != 0:
                failed.append(name)
    print("Goals (issues 7 and 12), from bench/results/*.json")
    print(goals_table())
    if not args.goals:
        print(
            f"\nall benchmarks: {time.perf_counter() - t0:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else "")
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
