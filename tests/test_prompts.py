"""The facilitated assembly's LLM prompts and output models, rendered from real views.

Views come from offline (sim) runs folded back through a ViewBuilder, exactly as the
engine builds them for LLM members.
"""

from __future__ import annotations

import asyncio
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from assembly.core.events import RoundEnded, Seated, Turn
from assembly.core.member import Request
from assembly.core.transcript import read_transcript
from assembly.core.view import Heard, View, ViewBuilder
from assembly.launch import execute
from assembly.protocols.facilitated.actions import Ballot, Candidate, Speech, Synthesis
from assembly.protocols.facilitated.prompts import QUOTED_PER_ROUND, RoundDigest, ballot_model, speech_model
from assembly.protocols.facilitated.protocol import FacilitatedAssembly
from assembly.scenario.model import Scenario
from tests.helpers import run, scenario, tiny
from tests.scripted import ScriptedMember


def views_by_round(
    sc: Scenario, out: Path, member: str, phase: str = "speak"
) -> tuple[FacilitatedAssembly, dict[int, View]]:
    """Run `sc` offline, then rebuild `member`'s view as it stood at the end of every round."""
    asyncio.run(execute(sc, out))
    protocol = FacilitatedAssembly(sc)
    builder = ViewBuilder(sc, FacilitatedAssembly.actions)
    views: dict[int, View] = {}
    for event in read_transcript(out).events:
        builder.apply(event)
        protocol.apply(event)
        if isinstance(event, RoundEnded):
            views[event.round] = builder.view(member, event.round, phase)
    return protocol, views


def speak(r: int) -> Request:
    return Request(round=r, phase="speak", action=Speech, deadline_s=30.0)


def test_prompt_size_does_not_grow_with_rounds(tmp_path: Path) -> None:
    sc = scenario(
        "citizens_assembly",
        rounds=14,
        **{"protocol.first_vote_round": 20, "protocol.stall": None, "members.sim.faults.timeout_rate": 0.0},
    )
    protocol, views = views_by_round(sc, tmp_path / "run", "member_5")
    size = {r: len(protocol.prompt(v, speak(r)).user) for r, v in views.items()}
    window = sc.protocol.view_window
    early = max(size[r] for r in range(window + 1, window + 4))
    late = max(size[r] for r in range(window + 6, 14))
    # A prompt carrying the whole history would be more than twice as long by now.
    assert late <= 1.3 * early, size


def test_prompt_size_is_bounded_in_group_size(tmp_path: Path) -> None:
    small = scenario("citizens_assembly", members=24, rounds=3, **{"protocol.first_vote_round": 9})
    large = scenario("citizens_assembly", members=96, rounds=3, **{"protocol.first_vote_round": 9})
    p_small, v_small = views_by_round(small, tmp_path / "small", "member_5")
    p_large, v_large = views_by_round(large, tmp_path / "large", "member_5")
    n_small = len(p_small.prompt(v_small[2], speak(2)).user)
    n_large = len(p_large.prompt(v_large[2], speak(2)).user)
    assert n_large < 1.5 * n_small  # four times the speakers, not four times the prompt


