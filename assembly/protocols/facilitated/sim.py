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

import math
import random

import numpy as np

from assembly.core.actions import MAX_TEXT, Action
from assembly.core.faults import SeededFaults, SeededSimMember
from assembly.core.member import Request
from assembly.core.seeding import gaussians, streams
from assembly.core.spec import FactSpec, OptionSpec
from assembly.core.view import HeardMatrix, View
from assembly.protocols.facilitated.actions import Ballot, Candidate, Speech, Synthesis, candidates_of
from assembly.protocols.facilitated.config import OpinionDynamics, Trust
from assembly.protocols.facilitated.rules import BALLOT_FIELD

# Actions are frozen, so every abstaining sim member can hand in the same ballot.
_ABSTAIN = Ballot(abstain=True)


def _sigmoid(x: np.ndarray) -> list[float]:
    # math.exp (libm), not np.exp: numpy's float64 exp has an AVX-512 kernel whose
    # last bit differs from libm's, which made a seed's transcript depend on the CPU.
    return [1.0 / (1.0 + math.exp(-v)) for v in x.tolist()]


def _trust_weights(heard: HeardMatrix, role: str, trust: Trust) -> np.ndarray | None:
    """Each heard speaker's trust weight for a listener of `role`; None when uniform.

    Shared by every listener of that role in the audience (memoised on the matrix)."""
    if trust.uniform:
        return None
    key = ("trust", role, trust.in_role, trust.out_role)
    w = heard.memo.get(key)
    if w is None:
        same = np.array([r == role for r in heard.roles], dtype=bool)
        w = heard.memo[key] = np.where(same, trust.in_role, trust.out_role)
    return w


def _heard_mean(heard: HeardMatrix, role: str, trust: Trust, weights: np.ndarray | None) -> list[float]:
    """The (trust-weighted) mean of heard scores for a listener of `role`, memoised
    on the matrix: every listener of that role in the audience hears the same."""
    key = ("mean", None) if weights is None else ("mean", role, trust.in_role, trust.out_role)
    m = heard.memo.get(key)
    if m is None:
        # Sums are numpy's pairwise reductions, never a matrix product: BLAS kernels
        # sum in an order of their own per CPU, which would make the run's transcript
        # depend on the machine (docs/sim_model.md, "Same seed, same run").
        mean = heard.mean if weights is None else np.add.reduce(heard.by_option * weights, axis=1) / weights.sum()
        m = heard.memo[key] = mean.tolist()
    return m


