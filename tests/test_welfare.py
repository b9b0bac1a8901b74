"""assembly.core.welfare: a hand-computed scenario for every figure, plus numpy / scipy / pref_voting oracles."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from assembly.core.social_choice import condorcet_winner, proportional_veto_core
from assembly.core.welfare import baselines, normalize, rank_options, spearman, spearman_rows, utilities, welfare

pref_profiles = pytest.importorskip("pref_voting.profiles")

FAST = settings(max_examples=60, deadline=None)

# ---------------------------------------------------------------- the hand-computed scenario
#
# Options A, B, C (in this order); dimensions econ, env, community; roles R = {m1, m2}, F = {m3}.
ATTRIBUTES = {
    "A": {"econ": 2.0, "community": 1.0},
    "B": {"econ": 1.0, "env": 1.0, "community": 1.0},
    "C": {"env": 2.0},
}
EFFECTS = {"f1": {"B": 1.0}, "f2": {"A": -1.0, "C": 1.0}}
VALUES = {
    "m1": {"econ": 1.0, "env": 2.0},
    "m2": {"econ": 3.0},
    "m3": {"env": 2.0, "community": 1.0},
}
ROLE_OF = {"m1": "R", "m2": "R", "m3": "F"}
# Full information (f1 and f2 known):
#   m1: A = 1*2 - 1 = 1,        B = 1*1 + 2*1 + 1 = 4,           C = 2*2 + 1 = 5
#   m2: A = 3*2 - 1 = 5,        B = 3*1 + 1 = 4,                 C = 0 + 1 = 1
#   m3: A = 1*1 - 1 = 0,        B = 2*1 + 1*1 + 1 = 4,           C = 2*2 + 1 = 5
RAW = {"m1": {"A": 1.0, "B": 4.0, "C": 5.0}, "m2": {"A": 5.0, "B": 4.0, "C": 1.0}, "m3": {"A": 0.0, "B": 4.0, "C": 5.0}}
# Range-normalised: m1 (1..5): 0, 3/4, 1;  m2 (1..5): 1, 3/4, 0;  m3 (0..5): 0, 4/5, 1.
NORM = {
    "m1": {"A": 0.0, "B": 0.75, "C": 1.0},
    "m2": {"A": 1.0, "B": 0.75, "C": 0.0},
    "m3": {"A": 0.0, "B": 0.8, "C": 1.0},
}
# Rankings: m1 C>B>A, m2 A>B>C, m3 C>B>A.
#
# Per option (every member's best is worth 1, so regret = 1 - u):
#   A: mean (0+1+0)/3 = 1/3; Nash 0 (m1 at 0); min 0; roles R (0+1)/2 = 1/2, F 0 -> worst 0;
#      regret R ((1-0)+(1-1))/2 = 1/2, F 1.
#   B: mean (.75+.75+.8)/3 = 2.3/3 = 0.766667; Nash (.75*.75*.8)^(1/3) = 0.45^(1/3) = 0.766309;
#      min .75; roles R .75, F .8 -> worst .75; regret R .25, F .2.
#   C: mean (1+0+1)/3 = 2/3; Nash 0 (m2 at 0); min 0; roles R 1/2, F 1 -> worst 1/2; regret R 1/2, F 0.
# Condorcet: C beats B (m1, m3 vs m2) and A (m1, m3 vs m2): C is the Condorcet winner.
# Veto core (n = m = 3): x is blocked iff 2 voters rank it last (2/3 + 2/3 > 1) or it is Pareto
#   dominated (1 + 1/3 > 1); a single voter never blocks (1/3 + 2/3 = 1). A is last for m1 and m3:
#   blocked. B is last for nobody and undominated; C is last only for m2 and undominated. Core {B, C}.
EXPECTED = {
    "A": {
        "utilitarian": 0.333333,
        "nash": 0.0,
        "egalitarian": 0.0,
        "worst_role": 0.0,
        "regret_by_role": {"F": 1.0, "R": 0.5},
        "condorcet_winner": False,
        "in_veto_core": False,
    },
    "B": {
        "utilitarian": 0.766667,
        "nash": 0.766309,
        "egalitarian": 0.75,
        "worst_role": 0.75,
        "regret_by_role": {"F": 0.2, "R": 0.25},
        "condorcet_winner": False,
        "in_veto_core": True,
    },
    "C": {
        "utilitarian": 0.666667,
        "nash": 0.0,
        "egalitarian": 0.0,
        "worst_role": 0.5,
        "regret_by_role": {"F": 0.0, "R": 0.5},
        "condorcet_winner": True,
        "in_veto_core": True,
    },
}
# Baselines: utilitarian argmax mean -> B (0.766667).
#   Borda: C = 2+0+2 = 4, B = 1+1+1 = 3, A = 0+2+0 = 2 -> C.
#   Maximin over roles: worst-role means A 0, B .75, C .5 -> B.


def test_hand_example_utilities_and_normalize() -> None:
    for m in VALUES:
        assert utilities(VALUES[m], ATTRIBUTES, EFFECTS) == RAW[m]
        assert normalize(RAW[m]) == pytest.approx(NORM[m], abs=1e-12)
        assert list(utilities(VALUES[m], ATTRIBUTES, EFFECTS)) == ["A", "B", "C"]


def test_hand_example_partial_information() -> None:
    # m1 knowing only f1: A = 2, B = 4, C = 4 (f2's -1 on A and +1 on C are unknown).
    assert utilities(VALUES["m1"], ATTRIBUTES, EFFECTS, known_facts=["f1"]) == {"A": 2.0, "B": 4.0, "C": 4.0}
    # ... and knowing nothing: A = 2, B = 3, C = 4.
    assert utilities(VALUES["m1"], ATTRIBUTES, EFFECTS, known_facts=[]) == {"A": 2.0, "B": 3.0, "C": 4.0}
    # a known fact with no listed effects counts as 0; a duplicate fact counts once
    assert utilities(VALUES["m1"], ATTRIBUTES, EFFECTS, known_facts=["f1", "f1", "rumour"]) == {
        "A": 2.0,
        "B": 4.0,
        "C": 4.0,
    }
    # m1's B/C tie ranks B first (option order)
    assert rank_options({"A": 2.0, "B": 4.0, "C": 4.0}, ["A", "B", "C"]) == ["B", "C", "A"]


def test_hand_example_welfare() -> None:
    for option, expected in EXPECTED.items():
        got = welfare(option, NORM, ROLE_OF)
        assert got == expected, option
        json.dumps(got)  # JSON-ready
    assert list(welfare("A", NORM, ROLE_OF)["regret_by_role"]) == ["F", "R"]  # roles sorted by name


def test_hand_example_baselines() -> None:
    assert baselines(NORM, ROLE_OF) == {"utilitarian": "B", "borda": "C", "maximin": "B"}


def test_utilities_missing_entries_and_errors() -> None:
    assert utilities({}, ATTRIBUTES, {}) == {"A": 0.0, "B": 0.0, "C": 0.0}
    assert utilities({"unknown_dim": 5.0}, ATTRIBUTES, EFFECTS, known_facts=[]) == {"A": 0.0, "B": 0.0, "C": 0.0}
    with pytest.raises(ValueError, match="unknown options"):
        utilities({}, ATTRIBUTES, {"f": {"Z": 1.0}})


def test_normalize_edges() -> None:
    assert normalize({}) == {}
    assert normalize({"A": 3.0, "B": 3.0}) == {"A": 1.0, "B": 1.0}
    assert normalize({"A": -2.0, "B": 2.0, "C": 0.0}) == {"A": 0.0, "B": 1.0, "C": 0.5}


def test_welfare_validation() -> None:
    with pytest.raises(ValueError, match="not an option"):
        welfare("Z", NORM, ROLE_OF)
    with pytest.raises(ValueError, match="no role"):
        welfare("A", NORM, {"m1": "R"})
    with pytest.raises(ValueError, match="expected"):
        welfare("A", {**NORM, "m4": {"A": 1.0}}, {**ROLE_OF, "m4": "R"})
    with pytest.raises(ValueError, match="non-negative"):
        welfare("A", {"m1": {"A": -0.5, "B": 1.0}}, {"m1": "R"})
    # explicit option order changes tie-breaking only
    tied = {"m1": {"A": 1.0, "B": 1.0}, "m2": {"A": 1.0, "B": 1.0}}
    roles = {"m1": "R", "m2": "R"}
    assert baselines(tied, roles) == {"utilitarian": "A", "borda": "A", "maximin": "A"}
    assert baselines(tied, roles, options=["B", "A"]) == {"utilitarian": "B", "borda": "B", "maximin": "B"}


def test_spearman_hand_and_edges() -> None:
    assert spearman({"A": 1, "B": 2, "C": 3}, {"A": 10, "B": 20, "C": 30}) == pytest.approx(1.0)
    assert spearman({"A": 1, "B": 2, "C": 3}, {"A": 3, "B": 2, "C": 1}) == pytest.approx(-1.0)
    # ties: stated ranks 1.5, 1.5, 3; assigned 1, 2, 3 -> centred (-.5,-.5,1)·(-1,0,1) = 1.5,
    # norms sqrt(1.5)*sqrt(2) -> 1.5/sqrt(3) = 0.866025
    assert spearman({"A": 0, "B": 0, "C": 5}, {"A": 1, "B": 2, "C": 3}) == pytest.approx(math.sqrt(3) / 2)
    assert spearman({"A": 1, "B": 1}, {"A": 1, "B": 2}) is None  # constant side
    assert spearman({"A": 1}, {"A": 1}) is None
    assert spearman({"A": 1, "B": 2, "X": 9}, {"A": 5, "B": 7, "Y": 0}) == pytest.approx(1.0)  # common options only


# ---------------------------------------------------------------- oracles and properties

OPTION_NAMES = ["A", "B", "C", "D", "E"]
QUARTERS = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])  # exact in binary: means tie exactly when they should


@st.composite
def assemblies(draw):
    """(normalised utilities by member, role_of, options) with values on a quarter grid."""
    k = draw(st.integers(1, 5))
    options = list(draw(st.permutations(OPTION_NAMES[:k])))
    n = draw(st.integers(1, 9))
    roles = draw(st.lists(st.sampled_from(["R", "F", "S"]), min_size=n, max_size=n))
    nu = {f"m{i}": {o: draw(QUARTERS) for o in options} for i in range(n)}
    return nu, {f"m{i}": roles[i] for i in range(n)}, options


@FAST
@given(assemblies())
def test_baselines_match_numpy_and_pref_voting(case) -> None:
    nu, role_of, options = case
    members = list(nu)
    u = np.array([[nu[m][o] for o in options] for m in members])
    got = baselines(nu, role_of, options=options)
    # numpy argmax returns the first maximum, i.e. ties go to the earliest option
    assert got["utilitarian"] == options[int(np.argmax(u.mean(axis=0)))]
    roles = sorted(set(role_of.values()))
    role_means = np.array([u[[role_of[m] == r for m in members]].mean(axis=0) for r in roles])
    assert got["maximin"] == options[int(np.argmax(role_means.min(axis=0)))]
    # Borda via pref_voting on the rankings: descending utility, ties by option order (np.lexsort is stable)
    idx_rankings = [list(np.lexsort((np.arange(len(options)), -row))) for row in u]
    if len(options) >= 2:
        theirs = pref_profiles.Profile(idx_rankings).borda_scores()
        best = max(theirs.values())
        assert got["borda"] == options[min(i for i, v in theirs.items() if v == best)]
    else:
        assert got["borda"] == options[0]
    assert [rank_options(nu[m], options) for m in members] == [[options[i] for i in r] for r in idx_rankings]


@FAST
@given(assemblies())
def test_welfare_properties(case) -> None:
    nu, role_of, options = case
    rankings = [rank_options(u, options) for u in nu.values()]
    core = proportional_veto_core(rankings, options)
    cw = condorcet_winner(rankings, options)
    for o in options:
        w = welfare(o, nu, role_of, options=options)
        vals = [nu[m][o] for m in nu]
        eps = 2e-6  # rounding to 6 decimals
        assert w["egalitarian"] == pytest.approx(min(vals), abs=1e-6)
        assert w["egalitarian"] <= w["nash"] + eps <= w["utilitarian"] + 2 * eps  # min <= GM <= AM
        assert w["egalitarian"] <= w["worst_role"] + eps <= w["utilitarian"] + 2 * eps
        if 0.0 in vals:
            assert w["nash"] == 0.0
        else:
            assert w["nash"] == pytest.approx(float(np.exp(np.mean(np.log(vals)))), abs=1e-6)
        for role, regret in w["regret_by_role"].items():
            ms = [m for m in nu if role_of[m] == role]
            assert regret == pytest.approx(np.mean([max(nu[m].values()) - nu[m][o] for m in ms]), abs=1e-6)
        assert w["condorcet_winner"] == (cw == o)
        assert w["in_veto_core"] == (o in core)
        json.dumps(w)


@FAST
@given(st.dictionaries(st.sampled_from(OPTION_NAMES), st.floats(-5, 5, allow_nan=False), min_size=1))
def test_normalize_properties(u) -> None:
    nu = normalize(u)
    assert list(nu) == list(u)
    assert all(0.0 <= v <= 1.0 for v in nu.values())
    if len(set(u.values())) == 1:
        assert set(nu.values()) == {1.0}
    else:
        assert max(nu.values()) == 1.0 and min(nu.values()) == 0.0
        for a in u:
            for b in u:
                if u[a] < u[b]:
                    assert nu[a] <= nu[b]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 4), min_size=1, max_size=6),
    st.lists(st.integers(0, 4), min_size=1, max_size=6),
)
def test_spearman_matches_scipy(xs, ys) -> None:
    k = min(len(xs), len(ys))
    stated = {OPTION_NAMES[i] if i < 5 else "F": float(xs[i]) for i in range(k)}
    assigned = {o: float(ys[i]) for i, o in enumerate(stated)}
    ours = spearman(stated, assigned)
    if k < 2 or len(set(stated.values())) == 1 or len(set(assigned.values())) == 1:
        assert ours is None
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = spearmanr(list(stated.values()), list(assigned.values())).statistic
    assert ours == pytest.approx(float(ref), abs=1e-9)


@FAST
@given(
    st.dictionaries(st.sampled_from(["econ", "env", "x"]), st.floats(-3, 3, allow_nan=False)),
    st.lists(st.sampled_from(["f1", "f2"]), unique=True),
)
def test_utilities_are_linear_in_values_and_facts(values, known) -> None:
    # oracle: the same sum as a dense matrix product
    dims = ["econ", "env", "community", "x"]
    options = list(ATTRIBUTES)
    attr = np.array([[ATTRIBUTES[o].get(d, 0.0) for d in dims] for o in options])
    w = np.array([values.get(d, 0.0) for d in dims])
    eff = np.array([[EFFECTS[f].get(o, 0.0) for o in options] for f in known]).reshape(len(known), len(options))
    expected = attr @ w + eff.sum(axis=0)
    got = utilities(values, ATTRIBUTES, EFFECTS, known_facts=known)
    assert [got[o] for o in options] == pytest.approx(list(expected), abs=1e-9)


# Scores with ties (few distinct values) and without (any float in [0, 1]).
score_rows = st.integers(0, 6).flatmap(
    lambda k: st.lists(
        st.tuples(
            st.lists(st.integers(0, 3).map(float) | st.floats(0, 1), min_size=k, max_size=k),
            st.lists(st.integers(0, 3).map(float) | st.floats(0, 1), min_size=k, max_size=k),
        ),
        min_size=1,
        max_size=8,
    )
)


@settings(max_examples=200, deadline=None)
@given(score_rows)
def test_spearman_rows_is_spearman_bit_for_bit(rows) -> None:
    """A round's members correlated at once (as the summary does) give exactly, not
    approximately, what each member's correlation alone gives, ties and all."""
    k = len(rows[0][0])
    names = [f"o{i}" for i in range(k)]
    stated = np.array([xs for xs, _ in rows], dtype=float).reshape(len(rows), k)
    assigned = np.array([ys for _, ys in rows], dtype=float).reshape(len(rows), k)
    expected = [spearman(dict(zip(names, xs, strict=True)), dict(zip(names, ys, strict=True))) for xs, ys in rows]
    assert spearman_rows(stated, assigned) == expected


def test_spearman_rows_refuses_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        spearman_rows(np.array([[0.1, math.nan]]), np.array([[0.2, 0.3]]))