def test_each_heard_round_is_one_aggregate_line(tmp_path: Path) -> None:
    """Every heard round in the window is one line whose figures are those of the
    speeches the transcript records for that round (other speakers only): the
    newest with mean support and favoured counts and a few quotes, older ones with
    favoured counts and no quotes."""
    sc = scenario("citizens_assembly", rounds=6, **{"protocol.first_vote_round": 20, "protocol.stall": None})
    out = tmp_path / "run"
    me = "member_5"
    protocol, views = views_by_round(sc, out, me)
    option_ids = [o.id for o in sc.options]
    speeches: dict[int, list[dict[str, Any]]] = {}
    for e in read_transcript(out).events:
        if isinstance(e, Turn) and e.phase == "speak" and e.status == "ok" and e.member != me and e.action:
            speeches.setdefault(e.round, []).append(e.action)
    user = protocol.prompt(views[5], speak(6)).user
    heard = user.split("WHAT YOU HEARD")[1].split("\n\nFACTS OTHERS")[0].splitlines()[1:]
    rounds = [line for line in heard if line.startswith("Round ")]
    quotes = [line for line in heard if line.startswith("  - ")]
    assert [int(line.split(",")[0].split()[1]) for line in rounds] == [5, 4, 3, 2]
    assert heard[0] == rounds[0] and 1 <= len(quotes) <= QUOTED_PER_ROUND
    assert heard[1 : 1 + len(quotes)] == quotes  # quotes follow the newest round only
    for line in rounds:
        r = int(line.split(",")[0].split()[1])
        said = speeches[r]
        assert f"{len(said)} speakers" in line
        for o in option_ids:
            favour = sum(a["position"] == o for a in said)
            if r == 5:
                mean = sum(a["scores"][o] for a in said) / len(said)
                assert f"{o} {mean:.2f} ({favour})" in line, (o, line)
            elif favour:
                assert f"{o} {favour}" in line, (o, line)


def test_member_prompt_holds_own_facts_and_only_disclosed_others(tmp_path: Path) -> None:
    sc = scenario("hidden_profile", rounds=3, **{"protocol.first_vote_round": 9})
    out = tmp_path / "run"
    protocol, views = views_by_round(sc, out, "member_0")
    seated = next(e for e in read_transcript(out).events if isinstance(e, Seated))
    mine = set(seated.members[0].facts)
    view = views[2]
    prompt = protocol.prompt(view, speak(2))
    heard = {f.id for f in view.heard_facts}
    for fact in sc.facts:
        if fact.id in mine:
            assert fact.text in prompt.system
        elif fact.id in heard:
            assert fact.text in prompt.user and fact.text not in prompt.system
        else:
            # Sim members quote facts they disclose in their messages; a fact nobody in
            # earshot disclosed cannot appear anywhere.
            assert fact.text not in prompt.system + prompt.user, fact.id
    assert "You are member_0" in prompt.system and "ROUND 2: SPEAK" in prompt.user


def test_vote_prompt_states_candidates_and_rule(tmp_path: Path) -> None:
    sc = scenario("citizens_assembly", rounds=3)
    protocol, views = views_by_round(sc, tmp_path / "run", "member_2", phase="vote")
    view = views[3]
    request = Request(round=3, phase="vote", action=Ballot, deadline_s=30.0, params={"rule": "supermajority"})
    user = protocol.prompt(view, request).user
    candidates = view.plenary["candidates"]  # the facilitator's synthesis, heard in plenary
    assert candidates
    for c in candidates:
        assert f"- {c['option']}:" in user
    assert "supermajority" in user and "67%" in user and "60%" in user  # "2/3", quorum 0.6
    schema = protocol.output_model(view, request).model_json_schema()
    offered = schema["properties"]["choice"]
    assert set(offered.get("enum", [offered.get("const")])) == {c["option"] for c in candidates}


def test_synthesis_prompt_and_model(tmp_path: Path) -> None:
    sc = scenario("citizens_assembly", rounds=2)
    protocol, views = views_by_round(sc, tmp_path / "run", "facilitator", phase="synthesize")
    request = Request(round=2, phase="synthesize", action=Synthesis, deadline_s=30.0, params={"candidates": 2})
    prompt = protocol.prompt(views[2], request)
    assert "facilitator" in prompt.system and "up to 2 candidate" in prompt.system
    model = protocol.output_model(views[2], request)
    ok = {"candidates": [{"option": "bike_network", "statement": "Build the lanes."}], "summary": "So far..."}
    assert (
        Synthesis.model_validate(model.model_validate(ok).model_dump(mode="json")).candidates[0].option
        == "bike_network"
    )
    for bad in (
        {**ok, "candidates": []},
        {**ok, "candidates": [{"option": "monorail", "statement": "x"}]},
        {**ok, "candidates": [ok["candidates"][0]] * 3},
    ):
        with pytest.raises(ValidationError):
            model.model_validate(bad)


