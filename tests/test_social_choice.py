"""assembly.core.social_choice against hand-computed examples and independent oracles.

Oracles: pref_voting (Holliday & Pacuit) for Borda, plurality and the Condorcet
winner; pref_voting has no veto-by-consumption or proportional-veto-core
implementation, so those are checked against (a) the brute-force definition
over voter coalitions, (b) a test-local enumeration over candidate sets (the
Hall-condition side of the definition, polynomial in voters) and (c) a literal
reading of Moulin's definition with the integer veto function
``v(T) = ceil(m|T|/n) - 1`` and every ``(T, B)`` pair.
"""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assembly.core.social_choice import (
    MAX_BRUTE_FORCE_VOTERS,
    borda_scores,
    borda_winner,
    condorcet_winner,
    in_proportional_veto_core,
    maximin_winner,
    plurality_winner,
    proportional_veto_core,
    veto_by_consumption,
    veto_by_consumption_finalists,
)

pref_profiles = pytest.importorskip("pref_voting.profiles")
pref_ties = pytest.importorskip("pref_voting.profiles_with_ties")
pref_scoring = pytest.importorskip("pref_voting.scoring_methods")

# pref_voting's @vm wrappers (scoring_methods.borda, .plurality) take ~8 s on their first call in a process,
# so the winner sets are taken from the Profile's own score methods instead: same numbers, a fraction of the time.

NAMES = ["a", "b", "c", "d", "e", "f"]
FAST = settings(max_examples=60, deadline=None)


@st.composite
def profiles(draw, min_m: int = 1, max_m: int = 5, min_n: int = 0, max_n: int = 9):
    """(rankings, candidates): complete rankings, candidate order shuffled so tie-breaking is exercised."""
    m = draw(st.integers(min_m, max_m))
    candidates = draw(st.permutations(NAMES[:m]))
    n = draw(st.integers(min_n, max_n))
    rankings = [list(draw(st.permutations(candidates))) for _ in range(n)]
    return rankings, list(candidates)


@st.composite
def partial_profiles(draw):
    m = draw(st.integers(2, 5))
    candidates = draw(st.permutations(NAMES[:m]))
    n = draw(st.integers(1, 8))
    rankings = []
    for _ in range(n):
        full = draw(st.permutations(candidates))
        rankings.append(list(full[: draw(st.integers(0, m))]))
    return rankings, list(candidates)


def to_pref_voting(rankings: list[list[str]], candidates: list[str]):
    """pref_voting Profile with candidate i = candidates[i], so 'smallest int' = 'earliest in our order'."""
    idx = {c: i for i, c in enumerate(candidates)}
    return pref_profiles.Profile([[idx[c] for c in r] for r in rankings])


# ---------------------------------------------------------------- hand-computed examples

# Profile P: 3 voters a>b>c, 2 voters b>c>a (n = 5, m = 3).
P = [["a", "b", "c"]] * 3 + [["b", "c", "a"]] * 2
ABC = ["a", "b", "c"]


def test_hand_example_scores_and_winners() -> None:
    # Borda: a = 3*2 + 2*0 = 6, b = 3*1 + 2*2 = 7, c = 3*0 + 2*1 = 2.
    assert borda_scores(P, ABC) == {"a": 6, "b": 7, "c": 2}
    assert borda_winner(P, ABC) == "b"
    # Plurality: a has 3 first places, b has 2.
    assert plurality_winner([r[0] for r in P], ABC) == "a"
    # Condorcet: a beats b 3-2 and c 3-2.
    assert condorcet_winner(P, ABC) == "a"


