"""Benchmark 2: concurrency against the floor, LLM members vs a server with fixed latency L.

N LLM members of the citizens' assembly (autogen AssistantAgents, structured output)
call the loopback OpenAI-compatible server (bench/latency_server.py, in its own process),
which answers every request after exactly L seconds. A round here is one concurrent
phase: all N members speak, then the facilitator (sim, instant) synthesises; votes are
off (first_vote_round beyond the last round). So the floor of a round is L, and
round wall / L measures what concurrency, HTTP and orchestration add on top.

Both client paths are measured: `openai` and `litellm` (both reach this OpenAI-compatible
server on the lean transport, `llm/http1.py`, litellm after resolving the provider once).
Like every loopback benchmark, the server runs on its own CPU (`llm_harness.fake_server`). Round wall is the engine's
own `RoundEnded.timing.wall_s`; round 1 opens the connections (cold), rounds 2+ reuse
them (warm). Client CPU per call is this process's CPU time over the whole run
(seating, agents, engine, HTTP, validation, transcript, summary) divided by the calls
made, and, in brackets, its CPU time inside warm rounds only divided by their calls
(the marginal cost of one more call); the server's CPU is not in it, and is reported beside it (both share the
machine's cores, so together they bound how fast a round of N calls can be).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import ROOT, command_line, machine_info, measured, table, write_result
from llm_harness import PATHS, RoundCpu, Server, fake_server, profile, run

from assembly.core.events import RoundEnded
from assembly.core.transcript import read_transcript
from assembly.scenario.loading import load_scenario
from assembly.scenario.model import Scenario

ROUNDS = 3


def scenario(n: int, prof: str) -> Scenario:
    return load_scenario(
        ROOT / "scenarios" / "citizens_assembly.yaml",
        {
            "members": n,
            "rounds": ROUNDS,
            "members.policy": "llm",
            "members.profile": prof,
            "facilitator.policy": "sim",
            # The sim facilitator is part of the bench, not under test: the shipped
            # scenario's sim latency (virtual, median 2 s, past a 5 s deadline about
            # one round in eight) and injected faults would be recorded as its
            # failed turns, counted beside the LLM members'.
            "members.sim.latency.median_s": 0,
            "members.sim.faults": {},
            "protocol.first_vote_round": ROUNDS + 1,
            "protocol.stall": None,
            "topology.kind": "all_to_all",
            "turn_timeout": 60,
            "protocol.round_timeout_s": 300,
        },
    )


def once(n: int, path: str, server: Server, work: Path, rep: int) -> dict[str, Any]:
    prof = profile(server.url, path)
    run_dir = work / f"{path}-{n}-{rep}"
    server0 = server.cpu_s()
    rounds_cpu = RoundCpu()
    with measured() as s:
        summary = run(scenario(n, prof.name), run_dir, prof, [rounds_cpu])
    server_cpu = server.cpu_s() - server0
    events = read_transcript(run_dir).events
    walls = [float((e.timing or {}).get("wall_s", 0.0)) for e in events if isinstance(e, RoundEnded)]
    totals = summary["totals"]
    if summary["rounds"] != ROUNDS or totals["cache_hits"]:
        raise RuntimeError(f"{path} N={n}: {summary['rounds']} rounds, {totals['cache_hits']} cache hits")
    return {
        "round_walls": walls,
        "calls": totals["calls"],
        "cpu_s": s.cpu_s,
        "wall_s": s.wall_s,
        "server_cpu_s": server_cpu,
        "warm_rounds_cpu_s": sum(c for r, c in rounds_cpu.per_round.items() if r > 1),
        "warm_calls": n * (ROUNDS - 1),
        "failed_turns": totals["turn_timeouts"] + totals["provider_errors"] + totals["malformed"],
        "retries": totals["retries"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 64, 256])
    ap.add_argument("--latency", type=float, default=0.2, help="L, the server's fixed latency in seconds")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    args = ap.parse_args(argv)
    machine = machine_info()
    L = args.latency
    rows = []
    with fake_server(L) as server, tempfile.TemporaryDirectory(prefix="bench-concurrency-") as td:
        work = Path(td)
        for path in args.paths:  # warm-up: imports and first-call caches of each path
            once(8, path, server, work, -1)
        for n in sorted(args.sizes):
            for path in args.paths:
                reps = [once(n, path, server, work, i) for i in range(args.reps)]
                cold = [r["round_walls"][0] for r in reps]
                warm = [w for r in reps for w in r["round_walls"][1:]]
                calls = sum(r["calls"] for r in reps)
                rows.append(
                    {
                        "members": n,
                        "path": path,
                        "latency_s": L,
                        "reps": args.reps,
                        "round_over_L": statistics.median(warm) / L,
                        "round1_over_L": statistics.median(cold) / L,
                        "warm_round_walls": warm,
                        "round1_walls": cold,
                        "cpu_per_call_s": sum(r["cpu_s"] for r in reps) / calls,
                        "calls": calls,
                        "server_cpu_per_call_s": sum(r["server_cpu_s"] for r in reps) / calls,
                        "round_cpu_per_call_s": sum(r["warm_rounds_cpu_s"] for r in reps)
                        / sum(r["warm_calls"] for r in reps),
                        "failed_turns": sum(r["failed_turns"] for r in reps),
                        "retries": sum(r["retries"] for r in reps),
                    }
                )
                print(f"  N={n} {path}: done", file=sys.stderr, flush=True)
    machine["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    fig = {"latency_s": L, "rounds_per_run": ROUNDS, "rows": rows}
    write_result("concurrency", command_line(), fig, machine)
    print(
        f"Benchmark 2: round wall / L with L = {L * 1e3:.0f} ms (one concurrent phase per round; "
        f"median of warm rounds 2..{ROUNDS} over {args.reps} runs; round 1 opens connections)"
    )
    print(
        table(
            [
                "N",
                "client path",
                "round / L (warm)",
                "round 1 / L (cold)",
                "client CPU per call: run (rounds)",
                "server CPU per call",
                "calls",
                "failed turns",
                "retries",
            ],
            [
                [
                    r["members"],
                    r["path"],
                    f"{r['round_over_L']:.2f}",
                    f"{r['round1_over_L']:.2f}",
                    f"{r['cpu_per_call_s'] * 1e3:.1f} ms ({r['round_cpu_per_call_s'] * 1e3:.1f} ms)",
                    f"{r['server_cpu_per_call_s'] * 1e3:.1f} ms",
                    r["calls"],
                    r["failed_turns"],
                    r["retries"],
                ]
                for r in rows
            ],
        )
    )
    return fig


if __name__ == "__main__":
    main()