OPTIONS = ("A", "b-2", "schema")


def _speech(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"message": "hi", "position": "A", "scores": {o: 50 for o in OPTIONS}, "disclose": ["f1"]}
    return {**base, **changes}


def test_speech_model_admits_only_this_members_options_and_facts() -> None:
    model = speech_model(OPTIONS, ("f1", "f2"))
    answer = model.model_validate_json(json.dumps(_speech(scores={"A": 70, "b-2": 5, "schema": 100})))
    # The narrowed answer becomes the plain action type, option ids intact, and the
    # percentages become the action's shares in [0, 1].
    assert Speech.model_validate(answer.model_dump(mode="json")).scores == {"A": 0.7, "b-2": 0.05, "schema": 1.0}
    for bad in (
        _speech(position="C"),
        _speech(disclose=["f3"]),
        _speech(disclose=["f1", "f2", "f1"]),
        _speech(scores={"A": 50, "b-2": 50}),
        _speech(scores={**{o: 50 for o in OPTIONS}, "A": 101}),
        _speech(scores={**{o: 50 for o in OPTIONS}, "A": 0.5}),
        _speech(message="x" * 601),
        {**_speech(), "kind": "speech", "x": 1},
    ):
        with pytest.raises(ValidationError):
            model.model_validate_json(json.dumps(bad))
    with pytest.raises(ValidationError):  # a member holding no facts can disclose none
        speech_model(OPTIONS, ()).model_validate_json(json.dumps(_speech()))


def test_speech_schema_asks_only_for_what_constrained_decoding_enforces() -> None:
    """Integer bounds, enums and string lengths: no float bounds, nothing unbounded."""
    schema = speech_model(OPTIONS, ("f1",)).model_json_schema()
    scores = schema["$defs"]["Scores"]
    assert {p["type"] for p in scores["properties"].values()} == {"integer"}
    assert all(p["minimum"] == 0 and p["maximum"] == 100 for p in scores["properties"].values())
    assert schema["properties"]["message"]["maxLength"] == 600
    assert schema["properties"]["disclose"]["maxItems"] == 1
    assert "number" not in json.dumps(schema)


@pytest.mark.parametrize(
    ("rule", "field", "answer", "ballot", "bad"),
    [
        ("majority", "choice", "A", "A", "C"),
        ("approval", "approve", {"A": True, "schema": False}, ["A"], {"A": True}),
        ("schulze", "ranking", {"A": 2, "schema": 1}, ["schema", "A"], {"A": 1, "schema": 1}),
    ],
)
def test_ballot_model_follows_the_rule(rule: str, field: str, answer: Any, ballot: Any, bad: Any) -> None:
    model = ballot_model(rule, ("A", "schema"))
    assert set(model.model_json_schema()["properties"]) == {field, "abstain"}
    got = Ballot.model_validate(model.model_validate({field: answer, "abstain": False}).model_dump(mode="json"))
    assert getattr(got, field) == ballot
    with pytest.raises(ValidationError):
        model.model_validate({field: bad, "abstain": False})


def test_a_ranking_cannot_name_an_option_twice() -> None:
    """The ranking is keyed by candidate, so the schema itself rules out repeats; ranks
    are bounded integers, and equal ranks are rejected (and so re-asked)."""
    model = ballot_model("schulze", ("A", "B", "C"))
    ranks = model.model_json_schema()["$defs"]["Ranks"]
    assert ranks["required"] == ["A", "B", "C"] and ranks["additionalProperties"] is False
    assert all(
        p == {"maximum": 3, "minimum": 1, "title": p["title"], "type": "integer"} for p in ranks["properties"].values()
    )
    order = model.model_validate({"ranking": {"A": 3, "B": 1, "C": 2}, "abstain": False}).model_dump(mode="json")
    assert order["ranking"] == ["B", "C", "A"]
    for bad in ({"A": 1, "B": 1, "C": 2}, {"A": 1, "B": 2}, {"A": 1, "B": 2, "C": 4}):
        with pytest.raises(ValidationError):
            model.model_validate({"ranking": bad, "abstain": False})


