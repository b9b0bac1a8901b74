"""The rules that protect minorities: borda, veto_by_consumption, maximin_score.

Oracles: pref_voting's Borda scores (Holliday & Pacuit); the proportional veto core by
brute force over voter coalitions (`social_choice.in_proportional_veto_core`, itself
checked against a literal reading of Moulin's definition in test_social_choice.py);
hand-worked examples for maximin_score. Then the rules in a real run: sim ballots
carry what each rule reads, LLM output models ask for it, and bad configurations are
refused before anything runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from assembly.core.events import Tally, Turn
from assembly.core.social_choice import in_proportional_veto_core
from assembly.inspection.replay import check
from assembly.protocols.facilitated.actions import Ballot
from assembly.protocols.facilitated.prompts import ballot_model
from assembly.protocols.facilitated.rules import (
    BALLOT_FIELD,
    BordaRule,
    DecisionRuleSpec,
    MaximinScoreRule,
    VetoByConsumptionRule,
    decide,
)
from tests.conftest import SCENARIOS, run_cli
from tests.helpers import run, scenario

pref_profiles = pytest.importorskip("pref_voting.profiles")

SPEC = TypeAdapter(DecisionRuleSpec)
FAST = settings(max_examples=80, deadline=None)
CANDIDATES = ["A", "B", "C", "D"]


def ranked(*orders: str) -> list[Ballot]:
    return [Ballot(ranking=list(o)) for o in orders]


# --------------------------------------------------------------------------- borda


@st.composite
def complete_profiles(draw: Any) -> tuple[list[list[str]], list[str]]:
    cands = draw(st.permutations(CANDIDATES[: draw(st.integers(2, 4))]))
    rankings = draw(st.lists(st.permutations(cands), min_size=1, max_size=9))
    return [list(r) for r in rankings], list(cands)


@FAST
@given(complete_profiles())
def test_borda_decides_the_unique_pref_voting_borda_winner(profile: tuple[list[list[str]], list[str]]) -> None:
    rankings, cands = profile
    idx = {c: i for i, c in enumerate(cands)}
    theirs = pref_profiles.Profile([[idx[c] for c in r] for r in rankings]).borda_scores()
    top = max(theirs.values())
    winners = [cands[i] for i, v in theirs.items() if v == top]
    r = decide(BordaRule(), [Ballot(ranking=x) for x in rankings], cands, seated=len(rankings))
    # A unique pref_voting winner is ours; a tie decides nothing.
    assert r.winner == (winners[0] if len(winners) == 1 else None)
    # Support is the share of the most points the ballots could give.
    most = (len(cands) - 1) * len(rankings)
    assert r.support == pytest.approx({cands[i]: v / most for i, v in theirs.items()})


def test_borda_hand_example_with_a_partial_and_a_spoiled_ballot() -> None:
    # Three candidates: a ranked first gets 2 points, second 1, last 0; the candidates a
    # partial ranking leaves out share its bottom points.
    #   A>B>C: A 2, B 1, C 0
    #   B>A>C: B 2, A 1, C 0
    #   C:     C 2, A and B share 1 + 0 -> 1/2 each
    #   Z (no candidate named): all three share 2 + 1 + 0 -> 1 each
    # Totals: A 4.5, B 4.5, C 3: a tie. One more B>C>A ballot: A 4.5, B 6.5, C 4 -> B.
    ballots = [*ranked("ABC", "BAC"), Ballot(ranking=["C"]), Ballot(ranking=["Z"])]
    tie = decide(BordaRule(), ballots, ["A", "B", "C"], seated=5)
    assert not tie.decided and tie.detail == "No unique Borda winner: A and B tie on 4.5 points."
    r = decide(BordaRule(), [*ballots, *ranked("BCA")], ["A", "B", "C"], seated=5)
    assert r.winner == "B" and r.counted == 5
    assert r.support == pytest.approx({"A": 4.5 / 10, "B": 6.5 / 10, "C": 4 / 10})
    # Over the seated base the same points are shares of 2 * 8 = 16 possible.
    seated = decide(BordaRule(base="seated"), [*ballots, *ranked("BCA")], ["A", "B", "C"], seated=8)
    assert seated.winner == "B" and seated.support["B"] == pytest.approx(6.5 / 16)


def test_borda_picks_the_compromise_plurality_leaves_out() -> None:
    # 3 ballots A>B>C, 2 C>B>A, 2 B>C>A. First places: A 3, C 2, B 2 (A leads, short of a majority).
    # Borda: A 3*2 = 6; B 3*1 + 2*1 + 2*2 = 9; C 2*2 + 2*1 = 6 -> the compromise B.
    ballots = ranked(*["ABC"] * 3, *["CBA"] * 2, *["BCA"] * 2)
    assert decide(BordaRule(), ballots, ["A", "B", "C"], seated=7).winner == "B"


# --------------------------------------------------------------------------- veto by consumption

NAMES = st.sampled_from([*CANDIDATES, "Z"])  # "Z" is never a candidate


@st.composite
def veto_votes(draw: Any) -> tuple[list[Ballot], list[str]]:
    """Mostly complete rankings of the candidates, plus abstentions, partial rankings,
    repeats and unknown ids, as untrusted member output can hold."""
    cands = draw(st.permutations(CANDIDATES[: draw(st.integers(1, 4))]))
    ballots = []
    for _ in range(draw(st.integers(0, 10))):
        kind = draw(st.sampled_from(["complete", "complete", "complete", "partial", "junk", "abstain"]))
        if kind == "complete":
            order = list(draw(st.permutations(cands)))
            if draw(st.booleans()):  # a repeat and an unknown id, both ignored
                order = [order[0], *order, "Z"]
            ballots.append(Ballot(ranking=order))
        elif kind == "partial":
            ballots.append(Ballot(ranking=list(draw(st.permutations(cands)))[: max(0, len(cands) - 1)]))
        elif kind == "junk":
            ballots.append(Ballot(ranking=draw(st.lists(NAMES, max_size=5))))
        else:
            ballots.append(Ballot(abstain=True))
    return ballots, list(cands)


def _counted_rankings(ballots: list[Ballot], cands: list[str]) -> list[list[str]]:
    """The complete rankings among the cast ballots, read independently of the rule."""
    out = []
    for b in ballots:
        if b.abstain:
            continue
        seen: list[str] = []
        for o in b.ranking:
            if o in cands and o not in seen:
                seen.append(o)
        if sorted(seen) == sorted(cands):
            out.append(seen)
    return out


@FAST
@given(veto_votes(), st.integers(0, 3))
def test_veto_decision_is_always_in_the_core_of_the_ballots_it_counted(
    votes: tuple[list[Ballot], list[str]], extra: int
) -> None:
    ballots, cands = votes
    r = decide(VetoByConsumptionRule(), ballots, cands, seated=len(ballots) + extra)
    profile = _counted_rankings(ballots, cands)
    assert r.counted == sum(not b.abstain for b in ballots)
    if r.decided:
        assert r.winner in cands
        assert in_proportional_veto_core(r.winner, profile, cands)
    else:
        # Only an empty count or a tie at the last instant leaves it undecided.
        assert not profile or "eaten last together" in r.detail
    if profile and len(cands) > 1:
        # A unique core member is the only possible winner.
        core = [c for c in cands if in_proportional_veto_core(c, profile, cands)]
        if len(core) == 1:
            assert r.winner == core[0]


def test_veto_hand_example_protects_the_minority_majority_rule_outvotes() -> None:
    # 51/49 split over housing (H), park (P) and mixed (M), as in scenarios/split_51_49.yaml:
    # 51 rank H>M>P, 49 rank P>M>H. Each cake is 100/3. The 51 eat P, the 49 eat H.
    # P is gone at (100/3)/51 = 0.654; H has 100/3 - 49 * 0.654 = 1.31 left, eaten by the 49
    # while the 51 move to M; H is gone next, and M, eaten last, wins.
    ballots = ranked(*["HMP"] * 51, *["PMH"] * 49)
    r = decide(VetoByConsumptionRule(), ballots, ["H", "P", "M"], seated=100)
    assert r.winner == "M"
    # Support: ballots not ranking it last. H is last on 49, P on 51, M on none.
    assert r.support == {"H": 0.51, "P": 0.49, "M": 1.0}
    assert decide(SPEC.validate_python({"kind": "majority"}), ballots, ["H", "P", "M"], 100).winner is None


def test_veto_spoils_incomplete_rankings_and_a_tie_decides_nothing() -> None:
    # Two candidates split 1-1 are both eaten up at t = 1: a tie.
    tie = decide(VetoByConsumptionRule(), [*ranked("AB", "BA"), Ballot(ranking=["A"])], ["A", "B"], seated=3)
    assert not tie.decided and tie.counted == 3
    assert tie.detail == (
        "No unique veto-by-consumption winner: A and B are eaten last together. "
        "1 cast ballots did not rank every candidate and were not counted."
    )
    none = decide(VetoByConsumptionRule(), [Ballot(ranking=["A"])], ["A", "B"], seated=1)
    assert not none.decided and none.detail.startswith("Not decided: no ballot ranked every candidate.")


# --------------------------------------------------------------------------- maximin_score


def scored(**scores: float) -> Ballot:
    return Ballot(scores=scores)


def test_maximin_score_hand_example() -> None:
    # Roles R (four ballots) and F (two), candidates A, B, C; scores per ballot (A, B, C):
    #   R: (.9 .6 .1) (.8 .5 0) (1 .7 .2) (1 .6 0) -> means A .925, B .6, C .075
    #   F: (0 .4 1) (.2 .6 .8)                     -> means A .1,   B .5, C .9
    # Worst role per candidate: A .1, B .5, C .075 -> B, with F its worst-off role.
    # The mean over all six ballots prefers A (.65 against B .567): the rule is not that mean.
    ballots = [
        scored(A=0.9, B=0.6, C=0.1),
        scored(A=0.8, B=0.5, C=0.0),
        scored(A=1.0, B=0.7, C=0.2),
        scored(A=1.0, B=0.6, C=0.0),
        scored(A=0.0, B=0.4, C=1.0),
        scored(A=0.2, B=0.6, C=0.8),
    ]
    r = decide(MaximinScoreRule(), ballots, ["A", "B", "C"], seated=6, roles=["R", "R", "R", "R", "F", "F"])
    assert r.winner == "B"
    assert r.support == pytest.approx({"A": 0.1, "B": 0.5, "C": 0.075})
    assert r.detail == "B has the highest worst-role mean support (0.500, from F) over 2 roles."


def test_maximin_score_missing_scores_count_as_no_support_and_abstainers_as_nothing() -> None:
    # An abstaining F member is left out of F's mean; a ballot without a score for C gives C zero.
    ballots = [scored(A=0.4, B=0.8), scored(A=0.6, B=0.2, C=1.0), Ballot(abstain=True, scores={"C": 1.0})]
    r = decide(MaximinScoreRule(), ballots, ["A", "B", "C"], seated=3, roles=["R", "F", "F"])
    # R: A .4, B .8, C 0;  F: A .6, B .2, C 1  -> worst: A .4, B .2, C 0.
    assert r.winner == "A" and r.counted == 2
    assert r.support == pytest.approx({"A": 0.4, "B": 0.2, "C": 0.0})
    tie = decide(MaximinScoreRule(), [scored(A=0.5, B=0.5)], ["A", "B"], seated=1, roles=["R"])
    assert not tie.decided and "A and B tie" in tie.detail


def test_maximin_score_needs_roles_and_a_cast_base() -> None:
    with pytest.raises(ValueError, match="role of every ballot"):
        decide(MaximinScoreRule(), [scored(A=1.0)], ["A"], seated=1)
    with pytest.raises(ValidationError):
        SPEC.validate_python({"kind": "maximin_score", "base": "seated"})


# --------------------------------------------------------------------------- what members produce


@pytest.mark.parametrize("kind", ["borda", "veto_by_consumption", "maximin_score"])
def test_a_run_under_each_rule_votes_with_the_field_the_rule_reads(tmp_path: Path, kind: str) -> None:
    sc = scenario("split_51_49", **{"members": 20, "protocol.decision_rule": {"kind": kind}})
    summary, events = run(sc, tmp_path / kind)
    field = BALLOT_FIELD[kind]
    ballots = [e.action for e in events if isinstance(e, Turn) and e.phase == "vote" and e.status == "ok"]
    assert ballots and all(b["abstain"] or b[field] for b in ballots)
    tallies = [e for e in events if isinstance(e, Tally)]
    assert tallies and {t.rule for t in tallies} == {kind}
    # Only maximin_score's ballots carry scores; the others keep the shape every rule records.
    assert all(("scores" in b) == (kind == "maximin_score") for b in ballots)
    assert summary["welfare"]["outcomes"]["assembly"]["option"] == summary["decision"]
    assert check(tmp_path / kind).ok  # replay --check holds under the rule


@pytest.mark.parametrize("kind", ["borda", "veto_by_consumption", "maximin_score"])
def test_llm_ballot_models_ask_for_the_field_the_rule_reads(kind: str) -> None:
    model = ballot_model(kind, ("A", "B", "C"))
    assert set(model.model_json_schema()["properties"]) == {BALLOT_FIELD[kind], "abstain"}


def test_veto_ballot_model_wants_every_candidate_once() -> None:
    """A rank per candidate (1 = first): every candidate is ranked, none twice, no ties."""
    model = ballot_model("veto_by_consumption", ("A", "B", "C"))
    ok = model.model_validate({"ranking": {"C": 1, "A": 2, "B": 3}, "abstain": False})
    assert Ballot.model_validate(ok.model_dump(mode="json")).ranking == ["C", "A", "B"]
    for bad in ({"A": 1, "B": 2}, {"A": 1, "B": 1, "C": 2}, ["C", "A", "B"]):
        with pytest.raises(ValidationError):
            model.model_validate({"ranking": bad, "abstain": False})


def test_maximin_ballot_model_scores_every_candidate() -> None:
    """Whole percentages, which constrained decoding bounds; the ballot holds shares in [0, 1]."""
    model = ballot_model("maximin_score", ("A", "b-2"))
    ok = model.model_validate({"scores": {"A": 20, "b-2": 100}, "abstain": False})
    assert Ballot.model_validate(ok.model_dump(mode="json")).scores == {"A": 0.2, "b-2": 1.0}
    for bad in ({"A": 20}, {"A": 20, "b-2": 150}, {"A": 0.2, "b-2": 1.0}):
        with pytest.raises(ValidationError):
            model.model_validate({"scores": bad, "abstain": False})


# --------------------------------------------------------------------------- refused before the run

NO_VALUES = """
name: indifferent
question: A or B?
options:
  - {id: A, text: a, attributes: {cost: 1.0}}
  - {id: B, text: b}
