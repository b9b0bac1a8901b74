"""`sim` members: the offline opinion-dynamics baseline (see docs/sim_model.md).

A sim member holds a support score in [0, 1] for every option and updates it each
round by a Friedkin–Johnsen step over the scores it heard, ignoring speakers farther
than its Hegselmann–Krause confidence bound, while staying anchored to its own
judgement. That judgement is a logistic of its valuation of each option: its value
weights times the options' attributes, plus the effects of every fact it knows.
Facts are disclosed Stasser–Titus style, more readily when already in the record,
and every disclosed fact shifts every listener's valuation.

Everything is computed from the member's `View` and a random stream derived from
(seed, member, round, phase), so the policy is deterministic, stateless between
turns (resume needs nothing but the transcript), and blind to anything the view does
not contain.
"""

from __future__ import annotations

import random

import numpy as np

from assembly.core.actions import MAX_TEXT, Action
from assembly.core.faults import SeededFaults
from assembly.core.member import Request, TurnResult
from assembly.core.seeding import stream
from assembly.core.view import View
from assembly.protocols.facilitated.actions import Ballot, Candidate, Speech, Synthesis, candidates_of
from assembly.protocols.facilitated.config import OpinionDynamics
from assembly.protocols.facilitated.rules import BALLOT_FIELD


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class SimMember:
    """An assembly member (or facilitator) following the opinion-dynamics model."""

    def __init__(self, member_id: str, params: OpinionDynamics, faults: SeededFaults, seed: int) -> None:
        self.id = member_id
        self.params = params
        self.seed = seed
        self.faults = faults
        self._anchors: dict[tuple[str, frozenset[str]], np.ndarray] = {}

    async def act(self, view: View, request: Request) -> TurnResult:
        policy_rng = stream(self.seed, "policy", self.id, request.round, request.phase)
        if request.action is Speech:
            action: Action = self.speak(view, policy_rng)
        elif request.action is Synthesis:
            action = self.synthesize(view, int(str(request.params.get("candidates", 3))))
        elif request.action is Ballot:
            action = self.vote(view, BALLOT_FIELD.get(str(request.params.get("rule", "")), "choice"))
        else:
            raise TypeError(f"sim assembly member cannot produce {request.action.__name__}")
        return await self.faults.run(self.id, request, action)

    # ---- the model

    def anchor(self, view: View) -> np.ndarray:
        """Own judgement: logistic of centred valuations given every known fact.

        Cached per set of known facts: it only changes when a fact is learned."""
        key = (view.member.id, view.known_fact_ids)
        cached = self._anchors.get(key)
        if cached is None:
            cached = self._anchors[key] = self._compute_anchor(view)
        return cached

    def _compute_anchor(self, view: View) -> np.ndarray:
        values = view.member.values
        val = np.array([sum(w * o.attributes.get(d, 0.0) for d, w in values.items()) for o in view.options])
        option_index = {o.id: i for i, o in enumerate(view.options)}
        for fact in (*view.own_facts, *view.heard_facts):
            for opt, effect in fact.effects.items():
                val[option_index[opt]] += effect
        return _sigmoid(self.params.valuation_scale * (val - val.mean()))

    def current(self, view: View) -> np.ndarray:
        """Own most recently stated scores (the opinion x_i(t-1)), else the anchor."""
        for h in view.own_history:
            if h.kind == "speech":
                return np.array([float(h.public["scores"].get(o.id, 0.0)) for o in view.options])
        return self.anchor(view)

    def opinion(self, view: View, r: random.Random | None = None) -> np.ndarray:
        """Friedkin–Johnsen step with a Hegselmann–Krause confidence bound."""
        p = self.params
        a = self.anchor(view)
        heard = view.heard_matrix
        if heard is None or heard.scores.shape[0] == 0:
            x = a
        else:
            if p.confidence_bound is None:
                others = heard.mean
            else:
                own = self.current(view)
                cols = heard.by_option
                near = (np.abs(cols - own[:, None]).sum(axis=0) <= p.confidence_bound * len(own)).astype(float)
                count = near.sum()
                others = cols @ near / count if count else own
            x = p.susceptibility * others + (1.0 - p.susceptibility) * a
        if r is not None and p.speech_noise > 0:
            x = x + np.array([r.gauss(0.0, p.speech_noise) for _ in range(len(x))])
        return np.clip(x, 0.0, 1.0)

    def speak(self, view: View, r: random.Random) -> Speech:
        x = self.opinion(view, r)
        ids = [o.id for o in view.options]
        best = int(np.argmax(x))
        disclose = self._disclose(view, r)
        ranked = sorted(range(len(ids)), key=lambda i: -x[i])
        parts = [f"I favour {ids[best]}: {view.options[best].text}"]
        if len(ranked) > 1:
            parts.append(f"My second choice is {ids[ranked[1]]} ({x[ranked[1]]:.2f} vs {x[best]:.2f}).")
        for fact in view.own_facts:
            if fact.id in disclose:
                parts.append(f"Something you may not know ({fact.id}): {fact.text}")
        # Built without re-validation (a turn per member per round): every field is
        # valid by construction, and the one bounded field is cut to its bound.
        return Speech.model_construct(
            message=" ".join(parts)[:MAX_TEXT],
            position=ids[best],
            scores={o: round(float(s), 4) for o, s in zip(ids, x, strict=True)},
            disclose=disclose,
        )

    def _disclose(self, view: View, r: random.Random) -> list[str]:
        """Stasser–Titus sampling: each unmentioned own fact is mentioned with some
        probability, boosted by `shared_bias` when others already brought it up."""
        p = self.params
        said = {f for h in view.own_history if h.kind == "speech" for f in h.public.get("disclose", ())}
        in_record = {f.id for f in view.heard_facts} | set(view.mentioned)
        out = []
        for fact in view.own_facts:
            draw = r.random()  # drawn for every fact so streams do not shift with history
            if fact.id in said:
                continue
            prob = p.disclosure_rate * (p.shared_bias if fact.id in in_record else 1.0)
            if draw < min(1.0, prob):
                out.append(fact.id)
        return out

    def synthesize(self, view: View, k: int) -> Synthesis:
        """Facilitator: the k options with most mean support among this round's speeches."""
        ids = [o.id for o in view.options]
        latest = view.recent[0] if view.recent else ()
        speeches = [h for h in latest if h.kind == "speech"]
        if speeches:
            mean = np.array([[float(h.public["scores"].get(o, 0.0)) for o in ids] for h in speeches]).mean(axis=0)
        else:
            mean = np.full(len(ids), 0.5)
        order = sorted(range(len(ids)), key=lambda i: (-mean[i], i))[: max(1, min(k, len(ids)))]
        top = ", ".join(f"{ids[i]} ({mean[i]:.2f})" for i in order)
        summary = f"Round {view.round}: {len(speeches)} members spoke. Most support: {top}." + (
            f" Facts shared so far: {', '.join(sorted(view.mentioned))}." if view.mentioned else ""
        )
        return Synthesis(
            candidates=[
                Candidate(option=ids[i], statement=f"Recommend {ids[i]}: {view.options[i].text}") for i in order
            ],
            summary=summary,
        )

    def vote(self, view: View, reads: str = "choice") -> Ballot:
        """Choice, approvals and the full ranking of the candidates by current support,
        plus the support scores themselves when the rule reads them (`reads`). Scores are
        left out otherwise, so ballots under the other rules keep their recorded shape."""
        cands = [c["option"] for c in candidates_of(view.plenary)]
        x = dict(zip([o.id for o in view.options], self.current(view), strict=True))
        scored = sorted(((x.get(c, 0.0), -i, c) for i, c in enumerate(cands)), reverse=True)
        if not scored or scored[0][0] < self.params.abstain_below:
            return Ballot(abstain=True)
        ranking = [c for _, _, c in scored]
        approve = [c for s, _, c in scored if s >= self.params.approval_threshold] or ranking[:1]
        scores = {c: round(float(x.get(c, 0.0)), 4) for c in dict.fromkeys(cands)} if reads == "scores" else {}
        return Ballot.model_construct(choice=ranking[0], approve=approve, ranking=ranking, scores=scores, abstain=False)
