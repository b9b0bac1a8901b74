"""Benchmark 1: orchestration overhead per member-turn, assembly vs autogen's RoundRobinGroupChat.

Both sides run in this one process, interleaved repetition by repetition, and each
is timed from a ready-to-run state (imports done, one warm-up run each) to a
finished run.

assembly: `runner.execute` of the citizens' assembly with sim members whose latency
and faults are zero, all-to-all hearing, 10 rounds. Every N must really play 10
rounds (with the shipped supermajority the run decides in round 3, which would
compare different amounts of work), so members abstain unless a candidate has
full support (`abstain_below: 1.0`): every member still votes every round from
round 3 on, but no vote reaches quorum, and the stall rule is off. (Requiring
unanimity used to be enough; with proportional seating and exact dynamics some
seeds reach it, e.g. N=64 in round 3.) A member-turn is one `Turn` event: N speeches + 1 facilitator synthesis per
round, plus N ballots from round 3 on. What is timed is everything `execute` does:
seating, building members, views, the sim policy (a Friedkin–Johnsen step in numpy
per member), validating every action, the durable JSONL transcript (flushed per
phase, fsynced per round), and the end-of-run summary that re-reads the transcript,
which is also reported on its own. Two more assembly variants separate the parts:
`nofsync` is the same run without the per-round fsync (`execute(durable=False)`, as
sweeps may use it), and `null` seats members that answer at once with a fixed valid
action (fsync on), which leaves the engine without the sim policy.

autogen: `RoundRobinGroupChat` of N `AssistantAgent`s, each backed by a
`ReplayChatCompletionClient` that returns a canned speech of the same length as a
sim speech, run for exactly as many turns (messages) as the assembly run has
member-turns. Timed: building agents and team, and `team.run`. Nothing is written to
disk. Up to N=64 only: it is slow.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import Sample, Samples, command_line, machine_info, measured, ms, table, us, write_result

from assembly import launch as runner
from assembly.core import run as core_run
from assembly.core.events import SeatedMember
from assembly.core.member import Member, Request, TurnResult
from assembly.core.transcript import TRANSCRIPT
from assembly.core.view import View
from assembly.protocols.facilitated.actions import Ballot, Candidate, Speech, Synthesis, candidates_of
from assembly.scenario.loading import load_scenario
from assembly.scenario.model import Scenario

SCENARIO = "scenarios/citizens_assembly.yaml"
ROUNDS = 10
OVERRIDES: dict[str, Any] = {
    "members.sim.latency.median_s": 0,
    "members.sim.faults": {},
    "topology.kind": "all_to_all",
    "rounds": ROUNDS,
    "protocol.decision_rule": {"kind": "unanimity"},
    "members.sim.abstain_below": 1.0,  # ballots abstain, so no vote decides: all N play 10 rounds
    "protocol.stall": None,
}
# A typical sim speech, so autogen's messages are as long as assembly's.
REPLY = (
    "I favour transit_expansion: Two new tram lines and 10-minute bus service on all main routes. "
    "My second choice is bike_network (0.55 vs 0.71)."
)


def scenario(n: int) -> Scenario:
    return load_scenario(Path(__file__).resolve().parent.parent / SCENARIO, {**OVERRIDES, "members": n})


# ----------------------------------------------------------------------------- assembly


class NullMember:
    """Answers at once with a fixed valid action: what is left is the engine's own cost."""

    def __init__(self, seat: SeatedMember, option_ids: list[str]) -> None:
        self.id = seat.id
        digits = re.findall(r"\d+", seat.id)
        self.index = int(digits[-1]) if digits else 0
        share = round(1.0 / len(option_ids), 4)
        self.speech = Speech(
            message=REPLY,
            position=option_ids[self.index % len(option_ids)],
            scores={o: share for o in option_ids},
            disclose=[],
        )
        self.synthesis = Synthesis(
            candidates=[Candidate(option=o, statement=f"Recommend {o}.") for o in option_ids[:3]],
            summary="Members spoke.",
        )
        self.ballots: dict[str, Ballot] = {}

    async def act(self, view: View, request: Request) -> TurnResult:
        if request.action is Speech:
            return TurnResult(action=self.speech)
        if request.action is Synthesis:
            return TurnResult(action=self.synthesis)
        # Votes spread over the candidates, so unanimity never decides and all rounds run.
        cands = [c["option"] for c in candidates_of(view.plenary)]
        choice = cands[self.index % len(cands)]
        ballot = self.ballots.get(choice)
        if ballot is None:
            ballot = self.ballots[choice] = Ballot(choice=choice, approve=[choice], ranking=[choice])
        return TurnResult(action=ballot)