population:
  size: 4
  roles: [{name: r, share: 1.0, values: {taste: 1.0}}]
protocol: {kind: assembly, decision_rule: {kind: veto_by_consumption}}
"""


def test_a_minority_rule_without_value_dimensions_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "indifferent.yaml"
    f.write_text(NO_VALUES)
    res = run_cli("run", str(f), "--out", str(tmp_path / "run"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "at protocol.decision_rule.kind:" in res.stderr and "no value dimensions" in res.stderr
    assert not (tmp_path / "run").exists()
    # The same scenario under majority runs (and has no welfare section: nobody prefers anything).
    f.write_text(NO_VALUES.replace("veto_by_consumption", "majority"))
    res = run_cli("run", str(f), "--out", str(tmp_path / "run2"), "--quiet")
    assert res.returncode == 0, res.stderr
    assert "welfare" not in json.loads((tmp_path / "run2" / "summary.json").read_text())


def test_maximin_score_over_seated_members_is_refused() -> None:
    res = run_cli(
        "validate",
        str(SCENARIOS / "split_51_49.yaml"),
        "--set",
        "protocol.decision_rule={kind: maximin_score, base: seated}",
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "protocol.decision_rule.base" in res.stderr


@pytest.mark.parametrize("kind", ["veto_by_consumption", "maximin_score"])
def test_llm_members_cast_the_ballots_the_rule_reads(tmp_path: Path, kind: str) -> None:
    """LLM members behind a real loopback server: their ballots are validated against the
    rule's output model, so every counted one has the field the rule reads, whole."""
    from assembly.llm.member import factory_for
    from assembly.llm.profiles import ModelProfile
    from assembly.llm.setup import LLMSetup
    from tests.fake_openai import FakeOpenAIServer

    with FakeOpenAIServer(seed=5) as srv:
        profile = ModelProfile(
            name=f"rules-{kind}", model="openai/fake-model", client="openai", api_base=srv.base_url, timeout_s=30.0
        )
        sc = scenario(
            "split_51_49",
            **{
                "members": 6,
                "rounds": 2,
                "members.policy": "llm",
                "members.profile": profile.name,
                "protocol.decision_rule": {"kind": kind},
            },
        )
        summary, events = run(sc, tmp_path / "run", factory=factory_for(LLMSetup(profiles={profile.name: profile})))
    tally = next(e for e in events if isinstance(e, Tally))
    ballots = [e.action for e in events if isinstance(e, Turn) and e.phase == "vote" and e.status == "ok"]
    cast = [b for b in ballots if not b["abstain"]]
    assert cast and tally.rule == kind and tally.counted == len(cast)
    assert summary["welfare"]["outcomes"]["assembly"]["option"] == summary["decision"]
    for b in cast:
        if kind == "maximin_score":
            assert set(b["scores"]) == set(tally.candidates)
        else:
            assert sorted(b["ranking"]) == sorted(tally.candidates)
    assert check(tmp_path / "run").ok
