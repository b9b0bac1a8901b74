"""What each member may know, built in one place.

This module is where information isolation lives. It folds transcript events into
per-audience public records and answers `view(member)` with:

- the member's own seat: role, values, its own private facts (and protocol-private
  state such as a consensus-game initial value);
- the public parts of what it could hear (set by the topology's audiences) in the
  last `window` rounds, plus the newest plenary action's public fields (a
  facilitator's synthesis), which everyone hears;
- the facts others disclosed in messages it could hear, and the facts it disclosed
  itself (both for the whole run, whatever the window);
- its own recent actions in full (including private notes nobody else sees).

Nothing else reaches a member. The engine builds views here live, and `assembly
replay --as` rebuilds them here from the transcript, so what replay shows is exactly
what the member was given. Records are shared by every member of an audience rather
than copied per listener, which keeps a 2,048-member all-to-all round flat in cost.

What is public is declared by the protocol's action classes (`Action.public_fields`,
`plenary`, `framing_field`, `scores_field`), handed to the `ViewBuilder`; this module
names no action kind.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from assembly.core.actions import Action, by_kind
from assembly.core.events import AnyEvent, Disclosure, RoundStarted, Seated, SeatedMember, Turn
from assembly.core.spec import FactSpec, OptionSpec, ScenarioBase

_NOTHING_PLENARY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Heard:
    """One delivered public utterance."""

    round: int
    phase: str
    member: str
    kind: str
    public: dict[str, Any]


@dataclass
class Record:
    """The public record of one audience, shared by all its members."""

    by_round: dict[int, list[Heard]] = field(default_factory=dict)
    disclosed: dict[str, tuple[int, str]] = field(default_factory=dict)  # fact -> (round, by)
    version: int = 0

    def add(self, heard: Heard) -> None:
        self.by_round.setdefault(heard.round, []).append(heard)
        self.version += 1


@dataclass(frozen=True, slots=True)
class View:
    """Everything one member may know at one turn. Immutable; parts are shared."""

    member: SeatedMember
    round: int
    phase: str
    question: str
    options: tuple[OptionSpec, ...]
    own_facts: tuple[FactSpec, ...]
    heard_facts: tuple[FactSpec, ...]  # disclosed by others within earshot
    recent: tuple[tuple[Heard, ...], ...]  # heard utterances, newest round first
    own_history: tuple[Heard, ...]  # this member's own past actions, full, newest first
    plenary: Mapping[str, Any]  # the newest plenary action's public fields (read-only; empty before one)
    framing: str
    window: int
    mentioned: frozenset[str] = frozenset()  # every fact id brought up within earshot, whole run
    said: frozenset[str] = frozenset()  # every fact id this member itself disclosed, whole run
    roster: tuple[str, ...] = ()  # ids of all seated members (shared, public)
    heard_matrix: HeardMatrix | None = None

    @property
    def known_fact_ids(self) -> frozenset[str]:
        return frozenset(f.id for f in self.own_facts) | frozenset(f.id for f in self.heard_facts)


class HeardMatrix:
    """Scores heard in one audience's latest speech round, as one array.

    Built once per audience and round and shared by all its members, so the sim
    policy's Friedkin–Johnsen step is a vectorised operation, not a per-listener copy.
    `roles` are the speakers' roles (the strata of the sortition are public, as in a
    real assembly), for trust that depends on role. `memo` holds what a policy
    derives from the matrix for all its listeners at once (trust weights per
    listener role, every listener's confidence-bound mask), so that work is done
    once per audience and round rather than once per listener.
    """

    def __init__(
        self,
        heard: list[Heard],
        scores: list[Mapping[str, Any]],
        option_ids: tuple[str, ...],
        roles: tuple[str, ...] = (),
    ) -> None:
        self.scores = np.array(
            [[float(s.get(o, 0.0)) for o in option_ids] for s in scores],
            dtype=float,
        ).reshape(len(scores), len(option_ids))
        # Options-major copy: per-listener reductions over speakers run on contiguous rows.
        self.by_option = np.ascontiguousarray(self.scores.T)
        self.mean = self.scores.mean(axis=0) if len(heard) else np.zeros(len(option_ids))
        self.round = heard[0].round if heard else 0
        self.speakers = tuple(h.member for h in heard)
        self.roles = roles
        self.memo: dict[Any, Any] = {}


@dataclass
class _Audience:
    record: Record = field(default_factory=Record)
    shared_key: tuple[int, int, int] | None = None
    shared: tuple[tuple[tuple[Heard, ...], ...], HeardMatrix | None, frozenset[str]] | None = None
    # round -> its heard utterances as one tuple, kept while the round is in the window:
    # a round that is over keeps its tuple from view to view, so what protocols derive
    # from it (a prompt's digest of the round) can be kept by it too.
    rounds: dict[int, tuple[Heard, ...]] = field(default_factory=dict)

    def round_heard(self, r: int) -> tuple[Heard, ...]:
        heard = self.record.by_round[r]
        kept = self.rounds.get(r)
        if kept is None or len(kept) != len(heard):  # a record only grows
            kept = self.rounds[r] = tuple(heard)
        return kept


class ViewBuilder:
    """Folds events into views. Feed it every event, in order, with `apply`.

    `actions`: the protocol's action classes (`Protocol.actions`), which declare what
    of each recorded action is heard, and by whom. An action of a kind not among them
    is private."""

    def __init__(self, scenario: ScenarioBase, actions: Iterable[type[Action]], window: int | None = None) -> None:
        self.scenario = scenario
        self.actions = by_kind(actions)
        # kind -> its public scores field, for the shared `HeardMatrix`
        self._scores_field = {k: a.scores_field for k, a in self.actions.items() if a.scores_field}
        self.window = window or scenario.protocol.view_window
        self.options = tuple(scenario.options)
        self.option_ids = tuple(o.id for o in scenario.options)
        self.facts = {f.id: f for f in scenario.facts}
        self.members: dict[str, SeatedMember] = {}
        self.roster: tuple[str, ...] = ()
        self.index: dict[str, int] = {}
        self._audiences: list[_Audience] = []
        self._audience_of: list[int] = []
        self._listeners_of: list[list[int]] = []  # member index -> audiences that hear it
        self._audience_sizes: list[int] = []
        self._own: dict[str, deque[Heard]] = {}
        self.plenary: Mapping[str, Any] = _NOTHING_PLENARY
        self._next_framing = ""
        # Facts each member disclosed, for the whole run: unlike its own actions,
        # which are kept for `window` rounds, a member never forgets what it told.
        self._said: dict[str, frozenset[str]] = {}
        self._own_facts: dict[str, tuple[FactSpec, ...]] = {}
        self._heard_cache: dict[str, tuple[int, tuple[FactSpec, ...]]] = {}
        self.framing = ""

    # ---- folding

    def apply(self, event: AnyEvent) -> None:
        if isinstance(event, Seated):
            self._seat(event)
        elif isinstance(event, Turn):
            self._turn(event)
        elif isinstance(event, Disclosure):
            self._disclose(event)
        elif isinstance(event, RoundStarted):
            self.framing = event.framing

    def _seat(self, event: Seated) -> None:
        seated = list(event.members)
        if event.facilitator is not None:
            seated.append(event.facilitator)
        self.members = {m.id: m for m in seated}
        self.index = {m.id: i for i, m in enumerate(event.members)}
        self.roster = tuple(m.id for m in event.members)
        self._audiences = [_Audience() for _ in event.audiences]
        self._audience_of = list(event.audience_of)
        self._audience_sizes = [len(g) for g in event.audiences]
        self._listeners_of = [[] for _ in event.members]
        for a, group in enumerate(event.audiences):
            for i in group:
                self._listeners_of[i].append(a)
        self._own = {m.id: deque() for m in seated}
        self._said, self._own_facts, self._heard_cache = {}, {}, {}

    def _turn(self, event: Turn) -> None:
        if event.status != "ok" or event.action is None:
            return
        kind = event.action.get("kind", "")
        own = self._own.get(event.member)
        if own is not None:
            own.appendleft(Heard(event.round, event.phase, event.member, kind, event.action))
            self._prune_own(own, event.round)
        cls = self.actions.get(kind)
        if cls is None or not cls.public_fields:
            return  # a private action (a secret ballot, a stop vote): nobody else hears it
        public = {k: event.action[k] for k in cls.public_fields if k in event.action}
        if cls.plenary:
            self.plenary = MappingProxyType(public)
            if cls.framing_field is not None:
                self._next_framing = str(public.get(cls.framing_field, ""))
            return
        heard = Heard(event.round, event.phase, event.member, kind, public)
        i = self.index.get(event.member)
        if i is None:
            return
        for a in self._listeners_of[i]:
            self._audiences[a].record.add(heard)

    def _prune_own(self, own: deque[Heard], round: int) -> None:
        """Keep a member's own actions from the last `window` rounds, and always the
        newest action of each kind (a member must not forget its own current value
        or position because it spent a few rounds timing out)."""
        if len(own) <= self.window or own[-1].round > round - self.window:
            return  # nothing is older than the window: every action stays
        seen: set[str] = set()
        kept: list[Heard] = []
        for h in own:  # newest first
            if h.round > round - self.window or h.kind not in seen:
                kept.append(h)
            seen.add(h.kind)
        if len(kept) != len(own):
            own.clear()
            own.extend(kept)

    def _disclose(self, event: Disclosure) -> None:
        i = self.index.get(event.member)
        if i is None:
            return
        self._said[event.member] = self._said.get(event.member, frozenset()) | {event.fact}
        for a in self._listeners_of[i]:
            self._audiences[a].record.disclosed.setdefault(event.fact, (event.round, event.member))

    # ---- querying

    def next_framing(self) -> str:
        """The text the next round opens with: the newest plenary action's framing field."""
        return self._next_framing

    def audience_size(self, member_id: str) -> int:
        """How many members hear `member_id`, itself included.

        Hearing is symmetric, so that is the size of the member's own audience."""
        return self._audience_sizes[self._audience_of[self.index[member_id]]]

    def record_of(self, member_id: str) -> Record:
        return self._audiences[self._audience_of[self.index[member_id]]].record

    def view(self, member_id: str, round: int, phase: str) -> View:
        m = self.members[member_id]
        own_facts = self._own_facts.get(member_id)
        if own_facts is None:
            own_facts = self._own_facts[member_id] = tuple(self.facts[f] for f in m.facts if f in self.facts)
        recent: tuple[tuple[Heard, ...], ...] = ()
        heard_facts: tuple[FactSpec, ...] = ()
        matrix = None
        mentioned: frozenset[str]
        if member_id in self.index:
            aud = self._audiences[self._audience_of[self.index[member_id]]]
            rec = aud.record
            recent, matrix, mentioned = self._shared(aud, round)
            heard_facts = self._heard_facts(m, rec)
        else:  # the facilitator hears the plenary: every audience
            recent = self._plenary_recent(round)
            mentioned = frozenset(f for aud in self._audiences for f in aud.record.disclosed)
        return View(
            member=m,
            round=round,
            phase=phase,
            question=self.scenario.question,
            options=self.options,
            own_facts=own_facts,
            heard_facts=heard_facts,
            recent=recent,
            own_history=tuple(self._own.get(member_id, ())),
            plenary=self.plenary,
            framing=self.framing,
            window=self.window,
            mentioned=mentioned,
            said=self._said.get(member_id, frozenset()),
            roster=self.roster,
            heard_matrix=matrix,
        )

    def _heard_facts(self, m: SeatedMember, rec: Record) -> tuple[FactSpec, ...]:
        """Facts others disclosed within the member's earshot, in disclosure order.

        Rebuilt only when its audience's record has learned a fact (the record only
        ever grows), not on every view."""
        count, facts = self._heard_cache.get(m.id, (-1, ()))
        if count != len(rec.disclosed):
            mine = m.facts
            facts = tuple(self.facts[f] for f in rec.disclosed if f not in mine and f in self.facts)
            self._heard_cache[m.id] = (len(rec.disclosed), facts)
        return facts

    def _shared(
        self, aud: _Audience, round: int
    ) -> tuple[tuple[tuple[Heard, ...], ...], HeardMatrix | None, frozenset[str]]:
        """The parts of a view that every member of an audience shares, built once
        per (round, record version) and handed out by reference, never copied."""
        rec = aud.record
        key = (round, rec.version, len(rec.disclosed))
        if aud.shared_key != key:
            oldest = round - self.window
            recent = tuple(aud.round_heard(r) for r in range(round, oldest - 1, -1) if r in rec.by_round)
            for r in [r for r in aud.rounds if r < oldest]:
                del aud.rounds[r]
            aud.shared = (recent, self._matrix(rec, round), frozenset(rec.disclosed))
            aud.shared_key = key
        assert aud.shared is not None
        return aud.shared

    def _matrix(self, rec: Record, round: int) -> HeardMatrix | None:
        """Scores of the newest round heard with scored actions (this round's if already spoken)."""
        fields = self._scores_field
        if not fields:
            return None
        for r in (round, round - 1):
            heard = [h for h in rec.by_round.get(r, ()) if h.kind in fields]
            if heard:
                roles = tuple(self.members[h.member].role for h in heard)
                return HeardMatrix(heard, [h.public[fields[h.kind]] for h in heard], self.option_ids, roles)
        return None

    def _plenary_recent(self, round: int) -> tuple[tuple[Heard, ...], ...]:
        out = []
        for r in range(round, round - self.window - 1, -1):
            seen: dict[str, Heard] = {}
            for aud in self._audiences:
                for h in aud.record.by_round.get(r, ()):
                    seen.setdefault(h.member, h)
            if seen:
                out.append(tuple(sorted(seen.values(), key=lambda h: self.index.get(h.member, 0))))
        return tuple(out)