def null_overrides(sc: Scenario, protocol_seats: list[str]) -> dict[str, Callable[[SeatedMember], Member]]:
    option_ids = [o.id for o in sc.options]
    return {seat: (lambda s: NullMember(s, option_ids)) for seat in protocol_seats}


class SummaryClock:
    """Times `core_run.write_summary` (the end-of-run summary, computed from the events
    the run wrote) inside `execute`, by wrapping the module attribute it calls."""

    def __init__(self) -> None:
        self.last = Sample(0.0, 0.0)
        self._orig = core_run.write_summary

    def __enter__(self) -> SummaryClock:
        def timed(run_dir: Path, protocol: Any, events: Any = None) -> dict[str, Any]:
            with measured(collect=False) as s:
                out = self._orig(run_dir, protocol, events)
            self.last = s
            return out

        core_run.write_summary = timed
        return self

    def __exit__(self, *exc: object) -> None:
        core_run.write_summary = self._orig


KINDS = ("sim", "nofsync", "null")


def assembly_once(n: int, kind: str, workdir: Path, clock: SummaryClock) -> tuple[Sample, Sample, int]:
    """One timed run of a variant in KINDS; returns (run sample, summary sample, member-turns)."""
    sc = scenario(n)
    run_dir = workdir / f"{kind}-{n}"
    overrides = None
    if kind == "null":
        seats = [f"member_{i}" for i in range(n)] + ["facilitator"]
        overrides = null_overrides(sc, seats)

    async def go() -> tuple[Sample, dict[str, Any]]:
        with measured() as s:
            summary = await runner.execute(sc, run_dir, overrides=overrides, durable=kind != "nofsync")
        return s, summary

    sample, summary = asyncio.run(go())
    if summary["rounds"] != ROUNDS:
        raise RuntimeError(f"{kind} N={n} played {summary['rounds']} rounds, not {ROUNDS}")
    turns = (run_dir / TRANSCRIPT).read_text(encoding="utf-8").count('"type":"turn"')
    shutil.rmtree(run_dir)
    return sample, clock.last, turns


# ----------------------------------------------------------------------------- autogen


def autogen_once(n: int, turns: int) -> Sample:
    from autogen_agentchat.agents import AssistantAgent
    from autogen_agentchat.base import ChatAgent, Team
    from autogen_agentchat.teams import RoundRobinGroupChat
    from autogen_ext.models.replay import ReplayChatCompletionClient

    per_agent = turns // n + 2

    async def go() -> tuple[Sample, int]:
        with measured() as s:
            agents: list[ChatAgent | Team] = [
                AssistantAgent(f"member_{i}", model_client=ReplayChatCompletionClient([REPLY] * per_agent))
                for i in range(n)
            ]
            team = RoundRobinGroupChat(agents, max_turns=turns)
            result = await team.run(task="Which measure should the assembly recommend to the council?")
        return s, len(result.messages)

    sample, messages = asyncio.run(go())
    if messages != turns + 1:  # the task message, then one message per turn
        raise RuntimeError(f"autogen N={n}: {messages - 1} turns, expected {turns}")
    return sample


# ----------------------------------------------------------------------------- driver


def reps_for(n: int, quick: bool) -> int:
    if quick:
        return 1
    return 7 if n <= 8 else 5 if n <= 64 else 3