def test_hand_example_veto() -> None:
    # Veto by consumption, each cake 5/3, everyone eats at speed 1:
    #   t in [0, 5/9]: the three a>b>c voters eat c (rate 3), the two b>c>a eat a (rate 2);
    #     c runs out at 5/3 / 3 = 5/9; a has 5/3 - 2*5/9 = 5/9 left.
    #   t in [5/9, 5/6]: the three move to b (rate 3), the two keep eating a (rate 2);
    #     a runs out after (5/9)/2 = 5/18, at 5/6; b has 5/3 - 3*5/18 = 5/6 left.
    #   t in [5/6, 1]: all five eat b, which runs out at 5/6 + (5/6)/5 = 1. b wins.
    assert veto_by_consumption_finalists(P, ABC) == ["b"]
    assert veto_by_consumption(P, ABC) == "b"
    # Core: a is blocked by T = the two b>c>a voters with B = {b, c}: 2/5 + 2/3 = 16/15 > 1.
    # c is blocked by T = everyone with B = {b}: 1 + 1/3 > 1.
    # b: only the three a>b>c voters rank anything (a) above b: 3/5 + 1/3 = 14/15 <= 1, not blocked.
    assert [in_proportional_veto_core(x, P, ABC) for x in ABC] == [False, True, False]
    assert proportional_veto_core(P, ABC) == {"b"}


def test_veto_simultaneous_finish_breaks_tie_by_candidate_order() -> None:
    # m1, m3: c>b>a; m2: a>b>c. Cakes of size 1. m1, m3 eat a (rate 2), m2 eats c (rate 1):
    # a is gone at 1/2, c has 1/2 left. Then m1, m3 eat b (rate 2, done after 1/2) and m2
    # finishes c (rate 1, done after 1/2): b and c both run out at t = 1.
    rankings = [["c", "b", "a"], ["a", "b", "c"], ["c", "b", "a"]]
    assert veto_by_consumption_finalists(rankings, ABC) == ["b", "c"]
    assert veto_by_consumption(rankings, ABC) == "b"
    assert veto_by_consumption(rankings, ["c", "b", "a"]) == "c"
    # a is ranked last by two of three voters: 2/3 + 2/3 > 1, blocked; b and c are not.
    assert proportional_veto_core(rankings, ABC) == {"b", "c"}


def test_partial_rankings_share_bottom_points() -> None:
    cands = ["a", "b", "c", "d"]
    rankings = [["a"], ["b", "c"], ["d", "c", "b", "a"]]
    # ["a"]: a 3; b, c, d share 2 + 1 + 0, i.e. 1 each.
    # ["b", "c"]: b 3, c 2; a, d share 1 + 0, i.e. 1/2 each.
    # full: d 3, c 2, b 1, a 0.
    # a = 3 + 1/2 + 0 = 7/2, b = 1 + 3 + 1 = 5, c = 1 + 2 + 2 = 5, d = 1 + 1/2 + 3 = 9/2 (total 18 = 3 * 6).
    assert borda_scores(rankings, cands) == {"a": Fraction(7, 2), "b": 5, "c": 5, "d": Fraction(9, 2)}
    assert borda_winner(rankings, cands) == "b"  # b and c tie; b comes first
    assert borda_winner(rankings, ["c", "b", "a", "d"]) == "c"
    # Condorcet with truncation: ranked above unranked. b vs c: voter 2 b>c, voter 3 c>b, voter 1 tie -> no winner.
    assert condorcet_winner(rankings, cands) is None