class _BoundMasks:
    """Every speaker-listener's Hegselmann–Krause mask in one audience's heard round.

    A listener that spoke in the heard round holds as its current opinion exactly
    its row of the matrix, so the masks of all such listeners come out of one
    broadcast over the audience instead of one small numpy pipeline per listener.
    They are computed a block of listeners at a time (listeners ask in seat order)
    and only the latest block is kept, so memory stays flat in the audience size.
    The arithmetic is the per-listener formula's, element for element.
    """

    # Elements of the (listeners, options, speakers) difference array per block.
    BLOCK_ELEMENTS = 1_000_000

    def __init__(self, heard: HeardMatrix, bound: float) -> None:
        self.heard = heard
        self.limit = bound * heard.by_option.shape[0]
        self.row = {m: i for i, m in enumerate(heard.speakers)}
        k, n = heard.by_option.shape
        self.block = max(1, self.BLOCK_ELEMENTS // max(1, k * n))
        self._start = -1
        self._masks = np.zeros((0, n), dtype=bool)

    def mask(self, member: str) -> np.ndarray | None:
        """The member's mask over speakers, or None if it did not speak in this round."""
        i = self.row.get(member)
        if i is None:
            return None
        start = i - i % self.block
        if start != self._start:
            own = self.heard.scores[start : start + self.block]
            diff = self.heard.by_option[None, :, :] - own[:, :, None]
            self._masks = np.abs(diff, out=diff).sum(axis=1) <= self.limit
            self._start = start
        return self._masks[i - start]


def _bound_mask(heard: HeardMatrix, member: str, bound: float) -> np.ndarray | None:
    key = ("bound", bound)
    masks = heard.memo.get(key)
    if masks is None:
        masks = heard.memo[key] = _BoundMasks(heard, bound)
    assert isinstance(masks, _BoundMasks)
    return masks.mask(member)


class SimMember(SeededSimMember):
    """An assembly member (or facilitator) following the opinion-dynamics model.

    Per-option vectors are Python float lists: with a handful of options, numpy's
    per-call cost dwarfs the arithmetic, so numpy is kept for what scales with the
    number of speakers (the Hegselmann–Krause bound and the trust-weighted sums).
    Every value is computed with the same floating-point operations in the same
    order as the plain vector formulas in docs/sim_model.md."""

    def __init__(self, member_id: str, params: OpinionDynamics, faults: SeededFaults, seed: int) -> None:
        self.id = member_id
        self.params = params
        self.seed = seed
        self.faults = faults
        self._policy_stream = streams(seed, "policy", member_id)
        # Anchors by the facts heard from others (a seat's own facts never change).
        self._anchors: dict[tuple[str, ...], list[float]] = {}
        self._last_heard: tuple[FactSpec, ...] | None = None  # the heard facts of the newest anchor
        self._last_anchor: list[float] = []
        # The run's options (one tuple for every view), their ids, and this member's
        # valuation of them before any fact: fixed for the run, computed once.
        self._options: tuple[OptionSpec, ...] = ()
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self._base: np.ndarray | None = None

    def action(self, view: View, request: Request) -> Action:
        if request.action is Speech:
            # Only a speech draws (noise, disclosures): other turns skip seeding a stream.
            return self.speak(view, self._policy_stream(request.round, request.phase))
        if request.action is Synthesis:
            return self.synthesize(view, int(str(request.params.get("candidates", 3))))
        if request.action is Ballot:
            return self.vote(view, BALLOT_FIELD.get(str(request.params.get("rule", "")), "choice"))
        raise TypeError(f"sim assembly member cannot produce {request.action.__name__}")

    # ---- the model

    def option_ids(self, view: View) -> list[str]:
        if view.options is not self._options:
            self._options = view.options
            self._ids = [o.id for o in view.options]
            self._index = {o: i for i, o in enumerate(self._ids)}
            self._base = None
        return self._ids

    def anchor(self, view: View) -> list[float]:
        """Own judgement: logistic of centred valuations given every known fact.

        Cached per set of facts heard: it only changes when a fact is learned."""
        self.option_ids(view)
        facts = view.heard_facts
        if facts is self._last_heard:  # views hand out the same tuple until a fact is heard
            return self._last_anchor
        key = tuple(f.id for f in facts)
        cached = self._anchors.get(key)
        if cached is None:
            cached = self._anchors[key] = self._compute_anchor(view)
        self._last_heard, self._last_anchor = facts, cached
        return cached

    def _compute_anchor(self, view: View) -> list[float]:
        if self._base is None:
            values = view.member.values
            self._base = np.array([sum(w * o.attributes.get(d, 0.0) for d, w in values.items()) for o in view.options])
        val = self._base.copy()
        option_index = self._index
        for fact in (*view.own_facts, *view.heard_facts):
            for opt, effect in fact.effects.items():
                val[option_index[opt]] += effect
        # np.add.reduce(val) / len(val) is exactly val.mean(), without its Python wrapper.
        return _sigmoid(self.params.valuation_scale * (val - np.add.reduce(val) / len(val)))

    def susceptibility(self, role: str) -> float:
        """Friedkin–Johnsen λ of a member of this role."""
        return self.params.susceptibility_by_role.get(role, self.params.susceptibility)

    def current(self, view: View) -> list[float]:
        """Own most recently stated scores (the opinion x_i(t-1)), else the anchor."""
        for h in view.own_history:
            if h.kind == "speech":
                scores = h.public["scores"]
                return [float(scores.get(o, 0.0)) for o in self.option_ids(view)]
        return self.anchor(view)

    @staticmethod
    def _spoke_in(view: View, round: int) -> bool:
        """Whether the member's newest own speech is from `round`."""
        return next((h.round == round for h in view.own_history if h.kind == "speech"), False)

    def opinion(self, view: View, r: random.Random | None = None) -> list[float]:
        """Friedkin–Johnsen step with trust weights and a Hegselmann–Krause confidence bound."""
        p = self.params
        a = self.anchor(view)
        heard = view.heard_matrix
        if heard is None or heard.scores.shape[0] == 0:
            x = a
        else:
            role = view.member.role
            trust = _trust_weights(heard, role, p.trust)
            others: list[float]
            if p.confidence_bound is None:
                others = _heard_mean(heard, role, p.trust, trust)
            else:
                cols = heard.by_option
                mask = _bound_mask(heard, self.id, p.confidence_bound) if self._spoke_in(view, heard.round) else None
                own: list[float] | None = None
                if mask is None:  # its current opinion is older than the heard round
                    own = self.current(view)
                    mask = np.abs(cols - np.array(own)[:, None]).sum(axis=0) <= p.confidence_bound * len(own)
                # 0/1 weights times scores are exact, so an unweighted mask needs no
                # float copy. A pairwise reduction, not `cols @ near` (BLAS): see `_heard_mean`.
                near = mask if trust is None else mask * trust
                count = np.count_nonzero(mask) if trust is None else near.sum()
                if count:
                    others = (np.add.reduce(cols * near, axis=1) / count).tolist()
                else:
                    others = own if own is not None else self.current(view)
            lam = self.susceptibility(role)
            x = [lam * o + (1.0 - lam) * ai for o, ai in zip(others, a, strict=True)]
        if r is not None and p.speech_noise > 0:
            noise = gaussians(r, len(x), 0.0, p.speech_noise)  # one draw per option, in option order
            return [min(max(xi + e, 0.0), 1.0) for xi, e in zip(x, noise, strict=True)]
        return [min(max(xi, 0.0), 1.0) for xi in x]

    def speak(self, view: View, r: random.Random) -> Speech:
        x = self.opinion(view, r)
        ids = self.option_ids(view)
        rank = range(len(ids))
        best = max(rank, key=x.__getitem__)  # the first highest, as argmax
        disclose = self._disclose(view, r)
        parts = [f"I favour {ids[best]}: {view.options[best].text}"]
        if len(ids) > 1:
            second = max((i for i in rank if i != best), key=lambda i: (x[i], -i))
            parts.append(f"My second choice is {ids[second]} ({x[second]:.2f} vs {x[best]:.2f}).")
        for fact in view.own_facts:
            if fact.id in disclose:
                parts.append(f"Something you may not know ({fact.id}): {fact.text}")
        # Scores are kept at full precision: listeners hear exactly what was stated,
        # so the dynamics are the model's, not a rounding of it (displays round).
        # Validated construction: pydantic's core validates these few fields faster
        # than `model_construct` assembles them in Python.
        return Speech(
            message=" ".join(parts)[:MAX_TEXT],
            position=ids[best],
            scores=dict(zip(ids, x, strict=True)),
            disclose=disclose,
        )

    def _disclose(self, view: View, r: random.Random) -> list[str]:
        """Stasser–Titus sampling: each own fact the member has not mentioned yet (in
        the whole run) is mentioned with some probability, boosted by `shared_bias`
        when someone within earshot already brought it up."""
        p = self.params
        out = []
        for fact in view.own_facts:
            draw = r.random()  # drawn for every fact so streams do not shift with history
            if fact.id in view.said:
                continue
            prob = p.disclosure_rate * (p.shared_bias if fact.id in view.mentioned else 1.0)
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
        x = dict(zip(self.option_ids(view), self.current(view), strict=True))
        scored = sorted(((x.get(c, 0.0), -i, c) for i, c in enumerate(cands)), reverse=True)
        if not scored or scored[0][0] < self.params.abstain_below:
            return _ABSTAIN
        ranking = [c for _, _, c in scored]
        approve = [c for s, _, c in scored if s >= self.params.approval_threshold] or ranking[:1]
        scores = {c: float(x.get(c, 0.0)) for c in dict.fromkeys(cands)} if reads == "scores" else {}
        return Ballot.model_construct(choice=ranking[0], approve=approve, ranking=ranking, scores=scores, abstain=False)