def run(sizes: list[int], autogen_sizes: list[int], quick: bool) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as td, SummaryClock() as clock:
        work = Path(td)
        # Warm-up: lazy imports and first-call caches of both sides, never timed.
        for kind in KINDS:
            assembly_once(8, kind, work, clock)
        autogen_once(8, 16)
        for n in sizes:
            runs: dict[str, Samples] = {k: Samples() for k in KINDS}
            summaries: dict[str, Samples] = {k: Samples() for k in KINDS}
            ag = Samples()
            turns = 0
            for _ in range(reps_for(n, quick)):
                for kind in KINDS:
                    s, summ, t = assembly_once(n, kind, work, clock)
                    runs[kind].items.append(s)
                    summaries[kind].items.append(summ)
                    turns = t
                if n in autogen_sizes:
                    ag.items.append(autogen_once(n, turns))
            row: dict[str, Any] = {"members": n, "member_turns": turns, "reps": reps_for(n, quick)}
            for kind in KINDS:
                r, sm = runs[kind], summaries[kind]
                row[kind] = {
                    "run": r.as_json(),
                    "summary": sm.as_json(),
                    "per_turn_wall_s": r.wall / turns,
                    "per_turn_cpu_s": r.cpu / turns,
                    "per_turn_wall_s_without_summary": (r.wall - sm.wall) / turns,
                    "summary_share_of_run": sm.wall / r.wall,
                }
            if ag.items:
                row["autogen"] = {
                    "run": ag.as_json(),
                    "per_turn_wall_s": ag.wall / turns,
                    "per_turn_cpu_s": ag.cpu / turns,
                }
                row["ratio_wall"] = row["autogen"]["per_turn_wall_s"] / row["sim"]["per_turn_wall_s"]
                row["ratio_cpu"] = row["autogen"]["per_turn_cpu_s"] / row["sim"]["per_turn_cpu_s"]
            rows.append(row)
            print(f"  N={n}: done", file=sys.stderr, flush=True)
    first, last = rows[0], rows[-1]
    growth = {
        kind: {
            "total": last[kind]["per_turn_wall_s"] / first[kind]["per_turn_wall_s"],
            "without_summary": last[kind]["per_turn_wall_s_without_summary"]
            / first[kind]["per_turn_wall_s_without_summary"],
            "cpu": last[kind]["per_turn_cpu_s"] / first[kind]["per_turn_cpu_s"],
        }
        for kind in KINDS
    }
    return {"rows": rows, "growth": {"from": first["members"], "to": last["members"], **growth}}


def render(fig: dict[str, Any]) -> str:
    head = [
        "N",
        "member-turns",
        "assembly sim / turn (cpu)",
        "of which summary",
        "sim, no per-round fsync",
        "null members",
        "RoundRobinGroupChat / turn (cpu)",
        "ratio wall (cpu)",
        "ratio without the summary",
    ]
    body = []
    for r in fig["rows"]:
        ag = r.get("autogen")
        body.append(
            [
                r["members"],
                f"{r['member_turns']:,}",
                f"{us(r['sim']['per_turn_wall_s'])} ({us(r['sim']['per_turn_cpu_s'])})",
                f"{r['sim']['summary_share_of_run']:.0%}",
                f"{us(r['nofsync']['per_turn_wall_s'])} ({us(r['nofsync']['per_turn_cpu_s'])})",
                f"{us(r['null']['per_turn_wall_s'])} ({us(r['null']['per_turn_cpu_s'])})",
                f"{ms(ag['per_turn_wall_s'])} ({ms(ag['per_turn_cpu_s'])})" if ag else "not run",
                f"{r['ratio_wall']:.0f}× ({r['ratio_cpu']:.0f}×)" if ag else "",
                # The goal is judged on the whole run (above); this is the run's
                # orchestration alone, beside a group chat that computes no metrics.
                f"{ag['per_turn_wall_s'] / r['sim']['per_turn_wall_s_without_summary']:.0f}×" if ag else "",
            ]
        )
    g = fig["growth"]
    foot = (
        f"growth per member-turn N={g['from']}→{g['to']}: sim {g['sim']['total']:.2f}× "
        f"({g['sim']['without_summary']:.2f}× without the summary, cpu {g['sim']['cpu']:.2f}×); "
        f"no fsync {g['nofsync']['total']:.2f}× (cpu {g['nofsync']['cpu']:.2f}×); "
        f"null {g['null']['total']:.2f}× (cpu {g['null']['cpu']:.2f}×)"
    )
    return table(head, body) + "\n" + foot


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 64, 512, 2048])
    ap.add_argument("--autogen-sizes", type=int, nargs="+", default=[8, 64])
    ap.add_argument("--quick", action="store_true", help="one repetition each (a smoke test, not a figure)")
    args = ap.parse_args(argv)
    machine = machine_info()
    fig = run(sorted(args.sizes), args.autogen_sizes, args.quick)
    machine["load_avg_after"] = [round(x, 2) for x in __import__("os").getloadavg()]
    write_result("overhead", command_line(), fig, machine)
    print("Benchmark 1: overhead per member-turn (median wall, process CPU in brackets)")
    print(render(fig))
    return fig


if __name__ == "__main__":
    main()
