"""Decision rules and quorum.

Expected values are worked out by hand (or, for Schulze, from the published example and
from a brute-force path enumeration written independently here), never by re-running the
implementation's own arithmetic.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from assembly.protocols.facilitated.actions import Ballot
from assembly.protocols.facilitated.rules import (
    ApprovalRule,
    BordaRule,
    DecisionRuleSpec,
    MajorityRule,
    RuleResult,
    SchulzeRule,
    SupermajorityRule,
    UnanimityRule,
    VetoByConsumptionRule,
    decide,
    quorum_met,
    schulze_ranking,
)

SPEC = TypeAdapter(DecisionRuleSpec)


def choices(*options: str | None) -> list[Ballot]:
    return [Ballot(choice=o) for o in options]


def abstentions(n: int) -> list[Ballot]:
    return [Ballot(abstain=True) for _ in range(n)]


def ranked(count: int, order: str) -> list[Ballot]:
    return [Ballot(ranking=list(order)) for _ in range(count)]


# --------------------------------------------------------------------------- spec parsing


def test_spec_parses_yaml_shapes_and_defaults() -> None:
    spec = SPEC.validate_python({"kind": "supermajority", "threshold": 0.66})
    assert isinstance(spec, SupermajorityRule)
    assert spec.threshold == Fraction(33, 50)  # the decimal as written, not the binary float
    assert spec.base == "cast"
    two_thirds = SPEC.validate_python({"kind": "supermajority", "threshold": "2/3"})
    assert isinstance(two_thirds, SupermajorityRule) and two_thirds.threshold == Fraction(2, 3)
    approval = SPEC.validate_python({"kind": "approval"})
    assert isinstance(approval, ApprovalRule) and approval.threshold == Fraction(1, 2)
    assert SPEC.validate_python({"kind": "schulze", "base": "seated"}).base == "seated"
    assert isinstance(SPEC.validate_python({"kind": "unanimity"}), UnanimityRule)


@pytest.mark.parametrize(
    "raw",
    [
        {"kind": "majority", "threshold": 0.6},  # extra field
        {"kind": "plurality"},
        {"kind": "supermajority"},  # threshold required
        {"kind": "supermajority", "threshold": 0.5},
        {"kind": "supermajority", "threshold": 1.01},
        {"kind": "supermajority", "threshold": True},
        {"kind": "supermajority", "threshold": "nan"},
        {"kind": "approval", "threshold": 0},
        {"kind": "majority", "base": "present"},
    ],
)
def test_spec_rejects_bad_configs(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SPEC.validate_python(raw)


def test_spec_round_trips_through_json() -> None:
    for raw in ({"kind": "supermajority", "threshold": 0.66}, {"kind": "approval", "threshold": "2/3"}):
        spec = SPEC.validate_python(raw)
        dumped = SPEC.dump_python(spec, mode="json")
        assert dumped["threshold"] == raw["threshold"]
        assert SPEC.validate_json(SPEC.dump_json(spec)) == spec


# --------------------------------------------------------------------------- majority


def test_majority_hand_example() -> None:
    ballots = choices(*"BBBBBBBAAACC")  # B 7, A 3, C 2 of 12
    r = decide(MajorityRule(), ballots, ["A", "B", "C"], seated=12)
    assert r == RuleResult(
        decided=True,
        winner="B",
        support={"A": 3 / 12, "B": 7 / 12, "C": 2 / 12},
        leading="B",
        leading_support=7 / 12,
        counted=12,
        denominator=12,
        detail="B has 7/12 = 58% of cast ballots; majority needs > 50%.",
    )


def test_exactly_half_is_not_a_majority() -> None:
    r = decide(MajorityRule(), choices(*"AAAAABBBCC"), ["A", "B", "C"], seated=10)
    assert not r.decided and r.winner is None
    assert r.leading == "A" and r.leading_support == 0.5
    assert r.detail == "A has 5/10 = 50% of cast ballots; majority needs > 50%."


def test_majority_tie_at_top_is_reported_without_a_leader() -> None:
    r = decide(MajorityRule(), choices(*"AABB"), ["A", "B"], seated=4)
    assert not r.decided and r.leading is None and r.leading_support == 0.5
    assert "A and B tie" in r.detail


def test_majority_base_seated_counts_absent_and_abstaining_members() -> None:
    ballots = choices(*"BBBBA") + abstentions(2)  # 4 of 5 cast, but 4 of 10 seated
    assert decide(MajorityRule(), ballots, ["A", "B"], seated=10).winner == "B"
    r = decide(MajorityRule(base="seated"), ballots, ["A", "B"], seated=10)
    assert not r.decided
    assert (r.counted, r.denominator, r.support["B"]) == (5, 10, 0.4)
    assert "of seated members" in r.detail


def test_spoiled_ballots_count_as_cast_but_back_nobody() -> None:
    # "X" is not a candidate, None is a blank: both are cast, neither backs anybody.
    r = decide(MajorityRule(), choices("A", "A", "X", None), ["A", "B"], seated=4)
    assert not r.decided
    assert (r.counted, r.support) == (4, {"A": 0.5, "B": 0.0})


# --------------------------------------------------------------------------- supermajority


def test_exactly_threshold_passes_supermajority() -> None:
    three_quarters = SupermajorityRule(threshold=Fraction("0.75"))
    assert decide(three_quarters, choices(*"AAAB"), ["A", "B"], seated=4).winner == "A"
    assert not decide(three_quarters, choices(*"AAABB"), ["A", "B"], seated=5).decided  # 60%


def test_supermajority_threshold_uses_exact_arithmetic() -> None:
    def yaml_rule(threshold: float) -> DecisionRuleSpec:
        return SPEC.validate_python({"kind": "supermajority", "threshold": threshold})

    # 0.56 * 50 == 28.000000000000004 in floats; 28 of 50 is exactly 56%.
    ballots = choices(*("A" * 28 + "B" * 22))
    assert decide(yaml_rule(0.56), ballots, ["A", "B"], seated=50).winner == "A"
    # "2/3" written as a fraction passes with exactly 8 of 12; a rounded 0.6667 does not.
    ballots = choices(*("A" * 8 + "B" * 4))
    assert decide(SupermajorityRule(threshold=Fraction(2, 3)), ballots, ["A", "B"], seated=12).decided
    assert not decide(yaml_rule(0.6667), ballots, ["A", "B"], seated=12).decided


def test_two_thirds_of_all_seated_members() -> None:
    rule = SPEC.validate_python({"kind": "supermajority", "threshold": "2/3", "base": "seated"})
    eight = choices(*("B" * 8 + "A")) + abstentions(3)
    seven = choices(*("B" * 7 + "AA")) + abstentions(3)
    assert decide(rule, eight, ["A", "B"], seated=12).winner == "B"
    r = decide(rule, seven, ["A", "B"], seated=12)
    assert not r.decided and r.detail.endswith("supermajority needs ≥ 66.67%.")
    # Over cast ballots the same seven are 7/9 and pass.
    assert decide(SupermajorityRule(threshold=Fraction(2, 3)), seven, ["A", "B"], seated=12).decided


# --------------------------------------------------------------------------- unanimity


def test_unanimity() -> None:
    rule = UnanimityRule()
    assert decide(rule, choices(*"AAAAA"), ["A", "B"], seated=5).winner == "A"
    assert not decide(rule, choices(*"AAAAB"), ["A", "B"], seated=5).decided  # one dissent
    assert not decide(rule, choices("A", "A", None), ["A", "B"], seated=3).decided  # one blank
    with_abstention = choices(*"AAAA") + abstentions(1)
    assert decide(rule, with_abstention, ["A", "B"], seated=5).winner == "A"
    assert not decide(UnanimityRule(base="seated"), with_abstention, ["A", "B"], seated=5).decided


@pytest.mark.parametrize(
    "rule",
    [
        MajorityRule(),
        SupermajorityRule(threshold=Fraction("0.6")),
        UnanimityRule(),
        ApprovalRule(),
        SchulzeRule(),
        MajorityRule(base="seated"),
    ],
)
def test_all_abstain_decides_nothing(rule: DecisionRuleSpec) -> None:
    r = decide(rule, abstentions(4), ["A"], seated=4)
    assert not r.decided and r.winner is None and r.leading is None
    assert (r.counted, r.support, r.leading_support) == (0, {"A": 0.0}, 0.0)


def test_no_candidates_and_no_seats_decide_nothing() -> None:
    assert not decide(MajorityRule(), choices("A"), [], seated=1).decided
    assert not decide(MajorityRule(base="seated"), [], ["A"], seated=0).decided


def test_more_ballots_than_seats_is_a_caller_bug() -> None:
    with pytest.raises(ValueError):
        decide(MajorityRule(), choices("A", "A"), ["A"], seated=1)


# --------------------------------------------------------------------------- approval


def test_approval_hand_example() -> None:
    ballots = [
        Ballot(approve=["A", "B"]),
        Ballot(approve=["B"]),
        Ballot(approve=["B", "C", "B"]),  # a duplicate approval counts once
        Ballot(approve=["C", "Ghost"]),  # not a candidate: ignored
        Ballot(approve=[]),
    ]
    r = decide(ApprovalRule(), ballots, ["A", "B", "C"], seated=5)
    assert r.winner == "B"
    assert r.support == {"A": 0.2, "B": 0.6, "C": 0.4}
    assert r.detail == "B is approved by 3/5 = 60% of cast ballots; approval needs ≥ 50%."
    assert not decide(ApprovalRule(threshold=Fraction("0.7")), ballots, ["A", "B", "C"], seated=5).decided


def test_approval_tie_at_top_is_not_decided_even_above_threshold() -> None:
    ballots = [Ballot(approve=["A", "B"]), Ballot(approve=["A", "B"]), Ballot(approve=["C"])]
    r = decide(ApprovalRule(), ballots, ["A", "B", "C"], seated=3)
    assert not r.decided and r.leading is None
    assert r.leading_support == pytest.approx(2 / 3)


# --------------------------------------------------------------------------- schulze

# Wikipedia, "Schulze method", example: 45 voters, 5 candidates.
WIKIPEDIA_45 = [
    (5, "ACBED"),
    (5, "ADECB"),
    (8, "BEDAC"),
    (3, "CABED"),
    (7, "CAEBD"),
    (2, "CBADE"),
    (7, "DCEBA"),
    (8, "EBADC"),
]


def test_schulze_wikipedia_example() -> None:
    ballots = [b for count, order in WIKIPEDIA_45 for b in ranked(count, order)]
    assert len(ballots) == 45
    assert schulze_ranking(ballots, list("ABCDE")) == [["E"], ["A"], ["C"], ["B"], ["D"]]
    r = decide(SchulzeRule(), ballots, list("ABCDE"), seated=45)
    assert r.decided and r.winner == "E"
    # First places: A 10, B 8, C 12, D 7, E 8; plurality would have picked C.
    assert r.leading == "C" and r.support["E"] == 8 / 45
    assert r.detail == "E is the unique Schulze winner, ranked first by 8/45 = 18% of cast ballots."


def test_schulze_partial_rankings_by_hand() -> None:
    # Unranked candidates tie below ranked ones. Pairwise: B>A 4:3, C>A 4:3, B=C 2:2.
    ballots = ranked(3, "A") + ranked(2, "BC") + ranked(2, "CB")
    assert schulze_ranking(ballots, ["A", "B", "C"]) == [["B", "C"], ["A"]]
    r = decide(SchulzeRule(), ballots, ["A", "B", "C"], seated=8)
    assert not r.decided and r.leading == "A"
    assert r.detail == "No unique Schulze winner: B and C are unbeaten."
    # One more "B" ballot: B>A 5:3, B>C 3:2, a Condorcet winner, while A and B tie on first places.
    r = decide(SchulzeRule(), [*ballots, *ranked(1, "B")], ["A", "B", "C"], seated=8)
    assert r.winner == "B" and r.leading is None and r.leading_support == 3 / 8


def test_schulze_ignores_unknown_and_duplicate_entries() -> None:
    ballots = [Ballot(ranking=["Z", "A", "A", "B"]), Ballot(ranking=["B", "Q"]), Ballot(ranking=["A"])]
    assert schulze_ranking(ballots, ["A", "B"]) == [["A"], ["B"]]  # A>B 2:1
    assert decide(SchulzeRule(), ballots, ["A", "B"], seated=3).support == {"A": 2 / 3, "B": 1 / 3}


def test_schulze_needs_some_expressed_preference() -> None:
    assert not decide(SchulzeRule(), [Ballot(ranking=[])], ["A"], seated=1).decided
    assert decide(SchulzeRule(), [Ballot(ranking=["A"])], ["A"], seated=1).winner == "A"
    r = decide(SchulzeRule(), ranked(1, "AB") + ranked(1, "BA"), ["A", "B"], seated=2)
    assert not r.decided


# --------------------------------------------------------------------------- quorum


def test_quorum() -> None:
    assert quorum_met(6, 10, 0.6)
    assert not quorum_met(5, 10, 0.6)
    assert quorum_met(28, 50, 0.56)  # 0.56 * 50 > 28 in floats
    assert quorum_met(55, 100, 0.55)
    assert quorum_met(8, 12, "2/3") and not quorum_met(7, 12, "2/3")
    assert quorum_met(0, 10, 0) and quorum_met(10, 10, 1.0) and not quorum_met(9, 10, 1)
    assert quorum_met(0, 0, 0.5)


@pytest.mark.parametrize("args", [(1, 10, 1.5), (1, 10, -0.1), (1, 10, float("nan")), (-1, 10, 0.5)])
def test_quorum_rejects_nonsense(args: tuple[int, int, float]) -> None:
    with pytest.raises(ValueError):
        quorum_met(*args)


# --------------------------------------------------------------------------- properties

CANDIDATES = ["A", "B", "C", "D"]
NAMES = st.sampled_from([*CANDIDATES, "Z", ""])  # "Z" and "" are never candidates


def ballots_st(abstain: st.SearchStrategy[bool] | None = None) -> st.SearchStrategy[Ballot]:
    return st.builds(
        Ballot,
        choice=st.none() | NAMES,
        approve=st.lists(NAMES, max_size=5),
        ranking=st.lists(NAMES, max_size=6),
        abstain=st.booleans() if abstain is None else abstain,
    )


candidates_st = st.lists(st.sampled_from(CANDIDATES), min_size=1, max_size=4, unique=True)
base_st = st.sampled_from(["cast", "seated"])
specs_st = st.one_of(
    st.builds(MajorityRule, base=base_st),
    st.builds(
        SupermajorityRule,
        threshold=st.fractions(Fraction(51, 100), 1, max_denominator=100),
        base=base_st,
    ),
    st.builds(UnanimityRule, base=base_st),
    st.builds(ApprovalRule, threshold=st.fractions(Fraction(1, 100), 1, max_denominator=100), base=base_st),
    st.builds(SchulzeRule, base=base_st),
    # Two of the rules that protect minorities (tests/test_minority_rules.py); maximin_score
    # needs each ballot's role, so it has its own properties there.
    st.builds(BordaRule, base=base_st),
    st.builds(VetoByConsumptionRule, base=base_st),
)
votes_st = st.lists(ballots_st(), max_size=12)
extra_seats = st.integers(0, 3)


@given(specs_st, votes_st, candidates_st, extra_seats)
def test_decided_winner_is_a_candidate_and_shares_are_sane(
    spec: DecisionRuleSpec, ballots: list[Ballot], candidates: list[str], extra: int
) -> None:
    r = decide(spec, ballots, candidates, seated=len(ballots) + extra)
    assert r.decided == (r.winner is not None)
    if r.decided:
        assert r.winner in candidates
    assert set(r.support) == set(candidates)
    assert all(0.0 <= s <= 1.0 for s in r.support.values())
    assert r.counted == sum(not b.abstain for b in ballots)
    assert r.leading is None or r.support[r.leading] == r.leading_support == max(r.support.values())


@given(votes_st, candidates_st, extra_seats, base_st)
def test_majority_agrees_with_a_barely_supermajority(
    ballots: list[Ballot], candidates: list[str], extra: int, base: Any
) -> None:
    seated = len(ballots) + extra
    majority = decide(MajorityRule(base=base), ballots, candidates, seated)
    # Any share strictly above 1/2 with denominator <= seated is at least 1/2 + 1/(2*seated).
    barely = SupermajorityRule(threshold=Fraction(1, 2) + Fraction(1, 2 * seated + 2), base=base)
    assert decide(barely, ballots, candidates, seated).winner == majority.winner
    if majority.decided:
        assert majority.leading_support > 0.5
        first_choices = sum(b.choice == majority.winner for b in ballots if not b.abstain)
        assert 2 * first_choices > majority.denominator


@given(votes_st, candidates_st, extra_seats, base_st)
def test_unanimity_implies_majority(ballots: list[Ballot], candidates: list[str], extra: int, base: Any) -> None:
    seated = len(ballots) + extra
    unanimous = decide(UnanimityRule(base=base), ballots, candidates, seated)
    if unanimous.decided:
        assert decide(MajorityRule(base=base), ballots, candidates, seated).winner == unanimous.winner


@given(specs_st, votes_st, candidates_st, st.randoms(use_true_random=False))
def test_ballot_order_never_matters(
    spec: DecisionRuleSpec, ballots: list[Ballot], candidates: list[str], rnd: Any
) -> None:
    shuffled = list(ballots)
    rnd.shuffle(shuffled)
    seated = len(ballots) + 1
    assert decide(spec, shuffled, candidates, seated) == decide(spec, ballots, candidates, seated)


@given(specs_st, votes_st, candidates_st, st.lists(ballots_st(abstain=st.just(True)), min_size=1, max_size=4))
def test_abstentions_never_change_a_cast_base_result(
    spec: DecisionRuleSpec, ballots: list[Ballot], candidates: list[str], extra: list[Ballot]
) -> None:
    spec = spec.model_copy(update={"base": "cast"})
    seated = len(ballots) + len(extra)
    assert decide(spec, [*ballots, *extra], candidates, seated) == decide(spec, ballots, candidates, seated)


@given(specs_st, votes_st, candidates_st, st.data())
def test_unknown_names_are_ignored(
    spec: DecisionRuleSpec, ballots: list[Ballot], candidates: list[str], data: st.DataObject
) -> None:
    """Sprinkling non-candidates into approvals and rankings, or voting for one, changes nothing."""

    def sprinkle(options: list[str]) -> list[str]:
        out = list(options)
        for junk in data.draw(st.lists(st.sampled_from(["Z", "", "a", "A "]), max_size=3)):
            out.insert(data.draw(st.integers(0, len(out))), junk)
        return out

    def noisy(b: Ballot) -> Ballot:
        choice = "Z" if b.choice is None or b.choice not in candidates else b.choice
        return b.model_copy(update={"choice": choice, "approve": sprinkle(b.approve), "ranking": sprinkle(b.ranking)})

    seated = len(ballots)
    noisy_ballots = [noisy(b) for b in ballots]
    assert decide(spec, noisy_ballots, candidates, seated) == decide(spec, ballots, candidates, seated)


def rankings_st() -> st.SearchStrategy[list[Ballot]]:
    ranking = st.lists(st.sampled_from(CANDIDATES), unique=True, max_size=4)
    return st.lists(st.builds(Ballot, ranking=ranking), min_size=1, max_size=15)


def pairwise(ballots: list[Ballot], candidates: list[str]) -> dict[tuple[str, str], int]:
    """How many ballots put x above y; a ranked candidate is above every unranked one."""

    def above(b: Ballot, x: str, y: str) -> bool:
        order = [o for o in b.ranking if o in candidates]
        return x in order and (y not in order or order.index(x) < order.index(y))

    return {(x, y): sum(above(b, x, y) for b in ballots) for x in candidates for y in candidates if x != y}


@given(rankings_st(), st.lists(st.sampled_from(CANDIDATES), min_size=2, max_size=4, unique=True))
def test_condorcet_winner_is_the_schulze_winner(ballots: list[Ballot], candidates: list[str]) -> None:
    d = pairwise(ballots, candidates)
    beats_all = [x for x in candidates if all(d[x, y] > d[y, x] for y in candidates if y != x)]
    if beats_all:
        (condorcet,) = beats_all
        assert decide(SchulzeRule(), ballots, candidates, seated=len(ballots)).winner == condorcet


@given(rankings_st(), candidates_st)
def test_schulze_matches_brute_force_path_enumeration(ballots: list[Ballot], candidates: list[str]) -> None:
    """Schulze's definition read literally: strongest path over every simple path."""
    d = pairwise(ballots, candidates)

    def strongest(x: str, y: str) -> int:
        best = 0
        others = [c for c in candidates if c not in (x, y)]
        for k in range(len(others) + 1):
            for middle in itertools.permutations(others, k):
                path = [x, *middle, y]
                links = list(itertools.pairwise(path))
                if all(d[a, b] > d[b, a] for a, b in links):
                    best = max(best, min(d[a, b] for a, b in links))
        return best

    winners = [x for x in candidates if all(strongest(x, y) >= strongest(y, x) for y in candidates if y != x)]
    assert schulze_ranking(ballots, candidates)[0] == winners
    expressed = any(o in candidates for b in ballots for o in b.ranking)
    expected = winners[0] if len(winners) == 1 and expressed else None
    assert decide(SchulzeRule(), ballots, candidates, seated=len(ballots)).winner == expected