def test_every_call_kind_asks_with_a_default_max_tokens(tmp_path: Path) -> None:
    """Speak, synthesize and vote requests carry a max_tokens for LLM members (a model
    asked without one writes until its context is full), larger where answers hold more."""
    speech = Speech(message="m", position="A", scores={"A": 1.0, "B": 0.0})
    seats = {f"member_{i}": {(None, "speak"): speech, (None, "vote"): Ballot(choice="A")} for i in range(3)}
    synthesis = Synthesis(candidates=[Candidate(option="A", statement="s")], summary="x")
    members = {m: ScriptedMember(m, script) for m, script in seats.items()}
    members["facilitator"] = ScriptedMember("facilitator", {(None, "synthesize"): synthesis})
    run(tiny(3), tmp_path / "run", overrides={m: (lambda seat, s=s: s) for m, s in members.items()})
    asked = {r.phase: r.params["generation"] for m in members.values() for _, r in m.calls}
    assert set(asked) == {"speak", "synthesize", "vote"}
    limits = {phase: gen["max_tokens"] for phase, gen in asked.items()}  # type: ignore[index]
    assert all(isinstance(n, int) and n > 0 for n in limits.values()), limits
    assert limits["vote"] < limits["speak"] < limits["synthesize"]


# A heard round, listener by listener, against the direct definition: the others'
# speeches in record order, their favoured counts (ties by first appearance), each
# option's exact mean support, and `quotes` speakers starting at the listener's seat.
_OPTION = st.sampled_from(["a", "b", "c", "d"])


def _direct(heard: list[Heard], me: str, seat: int, quotes: int) -> list[str]:
    others = [h for h in heard if h.member != me and h.kind == "speech"]
    if not others:
        return []
    counts: dict[str, int] = {}
    for h in others:
        counts[str(h.public.get("position"))] = counts.get(str(h.public.get("position")), 0) + 1
    order = sorted(counts, key=lambda k: (-counts[k], [str(h.public.get("position")) for h in others].index(k)))
    head = f"Round {others[0].round}, {len(others)} speakers."
    if not quotes:
        return [f"{head} Favoured by: " + ", ".join(f"{k} {counts[k]}" for k in order) + "."]
    keys: list[str] = []
    for h in others:
        keys += [k for k in h.public["scores"] if k not in keys]
    means = {k: Fraction(sum(Fraction(h.public["scores"][k]) for h in others if k in h.public["scores"])) for k in keys}
    support = ", ".join(f"{k} {float(means[k] / len(others)):.2f} ({counts.get(k, 0)})" for k in keys)
    quoted = {others[(seat % len(others) + j) % len(others)].member for j in range(min(quotes, len(others)))}
    return [f"{head} Mean support (and how many favour it): {support}."] + [
        f'  - {h.member}, for {h.public["position"]}: "{h.public["message"]}"' for h in others if h.member in quoted
    ]


@given(
    speeches=st.lists(
        st.tuples(_OPTION, st.dictionaries(_OPTION, st.floats(0, 1), max_size=4), st.booleans()), max_size=12
    ),
    quotes=st.integers(0, 3),
    seat=st.integers(0, 20),
)
def test_a_round_digest_reads_as_the_direct_definition(
    speeches: list[tuple[str, dict[str, float], bool]], quotes: int, seat: int
) -> None:
    heard = [
        Heard(3, "speak", f"m{i}", "speech" if speech else "note", {"position": p, "scores": s, "message": f"w{i}"})
        for i, (p, s, speech) in enumerate(speeches)
    ]
    digest = RoundDigest(heard)
    for me in [f"m{i}" for i in range(len(heard))] + ["facilitator"]:
        assert digest.lines(me, seat, quotes) == _direct(heard, me, seat, quotes)
