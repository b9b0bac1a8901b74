"""summary.json's welfare section, against a tiny scenario worked out by hand.

Scenario `tiny_welfare` (below): options A, B, C rated on econ and env; role R (two
members) weighs econ, role F (one member) weighs env, with no seating noise; one
private fact f1 (A: -0.75) is dealt to the F member, who never discloses it.

Full information (f1 known), u = values . attributes + effects:
    R: A = 1 - .75 = .25, B = .5, C = 0      -> normalised (0 .. .5): A .5, B 1, C 0
    F: A = -.75,          B = .5, C = 1      -> normalised (-.75 .. 1): A 0, B 5/7, C 1
R's informed view (f1 unknown): A 1, B .5, C 0 -> normalised A 1, B .5, C 0; F's is its full one.

Per option (regret = 1 - u, every member's best being worth 1):
    A: mean (.5 + .5 + 0)/3 = 1/3; Nash 0; min 0; roles R .5, F 0 -> worst 0; regret R .5, F 1
    B: mean (1 + 1 + 5/7)/3 = 19/21 = .904762; Nash (5/7)^(1/3) = .893904; min 5/7 = .714286;
       roles R 1, F 5/7 -> worst .714286; regret R 0, F 2/7 = .285714
    C: mean 1/3; Nash 0; min 0; roles R 0, F 1 -> worst 0; regret R 1, F 0
Rankings: R (x2) B > A > C, F C > B > A. B beats A 3-0 and C 2-1: the Condorcet winner.
Veto core (n = m = 3): A is blocked by everyone with B = {B} (1 + 1/3 > 1), C by the two R
members with B = {A, B} (2/3 + 2/3 > 1); only F ranks anything (C) above B, and 1/3 + 1/3 <= 1.
Core {B}.
Baselines: utilitarian B (.904762); Borda A 1+1+0 = 2, B 2+2+1 = 5, C 0+0+2 = 2 -> B;
maximin over roles (worst-role means A 0, B .714286, C 0) -> B.
Round 1: sim members state the logistic of their informed valuations (susceptibility 0 and no
noise, so they never move): R members favour A, F favours C -> plurality_round1 = A. The round-2
vote under majority gives A 2 of 3: the assembly decides A.
Information: one fact with an effect, known by 1 of 3 members (1/3); R's informed best (A)
is not its full-information best (B), F's is: informed_best_share 1/3.
Fidelity (Spearman of stated scores against full-information utilities): R stated A > B > C
against B > A > C: 1 - 6 * (1 + 1) / (3 * 8) = .5; F 1. Per round (.5 + .5 + 1)/3 = 2/3,
in both rounds; drift 0 for both roles.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assembly.core.events import Disclosure, RunStarted, Seated, SeatedMember
from assembly.core.run_welfare import StatedPreferences, fidelity_by_round, informed_facts, run_welfare
from assembly.core.welfare import spearman
from assembly.inspection.replay import check
from assembly.scenario.loading import build_scenario
from tests.helpers import run, scenario

TINY: dict[str, Any] = {
    "name": "tiny_welfare",
    "question": "A, B or C?",
    "options": [
        {"id": "A", "text": "a", "attributes": {"econ": 1.0}},
        {"id": "B", "text": "b", "attributes": {"econ": 0.5, "env": 0.5}},
        {"id": "C", "text": "c", "attributes": {"env": 1.0}},
    ],
    "population": {
        "size": 3,
        "roles": [
            {"name": "R", "share": 2 / 3, "values": {"econ": 1.0}, "value_noise": 0.0},
            {"name": "F", "share": 1 / 3, "values": {"env": 1.0}, "value_noise": 0.0},
        ],
    },
    "facts": [{"id": "f1", "text": "A has a hidden cost.", "effects": {"A": -0.75}, "holders": {"roles": ["F"]}}],
    "protocol": {"kind": "assembly", "max_rounds": 3, "first_vote_round": 2, "quorum": 0.5},
    "members": {
        "sim": {"susceptibility": 0.0, "speech_noise": 0.0, "disclosure_rate": 0.0, "latency": {"median_s": 0.0}}
    },
}

FIGURES = {
    "A": {
        "utilitarian": 0.333333,
        "nash": 0.0,
        "egalitarian": 0.0,
        "worst_role": 0.0,
        "utility_by_role": {"F": 0.0, "R": 0.5},
        "regret_by_role": {"F": 1.0, "R": 0.5},
        "condorcet_winner": False,
        "in_veto_core": False,
    },
    "B": {
        "utilitarian": 0.904762,
        "nash": 0.893904,
        "egalitarian": 0.714286,
        "worst_role": 0.714286,
        "utility_by_role": {"F": 0.714286, "R": 1.0},
        "regret_by_role": {"F": 0.285714, "R": 0.0},
        "condorcet_winner": True,
        "in_veto_core": True,
    },
}


def test_summary_welfare_matches_the_hand_computed_example(tmp_path: Path) -> None:
    summary, _ = run(build_scenario(TINY, {}), tmp_path / "tiny")
    assert summary["decision"] == "A"
    w = summary["welfare"]
    assert w["options"] == ["A", "B", "C"] and w["roles"] == {"F": 1, "R": 2}
    assert w["outcomes"] == {
        "assembly": {"option": "A", **FIGURES["A"]},
        "utilitarian": {"option": "B", **FIGURES["B"]},
        "borda": {"option": "B", **FIGURES["B"]},
        "maximin": {"option": "B", **FIGURES["B"]},
        "plurality_round1": {"option": "A", **FIGURES["A"]},
    }
    assert w["information"] == {"facts": 1, "mean_known_share": 0.333333, "informed_best_share": 0.333333}
    by_role = {m["role"]: m for m in w["members"].values()}
    assert by_role["R"]["full"] == {"A": 0.5, "B": 1.0, "C": 0.0}
    assert by_role["R"]["informed"] == {"A": 1.0, "B": 0.5, "C": 0.0}
    assert by_role["F"]["full"] == by_role["F"]["informed"] == {"A": 0.0, "B": 0.714286, "C": 1.0}
    assert (by_role["R"]["facts_known"], by_role["F"]["facts_known"]) == (0, 1)
    assert [r["fidelity"] for r in summary["per_round"]] == [0.666667, 0.666667]
    assert w["fidelity"] == {
        "F": {"by_round": [{"round": 1, "mean": 1.0, "n": 1}, {"round": 2, "mean": 1.0, "n": 1}], "drift": 0.0},
        "R": {"by_round": [{"round": 1, "mean": 0.5, "n": 2}, {"round": 2, "mean": 0.5, "n": 2}], "drift": 0.0},
    }
    assert check(tmp_path / "tiny").ok  # replay --check certifies the welfare figures too


def test_no_decision_scores_null_and_keeps_the_baselines(tmp_path: Path) -> None:
    summary, _ = run(build_scenario(TINY, {"rounds": 1}), tmp_path / "none")
    assert summary["outcome"] == "no_decision"
    outcomes = summary["welfare"]["outcomes"]
    assert outcomes["assembly"] == {"option": None, **dict.fromkeys(FIGURES["A"])}
    assert outcomes["utilitarian"] == {"option": "B", **FIGURES["B"]}


def test_a_protocol_without_options_has_no_welfare_section(tmp_path: Path) -> None:
    summary, _ = run(scenario("consensus_game", **{"members": 4, "rounds": 2}), tmp_path / "cg")
    assert "welfare" not in summary
    assert all("fidelity" not in r for r in summary["per_round"])


# ----------------------------------------------------------------------------- pure parts, hand-made transcripts


def _header(members: list[SeatedMember], audiences: list[list[int]], audience_of: list[int]) -> list[Any]:
    sc = {
        "options": [{"id": "A", "attributes": {"x": 1.0}}, {"id": "B", "attributes": {"x": -1.0}}],
        "facts": [{"id": "f", "effects": {"B": 3.0}}, {"id": "g", "effects": {}}],
    }
    started = RunStarted(run_id="t", run_key="k", scenario=sc, seed=0, protocol="assembly", versions={})
    return [started, Seated(members=members, audiences=audiences, audience_of=audience_of)]


def _seat(i: int, role: str, facts: list[str] = []) -> SeatedMember:  # noqa: B006 - never mutated
    return SeatedMember(id=f"m{i}", role=role, policy="sim", values={"x": 1.0}, facts=facts)


def test_informed_facts_follow_audiences() -> None:
    # Two tables, {m0, m1} and {m2, m3}: m0 discloses f, which only its table hears;
    # m3 holds g but never says it.
    members = [_seat(0, "a", ["f"]), _seat(1, "a"), _seat(2, "b"), _seat(3, "b", ["g"])]
    events = [*_header(members, [[0, 1], [2, 3]], [0, 0, 1, 1]), Disclosure(round=1, member="m0", fact="f", audience=2)]
    assert informed_facts(events, events[1]) == {"m0": ["f"], "m1": ["f"], "m2": [], "m3": ["g"]}


def test_fidelity_drift_per_role_and_facts_without_effects() -> None:
    # Everyone values x: u(A) = 1, u(B) = -1 + 3 (f) = 2, so the assigned order is B > A.
    members = [_seat(0, "a"), _seat(1, "a"), _seat(2, "b")]
    events = _header(members, [[0, 1, 2]], [0, 0, 0])
    stated = StatedPreferences(
        decision="B",
        positions={1: {"m0": "A", "m1": "B", "m2": "A"}},
        scores={
            1: {"m0": {"A": 0.9, "B": 0.1}, "m1": {"A": 0.1, "B": 0.9}, "m2": {"A": 0.5, "B": 0.5}},
            2: {"m0": {"A": 0.2, "B": 0.8}, "m1": {"A": 0.1, "B": 0.9}, "m2": {"A": 0.4, "B": 0.6}},
        },
    )
    result = run_welfare(events, stated)
    assert result is not None
    # Round 1: m0 -1, m1 +1, m2 undefined (constant scores) -> role a 0, role b absent; mean 0.
    # Round 2: all +1. Drift of a: 1 - 0 = 1; b states a defined order only once: no drift.
    assert result.fidelity_by_round == {1: 0.0, 2: 1.0}
    assert result.section["fidelity"] == {
        "a": {"by_round": [{"round": 1, "mean": 0.0, "n": 2}, {"round": 2, "mean": 1.0, "n": 2}], "drift": 1.0},
        "b": {"by_round": [{"round": 2, "mean": 1.0, "n": 1}], "drift": None},
    }
    # Only f has an effect; nobody holds or hears it.
    assert result.section["information"]["facts"] == 1
    assert result.section["information"]["mean_known_share"] == 0.0
    # Plurality of round 1: A 2, B 1.
    assert result.section["outcomes"]["plurality_round1"]["option"] == "A"
    json.dumps(result.section)  # JSON-ready


def test_ties_break_by_scenario_option_order() -> None:
    # Two members with opposite preferences: every baseline ties between A and B, and the
    # earlier option, A, wins each; so does a tied round-1 plurality.
    members = [
        SeatedMember(id="m0", role="a", policy="sim", values={"x": 1.0}),
        SeatedMember(id="m1", role="b", policy="sim", values={"x": -1.0}),
    ]
    events = _header(members, [[0, 1]], [0, 0])
    started = events[0].model_copy(update={"scenario": {**events[0].scenario, "facts": []}})
    result = run_welfare([started, events[1]], StatedPreferences(None, positions={1: {"m0": "B", "m1": "A"}}))
    assert result is not None
    chosen = {k: v["option"] for k, v in result.section["outcomes"].items()}
    assert chosen == {"assembly": None, "utilitarian": "A", "borda": "A", "maximin": "A", "plurality_round1": "A"}


@pytest.mark.parametrize("name", ["split_51_49", "hidden_profile"])
def test_shipped_split_and_hidden_profile_baselines(tmp_path: Path, name: str) -> None:
    """The issue's measurements: in split_51_49 every single-utility baseline picks housing and
    leaves the park camp at 0, while maximin picks mixed, the only option of the veto core; in
    hidden_profile the full-information choice is A, which a round-1 plurality misses."""
    summary, _ = run(scenario(name), tmp_path / name)
    outcomes = summary["welfare"]["outcomes"]
    if name == "split_51_49":
        assert {outcomes[k]["option"] for k in ("utilitarian", "borda", "plurality_round1")} == {"housing"}
        assert outcomes["borda"]["worst_role"] == 0.0
        assert outcomes["maximin"]["option"] == "mixed" and outcomes["maximin"]["in_veto_core"]
        assert 0.45 < outcomes["maximin"]["worst_role"] < 0.5
    else:
        assert outcomes["utilitarian"]["option"] == "A"
        assert outcomes["plurality_round1"]["option"] != "A"


OPTS = ["A", "B", "C", "D"]
stated_rounds = st.dictionaries(
    st.integers(1, 3),
    st.dictionaries(
        st.sampled_from(["m0", "m1", "m2", "m3", "stranger"]),  # a stranger has no assigned utilities
        st.lists(st.sampled_from(OPTS), unique=True).flatmap(  # any subset, in any order
            lambda opts: st.fixed_dictionaries({o: st.integers(0, 3).map(float) | st.floats(0, 1) for o in opts})
        ),
    ),
)


@settings(max_examples=150, deadline=None)
@given(stated_rounds, st.lists(st.integers(0, 3).map(float), min_size=3, max_size=3))
def test_fidelity_by_round_is_each_members_spearman(scores, levels) -> None:
    """Members grouped by the options they share and correlated a round at a time give
    each member's own Spearman correlation, in the order members spoke."""
    assigned = {f"m{i}": {o: levels[(i + j) % 3] for j, o in enumerate(OPTS[: 2 + i % 3])} for i in range(4)}
    role_of = {"m0": "a", "m1": "b", "m2": "a", "m3": "b", "stranger": "a"}
    stated = StatedPreferences(decision=None, positions={}, scores=scores)
    expected: dict[int, dict[str, list[float]]] = {}
    for r in sorted(scores):
        by_role: dict[str, list[float]] = {}
        for m, said in scores[r].items():
            rho = spearman(said, assigned[m]) if m in assigned else None
            if rho is not None:
                by_role.setdefault(role_of[m], []).append(rho)
        expected[r] = by_role
    assert fidelity_by_round(stated, assigned, role_of) == expected
