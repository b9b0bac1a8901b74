"""The facilitated citizens' assembly: speak → synthesize → vote, every round.

1. Speak: every member speaks concurrently: a message, a favoured option, support
   scores for all options, and any private facts it chooses to disclose. A disclosure
   reaches the member's audience (its topology neighbourhood).
2. Synthesize: the facilitator drafts candidate recommendations and a running
   summary, heard in plenary.
3. Vote (from `first_vote_round` on): members vote on the candidates under the
   scenario's decision rule; quorum is checked separately. A decision that meets
   quorum ends the run, and the validity rule classifies it.

Its stop rule is `decided() | stalled(k, tolerance)`: the run also ends as `stalled`
when the stall rule sees no movement, and otherwise at the round limit
(`quorum_not_met` if no vote ever reached quorum).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from assembly.core import seating as population
from assembly.core import topology
from assembly.core.actions import Action
from assembly.core.events import AnyEvent, Disclosure, RunEnded, RunStarted, Seated, SeatedMember, Tally, Turn
from assembly.core.member import Member, Request
from assembly.core.prompt import Prompt
from assembly.core.protocol import Protocol, RoundContext
from assembly.core.run_welfare import StatedPreferences
from assembly.core.spec import ScenarioBase
from assembly.core.stop import BUDGET_SPENT, StopRule, decided, stalled
from assembly.core.view import View
from assembly.protocols.facilitated import idea_similarity as textsim
from assembly.protocols.facilitated import prompts, rules
from assembly.protocols.facilitated.actions import Ballot, Speech, Synthesis
from assembly.protocols.facilitated.config import AssemblyProtocol, OpinionDynamics
from assembly.protocols.facilitated.presentation import AssemblyPresentation
from assembly.protocols.facilitated.sim import SimMember

FACILITATOR_ID = "facilitator"


def speech_figures(turns: Iterable[Turn], option_ids: list[str]) -> dict[str, float | None]:
    """Convergence of stated positions in one speak phase.

    dispersion: mean over options of the population standard deviation of support
    scores across speakers (0 = identical, 0.5 = maximally split);
    modal_share: share of speakers whose favoured option is the most common one.
    """
    rows, positions = [], []
    for t in turns:
        if t.phase == "speak" and t.status == "ok" and t.action:
            scores = t.action.get("scores", {})
            rows.append([float(scores.get(o, 0.0)) for o in option_ids])
            positions.append(t.action.get("position"))
    if not rows:
        return {"dispersion": None, "modal_share": None, "speakers": 0}
    m = np.asarray(rows)
    counts: dict[Any, int] = {}
    for p in positions:
        counts[p] = counts.get(p, 0) + 1
    return {
        "dispersion": round(float(m.std(axis=0).mean()), 6),
        "modal_share": round(max(counts.values()) / len(positions), 6),
        "speakers": len(rows),
    }


class FacilitatedAssembly(Protocol):
    name = "assembly"
    config = AssemblyProtocol
    actions = (Speech, Synthesis, Ballot)
    presentation = AssemblyPresentation()
    sim_params = OpinionDynamics

    def __init__(self, scenario: ScenarioBase) -> None:
        super().__init__(scenario)
        assert isinstance(scenario.protocol, AssemblyProtocol)
        self.spec: AssemblyProtocol = scenario.protocol
        self._digests = prompts.RoundDigests()
        self.option_ids = [o.id for o in scenario.options]
        self.member_ids: list[str] = []
        self.role_of: dict[str, str] = {}
        self.facts_of: dict[str, set[str]] = {}
        self.candidates: list[str] = []
        self.positions: dict[str, str] = {}
        self.speeches: dict[int, list[Turn]] = {}
        self.history: list[tuple[float | None, float]] = []  # (dispersion, leading support)
        self.votes_held = 0
        self.quorum_ever_met = False
        self.last_tally: Tally | None = None
        self._limits: dict[str, dict[str, int]] | None = None

    # ---- seating

    def seat(self) -> Seated:
        members = population.seat(self.scenario)
        groups, of = topology.audiences(self.scenario.topology, len(members), self.scenario.seed)
        fac = self.scenario.facilitator
        return Seated(
            members=members,
            audiences=groups,
            audience_of=of,
            facilitator=SeatedMember(
                id=FACILITATOR_ID,
                role="facilitator",
                policy=fac.policy,
                profile=(fac.profile or self.scenario.members.profile) if fac.policy == "llm" else None,
            ),
        )

    def sim_member(self, seated: SeatedMember) -> Member:
        return SimMember(seated.id, self.own_sim_params(), self.seeded_faults(), self.scenario.seed)

    # ---- LLM members

    def prompt(self, view: View, request: Request) -> Prompt:
        role = next((r for r in self.scenario.population.roles if r.name == view.member.role), None)
        return prompts.assembly_prompt(self.spec, role, view, request, self._digests)

    def output_model(self, view: View, request: Request) -> type[Action]:
        return prompts.assembly_output_model(self.spec, view, request)

    # ---- folding

    def apply(self, event: AnyEvent) -> None:
        if isinstance(event, Seated):
            self.member_ids = [m.id for m in event.members]
            self.role_of = {m.id: m.role for m in event.members}
            self.facts_of = {m.id: set(m.facts) for m in event.members}
        elif isinstance(event, Turn) and event.status == "ok" and event.action:
            if event.phase == "speak":
                self.speeches.setdefault(event.round, []).append(event)
                self.positions[event.member] = str(event.action.get("position"))
            elif event.phase == "synthesize":
                self.candidates = _valid_candidates(event.action, self.option_ids)
        elif isinstance(event, Tally):
            self.last_tally = event
            self.votes_held += 1
            self.quorum_ever_met |= event.quorum_met
            disp = speech_figures(self.speeches.get(event.round, ()), self.option_ids)["dispersion"]
            self.history.append((disp, event.leading_support))

    # ---- one round

    async def play_round(self, ctx: RoundContext) -> None:
        r = ctx.round
        # `generation` carries each call kind's default max_tokens for LLM members.
        limits, k = self._generations(), self.spec.candidates
        spoken = await ctx.ask("speak", self.member_ids, Speech, {"generation": limits["speak"]})
        ctx.emit(*self._disclosures(spoken, ctx))
        synthesize: dict[str, object] = {"candidates": k, "generation": limits["synthesize"]}
        await ctx.ask("synthesize", [FACILITATOR_ID], Synthesis, synthesize)
        if r < self.spec.first_vote_round or not self.candidates:
            return
        vote: dict[str, object] = {"rule": self.spec.decision_rule.kind, "generation": limits["vote"]}
        ballots = await ctx.ask("vote", self.member_ids, Ballot, vote)
        ctx.emit(self._tally(r, ballots))

    def _generations(self) -> dict[str, dict[str, int]]:
        if self._limits is None:  # once per run: output models' schemas are not cheap
            self._limits = prompts.generations(
                self.spec.decision_rule.kind,
                self.option_ids,
                [f.id for f in self.scenario.facts],
                max((len(f) for f in self.facts_of.values()), default=0),
                self.spec.candidates,
            )
        return self._limits

    def stop_rule(self) -> StopRule:
        """`decided() | stalled(k, tolerance)`: a decided vote ends the run, else a stall
        over the voting rounds' (dispersion, leading support), when `stall` is set."""
        rule = decided(self._decided)
        stall = self.spec.stall
        if stall is None:
            return rule
        return rule | stalled(stall.rounds, stall.tolerance, lambda: self.history, self._stalled)

    def _disclosures(self, turns: list[Turn], ctx: RoundContext) -> list[Disclosure]:
        out = []
        for t in turns:
            if t.status != "ok" or not t.action:
                continue
            # Only facts the member actually holds can be disclosed; anything else in
            # its output is ignored (member output is data, not authority).
            for fact in dict.fromkeys(t.action.get("disclose", ())):
                if fact in self.facts_of.get(t.member, ()):
                    out.append(
                        Disclosure(
                            round=t.round, member=t.member, fact=fact, audience=ctx.views.audience_size(t.member)
                        )
                    )
        return out

    def _tally(self, r: int, turns: list[Turn]) -> Tally:
        counted = [t for t in turns if t.status == "ok" and t.action]
        ballots = [Ballot.model_validate(t.action) for t in counted]
        seated = len(self.member_ids)
        roles = [self.role_of.get(t.member, "") for t in counted]
        result = rules.decide(self.spec.decision_rule, ballots, self.candidates, seated, roles)
        quorum = rules.quorum_met(result.counted, seated, self.spec.quorum)
        return Tally(
            round=r,
            rule=self.spec.decision_rule.kind,
            candidates=list(self.candidates),
            counted=result.counted,
            seated=seated,
            quorum_met=quorum,
            decided=quorum and result.decided,
            winner=result.winner if quorum else None,
            leading=result.leading,
            leading_support=round(result.leading_support, 6),
            support={k: round(v, 6) for k, v in result.support.items()},
            detail=result.detail
            + (
                ""
                if quorum
                else f"; quorum not met ({result.counted}/{seated} counted, {float(self.spec.quorum):.0%} needed)"
            ),
        )

    def _decided(self) -> RunEnded | None:
        """The run's end if the last vote decided (a decided vote is always the last)."""
        tally = self.last_tally
        if tally is None or not tally.decided:
            return None
        v = self.spec.validity
        valid = v.kind == "any" or tally.winner in v.options
        return RunEnded(
            outcome="valid_decision" if valid else "invalid_decision",
            decision=tally.winner,
            reason=tally.detail
            if valid
            else f"{tally.detail}; {tally.winner} is not among the valid options {v.options}",
        )

    def _stalled(self) -> RunEnded:
        stall = self.spec.stall
        assert stall is not None  # the stalled rule exists only with a stall setting
        return RunEnded(
            outcome="no_decision",
            cause="stalled",
            reason=f"dispersion and leading support moved less than {stall.tolerance} for {stall.rounds} voting rounds",
        )

    def conclude(self, cause: str) -> RunEnded:
        if cause == "round_limit" and self.votes_held and not self.quorum_ever_met:
            return RunEnded(
                outcome="no_decision",
                cause="quorum_not_met",
                reason=f"no vote reached quorum in {self.votes_held} voting rounds",
            )
        reason = {
            "round_limit": f"no decision within {self.spec.max_rounds} rounds",
            "budget": BUDGET_SPENT,
        }.get(cause, cause)
        return RunEnded(outcome="no_decision", cause=cause, reason=reason)  # type: ignore[arg-type]

    # ---- figures (pure functions of events)

    @classmethod
    def round_figures(
        cls,
        round_events: Sequence[AnyEvent],
        started: RunStarted,
        seated: Seated,
        history: Sequence[AnyEvent] = (),
    ) -> dict[str, Any]:
        options = [o["id"] for o in started.scenario["options"]]
        figs: dict[str, Any] = dict(speech_figures((e for e in round_events if isinstance(e, Turn)), options))
        tally = next((e for e in round_events if isinstance(e, Tally)), None)
        figs["voted"] = tally is not None
        figs["quorum_met"] = tally.quorum_met if tally else None
        figs["support"] = tally.leading_support if tally else None
        figs["leading"] = tally.leading if tally else None
        figs["ballots_counted"] = tally.counted if tally else 0
        figs["disclosures"] = sum(isinstance(e, Disclosure) for e in round_events)
        # Idea convergence beside the action convergence above (see idea_similarity.py).
        similarity = textsim.mean_pairwise_similarity(
            [
                str(e.action.get("message", ""))
                for e in round_events
                if isinstance(e, Turn) and e.phase == "speak" and e.status == "ok" and e.action
            ]
        )
        figs["idea_similarity"] = round(similarity, 6) if similarity is not None else None
        return figs

    @classmethod
    def run_figures(cls, events: Sequence[AnyEvent]) -> dict[str, Any]:
        seated = next(e for e in events if isinstance(e, Seated))
        end = next((e for e in events if isinstance(e, RunEnded)), None)
        last_pos: dict[str, str] = {}
        for e in events:
            if isinstance(e, Turn) and e.phase == "speak" and e.status == "ok" and e.action:
                last_pos[e.member] = str(e.action.get("position"))
        n = len(seated.members)
        holders: dict[str, int] = {}
        for m in seated.members:
            for f in m.facts:
                holders[f] = holders.get(f, 0) + 1
        disclosed = {e.fact for e in events if isinstance(e, Disclosure)}
        figs: dict[str, Any] = {
            "facts_dealt": len(holders),
            "facts_disclosed": len(disclosed),
            "unshared_facts_disclosed": sum(1 for f in disclosed if holders.get(f, 0) == 1),
            "unshared_facts": sum(1 for c in holders.values() if c == 1),
        }
        if end is not None and end.decision is not None:
            dissent = sum(1 for m in seated.members if last_pos.get(m.id) not in (None, end.decision))
            figs["dissent_share"] = round(dissent / n, 6)
        return figs

    @classmethod
    def stated_preferences(cls, events: list[Any]) -> StatedPreferences:
        """Speeches carry a favoured option and a support score for every option; the
        decision is an option id. Only speeches that were delivered (`ok`) count."""
        started = next(e for e in events if isinstance(e, RunStarted))
        options = {o["id"] for o in started.scenario["options"]}
        end = next((e for e in events if isinstance(e, RunEnded)), None)
        positions: dict[int, dict[str, str]] = {}
        scores: dict[int, dict[str, dict[str, float]]] = {}
        for e in events:
            if isinstance(e, Turn) and e.phase == "speak" and e.status == "ok" and e.action:
                positions.setdefault(e.round, {})[e.member] = str(e.action.get("position"))
                stated = e.action.get("scores") or {}
                scores.setdefault(e.round, {})[e.member] = {str(o): float(v) for o, v in stated.items() if o in options}
        decision = end.decision if end is not None and end.decision in options else None
        return StatedPreferences(decision=decision, positions=positions, scores=scores)


def _valid_candidates(action: dict[str, Any], option_ids: list[str]) -> list[str]:
    seen: list[str] = []
    for c in action.get("candidates", ()):
        opt = c.get("option") if isinstance(c, dict) else None
        if opt in option_ids and opt not in seen:
            seen.append(opt)
    return seen