def test_condorcet_cycle_and_edges() -> None:
    cycle = [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    assert condorcet_winner(cycle, ABC) is None
    assert borda_winner(cycle, ABC) == "a"  # all tie at 3
    assert condorcet_winner([], ["a"]) == "a"
    assert condorcet_winner([], ABC) is None
    assert condorcet_winner([["a", "b"], ["b", "a"]], ["a", "b"]) is None  # 1-1 is no majority


def test_empty_inputs() -> None:
    assert borda_winner([], ABC) is None
    assert borda_winner([], []) is None
    assert plurality_winner([], ABC) is None
    assert plurality_winner(["c", "a", "c", "a"], ABC) == "a"  # 2-2 tie, a is earlier
    assert veto_by_consumption([], ABC) == "a"  # no voters: every cake is empty, all tie
    assert proportional_veto_core([], ABC) == set(ABC)
    assert veto_by_consumption([["a"]], ["a"]) == "a"
    with pytest.raises(ValueError):
        veto_by_consumption([], [])


def test_validation() -> None:
    with pytest.raises(ValueError, match="unknown"):
        borda_scores([["a", "z"]], ABC)
    with pytest.raises(ValueError, match="repeats"):
        borda_scores([["a", "a"]], ABC)
    with pytest.raises(ValueError, match="duplicate"):
        borda_scores([], ["a", "a"])
    with pytest.raises(ValueError, match="not complete"):
        veto_by_consumption([["a", "b"]], ABC)
    with pytest.raises(ValueError, match="not complete"):
        proportional_veto_core([["a", "b"]], ABC)
    with pytest.raises(ValueError, match="not a candidate"):
        in_proportional_veto_core("z", [ABC], ABC)
    with pytest.raises(ValueError, match="not a candidate"):
        plurality_winner(["z"], ABC)
    with pytest.raises(ValueError, match="limited"):
        in_proportional_veto_core("a", [ABC] * (MAX_BRUTE_FORCE_VOTERS + 1), ABC)
    with pytest.raises(ValueError, match="no score"):
        maximin_winner({"g": {"a": 1.0}}, ABC)


def test_maximin_hand_example() -> None:
    scores = {
        "residents": {"a": 0.9, "b": 0.6, "c": 0.5},
        "farmers": {"a": 0.1, "b": 0.6, "c": 0.7},
    }
    # worst group per option: a 0.1, b 0.6, c 0.5 -> b
    assert maximin_winner(scores, ABC) == "b"
    # a tie on the worst-group score goes to the earlier candidate
    assert maximin_winner({"g": {"a": 0.5, "b": 0.5, "c": 0.2}}, ["b", "a", "c"]) == "b"
    assert maximin_winner({}, ABC) is None


# ---------------------------------------------------------------- pref_voting oracles


@FAST
@given(profiles(min_m=2, min_n=1))
def test_borda_matches_pref_voting(profile) -> None:
    rankings, candidates = profile
    prof = to_pref_voting(rankings, candidates)
    ours = borda_scores(rankings, candidates)
    theirs = prof.borda_scores()
    assert {i: ours[c] for i, c in enumerate(candidates)} == theirs
    winners = {i for i, v in theirs.items() if v == max(theirs.values())}
    ours_winner = borda_winner(rankings, candidates)
    assert ours_winner in {candidates[i] for i in winners}
    assert ours_winner == candidates[min(winners)]


@FAST
@given(profiles(min_m=2, min_n=1))
def test_plurality_matches_pref_voting(profile) -> None:
    rankings, candidates = profile
    theirs = to_pref_voting(rankings, candidates).plurality_scores()
    winners = {i for i, v in theirs.items() if v == max(theirs.values())}
    ours = plurality_winner([r[0] for r in rankings], candidates)
    assert ours in {candidates[i] for i in winners}
    assert ours == candidates[min(winners)]


@FAST
@given(profiles(min_m=2, min_n=1))
def test_condorcet_matches_pref_voting(profile) -> None:
    rankings, candidates = profile
    cw = to_pref_voting(rankings, candidates).condorcet_winner()
    assert condorcet_winner(rankings, candidates) == (None if cw is None else candidates[cw])


@FAST
@given(partial_profiles())
def test_partial_rankings_match_pref_voting_truncated_ballots(profile) -> None:
    """Our averaged Borda is 1/2 (symmetric Borda + n(m-1)/2) on truncated ballots; Condorcet uses the same order."""
    rankings, candidates = profile
    n, m = len(rankings), len(candidates)
    idx = {c: i for i, c in enumerate(candidates)}
    prof = pref_ties.ProfileWithTies(
        [{idx[c]: k + 1 for k, c in enumerate(r)} for r in rankings], candidates=list(range(m))
    )
    prof.use_extended_strict_preference()  # ranked above unranked, as in our convention
    sym = pref_scoring.symmetric_borda_scores(prof)
    ours = borda_scores(rankings, candidates)
    assert {i: 2 * ours[c] - n * (m - 1) for i, c in enumerate(candidates)} == sym
    cw = prof.condorcet_winner()
    assert condorcet_winner(rankings, candidates) == (None if cw is None else candidates[cw])


# ---------------------------------------------------------------- veto core oracles


def core_by_candidate_sets(rankings: list[list[str]], candidates: list[str]) -> set[str]:
    """x is blocked iff some B not containing x, with T = everyone ranking all of B above x, has |T|/n + |B|/m > 1."""
    n, m = len(rankings), len(candidates)
    core = set()
    for x in candidates:
        others = [c for c in candidates if c != x]
        blocked = False
        for size in range(1, m):
            for b in combinations(others, size):
                t = sum(1 for r in rankings if all(r.index(y) < r.index(x) for y in b))
                if t > 0 and Fraction(t, n) + Fraction(size, m) > 1:
                    blocked = True
        if not blocked:
            core.add(x)
    return core


def core_literal(rankings: list[list[str]], candidates: list[str]) -> set[str]:
    """Moulin's definition read literally: every coalition T, every B, integer veto power ceil(m|T|/n) - 1."""
    n, m = len(rankings), len(candidates)
    core = set()
    for x in candidates:
        others = [c for c in candidates if c != x]
        blocked = False
        for t_size in range(1, n + 1):
            veto = -(-m * t_size // n) - 1  # ceil(m|T|/n) - 1
            for coalition in combinations(range(n), t_size):
                for b_size in range(max(1, m - veto), m):
                    for b in combinations(others, b_size):
                        if all(rankings[i].index(y) < rankings[i].index(x) for i in coalition for y in b):
                            blocked = True
        if not blocked:
            core.add(x)
    return core


@settings(max_examples=80, deadline=None)
@given(profiles(max_m=5, max_n=8))
def test_veto_by_consumption_winner_is_in_brute_force_core(profile) -> None:
    rankings, candidates = profile
    finalists = veto_by_consumption_finalists(rankings, candidates)
    assert finalists and finalists == [c for c in candidates if c in finalists]
    assert veto_by_consumption(rankings, candidates) == finalists[0]
    for x in finalists:  # the theorem holds whichever finalist the tie-break picks
        assert in_proportional_veto_core(x, rankings, candidates)


@settings(max_examples=80, deadline=None)
@given(profiles(max_m=5, max_n=8))
def test_efficient_core_equals_brute_force(profile) -> None:
    rankings, candidates = profile
    brute = {x for x in candidates if in_proportional_veto_core(x, rankings, candidates)}
    assert brute  # the core is never empty
    assert proportional_veto_core(rankings, candidates) == brute
    assert core_by_candidate_sets(rankings, candidates) == brute


@settings(max_examples=40, deadline=None)
@given(profiles(max_m=4, min_n=1, max_n=5))
def test_core_fraction_form_equals_literal_definition(profile) -> None:
    rankings, candidates = profile
    literal = core_literal(rankings, candidates)
    assert {x for x in candidates if in_proportional_veto_core(x, rankings, candidates)} == literal


@settings(max_examples=40, deadline=None)
@given(profiles(min_m=2, max_m=6, min_n=10, max_n=40))
def test_efficient_core_on_larger_electorates(profile) -> None:
    rankings, candidates = profile
    core = proportional_veto_core(rankings, candidates)
    assert core == core_by_candidate_sets(rankings, candidates)
    assert veto_by_consumption(rankings, candidates) in core


@FAST
@given(profiles(min_m=2, min_n=1), st.randoms(use_true_random=False))
def test_veto_by_consumption_is_anonymous(profile, rnd) -> None:
    rankings, candidates = profile
    shuffled = list(rankings)
    rnd.shuffle(shuffled)
    assert veto_by_consumption(shuffled, candidates) == veto_by_consumption(rankings, candidates)


@FAST
@given(profiles(min_m=2, max_m=2, min_n=1, max_n=15))
def test_veto_by_consumption_two_candidates_is_majority(profile) -> None:
    # With two candidates the one eaten by fewer voters lasts longest: the majority winner.
    rankings, candidates = profile
    a, b = candidates
    for_a = sum(1 for r in rankings if r[0] == a)
    expected = a if for_a >= len(rankings) - for_a else b
    assert veto_by_consumption(rankings, candidates) == expected


@FAST
@given(profiles(min_m=2, min_n=1))
def test_condorcet_winner_beats_everyone(profile) -> None:
    rankings, candidates = profile
    cw = condorcet_winner(rankings, candidates)
    if cw is not None:
        for other in candidates:
            if other != cw:
                wins = sum(1 for r in rankings if r.index(cw) < r.index(other))
                assert 2 * wins > len(rankings)
