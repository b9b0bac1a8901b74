"""Benchmark 3: prompt tokens per member-turn at rounds 1, 10 and 30, window vs full history.

The citizens' assembly (24 members, all-to-all, the shipped size) runs 30 rounds with
its view window of 3 rounds plus the facilitator's running summary, and again with a
window of 100 rounds, which for 30 rounds is the full history. Unanimity with a
quorum of every seat is required and the stall rule is off, so every run plays all
30 rounds. Two sources:

- `http`: LLM members and an LLM facilitator call the loopback OpenAI-compatible
  server (bench/latency_server.py, latency 0) over the openai client path; tokens are
  what the server reports and the transcript records (its count is characters / 4).
  The server's answers are schema instances of 1 to 8 random words per text field,
  far shorter than a model's, so the heard part of every prompt is small.
- `full-length`: members that render exactly the prompt an LLM member would send
  (`Protocol.prompt`, system + user message), count its tokens with tiktoken's
  cl100k_base, and answer with text as long as the prompts ask for (120-word
  speeches, a 200-word summary, one-sentence candidates). This is the realistic
  upper end; no HTTP is involved.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import ROOT, command_line, machine_info, table, write_result
from llm_harness import fake_server, profile, run

from assembly.core.events import SeatedMember, Turn
from assembly.core.member import Member, Request, TurnResult
from assembly.core.transcript import read_transcript
from assembly.core.view import View
from assembly.launch import execute
from assembly.protocols.facilitated.actions import Ballot, Candidate, Speech, Synthesis, candidates_of
from assembly.protocols.facilitated.protocol import FacilitatedAssembly
from assembly.scenario.loading import load_scenario
from assembly.scenario.model import Scenario

ROUNDS = 30
SHOWN = (1, 10, 30)
WINDOWS = (3, 100)
VOCAB = (
    "the city should fund transit because families in the outer districts spend too long commuting and "
    "cleaner air matters for children while costs must stay fair for low income residents who depend on "
    "buses every day and small businesses need customers who can reach the centre easily"
)
WORDS = VOCAB.split()


def scenario(window: int, **extra: Any) -> Scenario:
    return load_scenario(
        ROOT / "scenarios" / "citizens_assembly.yaml",
        {
            # Unanimity of every seat (quorum 1): the loopback server's random ballots
            # abstain often enough that no run ends before round 30.
            "rounds": ROUNDS,
            "protocol.view_window": window,
            "protocol.decision_rule": {"kind": "unanimity"},
            "protocol.quorum": 1.0,
            "protocol.stall": None,
            "topology.kind": "all_to_all",
            **extra,
        },
    )


def text(words: int, salt: int) -> str:
    return " ".join(WORDS[(salt * 7 + i) % len(WORDS)] for i in range(words)) + "."


# ----------------------------------------------------------------------------- full-length probe


def _encoder() -> Callable[[str], int]:
    """cl100k_base from the copy litellm ships (no network needed); chars / 4 if absent."""
    spec = importlib.util.find_spec("litellm")
    if spec and spec.submodule_search_locations and "TIKTOKEN_CACHE_DIR" not in os.environ:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
        os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)
    try:
        import tiktoken

        enc = tiktoken.get_encoding("cl100k_base")
        return lambda s: len(enc.encode(s))
    except Exception:  # no bundled encoding: the same estimate the server uses
        return lambda s: max(1, len(s) // 4)


class PromptProbe:
    """Renders the prompt an LLM member would get, records its size, answers at full length."""

    def __init__(
        self,
        seat: SeatedMember,
        protocol: FacilitatedAssembly,
        count: Callable[[str], int],
        log: dict[tuple[str, int], list[int]],
    ) -> None:
        self.id = seat.id
        self.seat = seat
        self.protocol = protocol
        self.count = count
        self.log = log
        self.index = int(seat.id.rsplit("_", 1)[-1]) if seat.id[-1].isdigit() else 0
        self.options = [o.id for o in protocol.scenario.options]

    async def act(self, view: View, request: Request) -> TurnResult:
        prompt = self.protocol.prompt(view, request)
        self.log[(request.phase, request.round)].append(self.count(prompt.system) + self.count(prompt.user))
        salt = self.index + request.round
        if request.action is Speech:
            fresh = [f.id for f in view.own_facts if f.id not in view.said][:1]  # one new fact a round
            position = self.options[salt % len(self.options)]
            return TurnResult(
                action=Speech(
                    message=text(120, salt), position=position, scores={o: 0.5 for o in self.options}, disclose=fresh
                )
            )
        if request.action is Synthesis:
            return TurnResult(
                action=Synthesis(
                    candidates=[Candidate(option=o, statement=text(25, i)) for i, o in enumerate(self.options[:3])],
                    summary=text(200, request.round),
                )
            )
        cands = [c["option"] for c in candidates_of(view.plenary)]
        choice = cands[self.index % len(cands)]
        return TurnResult(action=Ballot(choice=choice, approve=[choice], ranking=cands))


def full_length(window: int, work: Path, count: Callable[[str], int]) -> dict[tuple[str, int], float]:
    sc = scenario(window)
    protocol = FacilitatedAssembly(sc)
    log: dict[tuple[str, int], list[int]] = defaultdict(list)
    seats = [f"member_{i}" for i in range(sc.population.size)] + ["facilitator"]

    def make(seat: SeatedMember) -> Member:
        return PromptProbe(seat, protocol, count, log)

    summary = asyncio.run(execute(sc, work / f"full-{window}", overrides={s: make for s in seats}))
    if summary["rounds"] != ROUNDS:
        raise RuntimeError(f"full-length window {window}: {summary['rounds']} rounds")
    return {k: sum(v) / len(v) for k, v in log.items()}


# ----------------------------------------------------------------------------- over HTTP


def over_http(window: int, work: Path, base_url: str) -> dict[tuple[str, int], float]:
    prof = profile(base_url, "openai")
    sc = scenario(
        window,
        **{
            "members.policy": "llm",
            "members.profile": prof.name,
            "facilitator.policy": "llm",
            "facilitator.profile": prof.name,
        },
    )
    run_dir = work / f"http-{window}"
    summary = run(sc, run_dir, prof)
    if summary["rounds"] != ROUNDS:
        raise RuntimeError(
            f"http window {window}: {summary['rounds']} rounds ({summary['outcome']}, {summary['reason']})"
        )
    log: dict[tuple[str, int], list[int]] = defaultdict(list)
    for e in read_transcript(run_dir).events:
        if isinstance(e, Turn) and e.attempts:
            # Every attempt's prompt counts (a re-ask resends the prompt); one attempt is usual.
            log[(e.phase, e.round)].append(sum(a.prompt_tokens for a in e.attempts))
    return {k: sum(v) / len(v) for k, v in log.items()}


# ----------------------------------------------------------------------------- report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.parse_args(argv)
    machine = machine_info()
    count = _encoder()
    series: dict[str, dict[int, dict[tuple[str, int], float]]] = {"http": {}, "full-length": {}}
    with tempfile.TemporaryDirectory(prefix="bench-prompts-") as td, fake_server(0.0) as server:
        for window in WINDOWS:
            series["full-length"][window] = full_length(window, Path(td), count)
            series["http"][window] = over_http(window, Path(td), server.url)
            print(f"  window {window}: done", file=sys.stderr, flush=True)
    rows: list[dict[str, Any]] = []
    for source, by_window in series.items():
        for window, tokens in by_window.items():
            speak = {r: tokens[("speak", r)] for r in SHOWN}
            rows.append(
                {
                    "source": source,
                    "window": window,
                    "speak": speak,
                    "vote": {r: tokens.get(("vote", r)) for r in SHOWN},
                    "synthesize": {r: tokens[("synthesize", r)] for r in SHOWN},
                    "speak_30_over_1": speak[30] / speak[1],
                    "speak_30_over_10": speak[30] / speak[10],
                    "all_rounds": {f"{p}:{r}": round(v, 1) for (p, r), v in sorted(tokens.items())},
                }
            )
    window_rows = [r for r in rows if r["window"] == WINDOWS[0]]
    fig = {
        "rounds": ROUNDS,
        "members": 24,
        "tokenizer_full_length": "cl100k_base (tiktoken)",
        "tokenizer_http": "server: characters / 4",
        "rows": rows,
        # The goal is judged on the larger (worse) of the two sources.
        "window_growth": max(r["speak_30_over_1"] for r in window_rows),
    }
    machine["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    write_result("prompt_growth", command_line(), fig, machine)
    print(
        f"Benchmark 3: prompt tokens per member-turn, 24 members, {ROUNDS} rounds "
        "(window = rounds of heard speech in the view; 100 = full history)"
    )

    def cell(v: float | None) -> str:
        return "–" if v is None else f"{v:,.0f}"

    print(
        table(
            [
                "source",
                "window",
                "speak r1",
                "speak r10",
                "speak r30",
                "r30 / r1",
                "r30 / r10",
                "vote r10",
                "vote r30",
                "facilitator r1 / r10 / r30",
            ],
            [
                [
                    r["source"],
                    r["window"],
                    *[cell(r["speak"][x]) for x in SHOWN],
                    f"{r['speak_30_over_1']:.2f}×",
                    f"{r['speak_30_over_10']:.2f}×",
                    cell(r["vote"][10]),
                    cell(r["vote"][30]),
                    " / ".join(cell(r["synthesize"][x]) for x in SHOWN),
                ]
                for r in rows
            ],
        )
    )
    return fig


if __name__ == "__main__":
    main()
