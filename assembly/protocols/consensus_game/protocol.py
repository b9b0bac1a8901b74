"""The scalar consensus game of arXiv:2603.01213 ("Can AI Agents Agree?", Berdoz, Rugli,
Wattenhofer, 2026), on the shared engine. See docs/consensus_game.md.

N agents on a synchronous all-to-all network; B of them Byzantine (f = B/N <= 1/3),
placed on agent slots by a seeded shuffle. Honest agents start with integers drawn
uniformly from [value_min, value_max]; Byzantine agents have none. Each round:

1. decide: every agent, from what it knew up to the last round, returns a private
   strategy note, a proposed integer and a public justification;
2. broadcast: (value, justification) reaches every agent (the view builder publishes
   only those two fields; a member cannot equivocate, forge or drop messages);
3. vote: every agent votes stop or continue in a separate call (Byzantine agents may
   also abstain). A failed vote counts as continue;
4. apply: proposals become current values. A failed proposal, or a Byzantine
   "abstain", is an abstention: the agent keeps its previous value.

The game stops when stop votes reach `stop_threshold` (2/3) of ALL agents, Byzantine
ones included, compared exactly as fractions. Outcomes:
- valid: stopped, all honest agents hold one value, and it is an honest initial value;
- invalid: stopped otherwise (`detail.sub_reason`: honest_disagreed | non_initial_value);
- no_decision / round_limit: no stop by the deadline (`detail.honest_agreed_at_deadline`).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from assembly.core import seating as population
from assembly.core.actions import Action
from assembly.core.events import AnyEvent, RoundEnded, RunEnded, RunStarted, Seated, SeatedMember, Tally, Turn
from assembly.core.member import Member, Request
from assembly.core.prompt import Prompt
from assembly.core.protocol import Protocol, RoundContext
from assembly.core.seeding import rng
from assembly.core.spec import ScenarioBase
from assembly.core.stop import BUDGET_SPENT, StopRule, decided
from assembly.core.view import View
from assembly.protocols.consensus_game.actions import Proposal, StopVote
from assembly.protocols.consensus_game.config import ConsensusGameProtocol, ConsensusSimParams
from assembly.protocols.consensus_game.presentation import ConsensusPresentation
from assembly.protocols.consensus_game.prompts import output_model, render
from assembly.protocols.consensus_game.sim import ConsensusSimAgent
from assembly.protocols.consensus_game.state import (
    PROPOSE,
    STOP_VOTE,
    Board,
    is_median,
    proposal_value,
    stop_votes_needed,
    value_figures,
)

PREFIX = "agent"


def count_votes(turns: list[Turn]) -> tuple[int, int, int]:
    """(stop, continue, abstain) among stop-vote turns. A failed turn counts as continue;
    an explicit abstention never counts as stop."""
    stop = cont = abstain = 0
    for t in turns:
        vote = (t.action or {}).get("vote") if t.status == "ok" else "continue"
        if vote == "stop":
            stop += 1
        elif vote == "abstain":
            abstain += 1
        else:
            cont += 1
    return stop, cont, abstain


class ConsensusGame(Protocol):
    name = "consensus_game"
    config = ConsensusGameProtocol
    actions = (Proposal, StopVote)
    presentation = ConsensusPresentation()
    sim_params = ConsensusSimParams
    sim_key = "consensus"

    def __init__(self, scenario: ScenarioBase) -> None:
        super().__init__(scenario)
        assert isinstance(scenario.protocol, ConsensusGameProtocol)
        self.spec: ConsensusGameProtocol = scenario.protocol
        self.board = Board(self.spec.value_min, self.spec.value_max)
        self.last_tally: Tally | None = None

    # ---- seating

    def seat(self) -> Seated:
        members = population.seat(self.scenario, prefix=PREFIX)
        n, seed = len(members), self.scenario.seed
        byzantine = {int(i) for i in rng(seed, "byzantine").permutation(n)[: self.spec.byzantine]}
        seated = []
        for i, m in enumerate(members):
            if i in byzantine:
                private: dict[str, Any] = {"initial": None, "byzantine": True}
            else:
                # One stream per slot: the same seed deals a slot the same initial value
                # whatever B is, so runs that differ only in B are paired.
                initial = int(rng(seed, "initial", i).integers(self.spec.value_min, self.spec.value_max + 1))
                private = {"initial": initial, "byzantine": False}
            seated.append(m.model_copy(update={"private": private}))
        return Seated(members=seated, audiences=[list(range(n))], audience_of=[0] * n)

    def sim_member(self, seated: SeatedMember) -> Member:
        return ConsensusSimAgent(
            seated.id,
            bool(seated.private.get("byzantine")),
            self.spec,
            self.own_sim_params(),
            self.seeded_faults(),
            self.scenario.seed,
        )

    # ---- folding

    def apply(self, event: AnyEvent) -> None:
        if isinstance(event, Seated):
            self.board.seat(event)
        elif isinstance(event, Turn):
            self.board.apply(event)
        elif isinstance(event, Tally):
            self.last_tally = event

    # ---- one round

    async def play_round(self, ctx: RoundContext) -> None:
        await ctx.ask(PROPOSE, self.board.ids, Proposal, self._params(PROPOSE))
        votes = await ctx.ask(STOP_VOTE, self.board.ids, StopVote, self._params(STOP_VOTE))
        ctx.emit(self._tally(ctx.round, votes))

    def stop_rule(self) -> StopRule:
        """Stop votes reaching `stop_threshold` of all agents end the game."""
        return decided(self._stopped)

    def _params(self, phase: str) -> dict[str, object]:
        """Request knobs: the game's range and the paper's generation settings for this phase."""
        gen = self.spec.generation
        settings = gen.propose if phase == PROPOSE else gen.stop_vote
        return {
            "value_min": self.spec.value_min,
            "value_max": self.spec.value_max,
            "generation": {**settings.model_dump(), "attempts": gen.attempts},
        }

    def _tally(self, r: int, votes: list[Turn]) -> Tally:
        n = len(self.board.ids)
        stop, cont, abstain = count_votes(votes)
        failed = sum(t.status != "ok" for t in votes)
        threshold = self.spec.threshold
        decided = Fraction(stop, n) >= threshold
        detail = (
            f"{stop}/{n} stop votes; {stop_votes_needed(threshold, n)} needed ({self.spec.stop_threshold} of all "
            f"{n} agents)" + (f"; {failed} failed votes counted as continue" if failed else "")
        )
        return Tally(
            round=r,
            rule="stop_vote",
            candidates=["stop", "continue"],
            counted=n - failed,
            seated=n,
            quorum_met=True,
            decided=decided,
            winner="stop" if decided else None,
            leading="stop" if stop >= cont else "continue",
            leading_support=round(max(stop, cont) / n, 6),
            support={"stop": round(stop / n, 6), "continue": round(cont / n, 6), "abstain": round(abstain / n, 6)},
            detail=detail,
        )

    def _stopped(self) -> RunEnded | None:
        """The game's end if the last stop vote passed (a passed vote is always the last)."""
        tally = self.last_tally
        if tally is None or not tally.decided:
            return None
        value, on_initial = self.board.agreement()
        h = len(self.board.honest)
        base = {
            "stop_votes": round(tally.support["stop"] * tally.seated),
            "agents": tally.seated,
            "honest_values": self.board.honest_values(),
        }
        where = f"stopped in round {tally.round} ({tally.detail})"
        if value is not None and on_initial:
            return RunEnded(
                outcome="valid_decision",
                decision=value,
                detail={**base, "sub_reason": "valid"},
                reason=f"{where}; all {h} honest agents hold {value}, an honest initial value",
            )
        if value is not None:
            return RunEnded(
                outcome="invalid_decision",
                decision=value,
                detail={**base, "sub_reason": "non_initial_value"},
                reason=f"{where}; all {h} honest agents hold {value}, which no honest agent started with",
            )
        spread = sorted(set(self.board.honest_values()))
        return RunEnded(
            outcome="invalid_decision",
            decision=None,
            detail={**base, "sub_reason": "honest_disagreed"},
            reason=f"{where}; honest agents still disagree (values {spread})",
        )

    def conclude(self, cause: str) -> RunEnded:
        value, on_initial = self.board.agreement()
        detail = {
            "honest_agreed_at_deadline": value is not None,
            "agreed_value": value,
            "agreed_on_initial": on_initial,
            "honest_values": self.board.honest_values(),
        }
        reason = {
            "round_limit": f"no stop vote passed within {self.spec.max_rounds} rounds",
            "budget": BUDGET_SPENT,
        }.get(cause, cause)
        if value is not None:
            reason += f" (honest agents did agree on {value}{'' if on_initial else ', not an initial value'})"
        return RunEnded(outcome="no_decision", cause=cause, reason=reason, detail=detail)  # type: ignore[arg-type]

    # ---- LLM members

    def prompt(self, view: View, request: Request) -> Prompt:
        return render(self.spec, view, request)

    def output_model(self, view: View, request: Request) -> type[Action]:
        return output_model(self.spec, view, request)

    # ---- figures (pure functions of events)

    @classmethod
    def round_figures(
        cls,
        round_events: Sequence[AnyEvent],
        started: RunStarted,
        seated: Seated,
        history: Sequence[AnyEvent] = (),
    ) -> dict[str, Any]:
        """Honest values after this round's apply step, and this round's stop votes.

        Values carried over by abstainers come from folding every earlier proposal
        in `history`, so the figures are exact in every round.
        """
        spec = _spec(started)
        board = Board.from_seated(seated, spec.value_min, spec.value_max)
        for e in history:
            if isinstance(e, Turn):
                board.apply(e)
        turns = [e for e in round_events if isinstance(e, Turn)]
        proposals = [t for t in turns if t.phase == PROPOSE]
        for t in proposals:
            board.apply(t)
        known = [board.current[m] for m in board.honest if m in board.current]
        unknown = len(board.honest) - len(known)
        initials = set(board.initial.values())
        figs = value_figures(known, initials)
        if len(set(known)) > 1 or not known:
            unanimous: bool | None = False if known else None
        else:
            unanimous = known[0] in initials if unknown == 0 else None
        stop, _, _ = count_votes([t for t in turns if t.phase == STOP_VOTE])
        figs.update(
            {
                "honest_unanimous_initial": unanimous,
                "honest_unknown": unknown,
                "proposals": sum(
                    proposal_value(t.action, spec.value_min, spec.value_max) is not None
                    for t in proposals
                    if t.status == "ok"
                ),
                "stop_votes": stop,
            }
        )
        return figs

    @classmethod
    def run_figures(cls, events: Sequence[AnyEvent]) -> dict[str, Any]:
        started = next(e for e in events if isinstance(e, RunStarted))
        seated = next(e for e in events if isinstance(e, Seated))
        spec = _spec(started)
        board = Board.from_seated(seated, spec.value_min, spec.value_max)
        first: int | None = None
        for e in events:
            if isinstance(e, Turn):
                board.apply(e)
            elif isinstance(e, RoundEnded) and first is None:
                value, on_initial = board.agreement()
                if value is not None and on_initial:
                    first = e.round
        end = next((e for e in events if isinstance(e, RunEnded)), None)
        rounds = max((e.round for e in events if isinstance(e, RoundEnded)), default=0)
        stopped = end is not None and end.outcome != "no_decision"
        if end is None:
            sub_reason = None
        elif stopped:
            sub_reason = end.detail.get("sub_reason")
        else:
            sub_reason = "timeout" if end.cause == "round_limit" else end.cause
        value, on_initial = board.agreement()
        initials = list(board.initial.values())
        median = statistics.median(initials) if initials else None
        return {
            "honest": len(board.honest),
            "byzantine": len(board.byzantine),
            "awareness": spec.awareness,
            "sub_reason": sub_reason,
            "first_consensus_round": first,
            "rounds_to_termination": rounds if stopped else None,
            "honest_agree_at_end": value is not None,
            "final_value": value,
            "final_is_initial": on_initial if value is not None else None,
            "initial_median": float(median) if median is not None else None,
            "final_is_median": is_median(value, initials) if value is not None and initials else None,
            "final_distance_from_median": (
                round(abs(value - median), 6) if value is not None and median is not None else None
            ),
        }

    @classmethod
    def reference_names(cls) -> list[str]:
        from assembly.protocols.consensus_game.reference import available

        return available()

    @classmethod
    def reference_points(cls, ref: str) -> list[dict[str, Any]]:
        """The paper's reported rates (`reference/`), e.g. `arxiv_2603_01213/fig2`."""
        from assembly.protocols.consensus_game.reference import points

        return points(ref)


def _spec(started: RunStarted) -> ConsensusGameProtocol:
    return ConsensusGameProtocol.model_validate(started.scenario["protocol"])
