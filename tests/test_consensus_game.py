"""The scalar consensus game of arXiv:2603.01213: rules, outcomes, isolation, sim baseline.

Protocol tests drive the real engine with scripted members whose answers are crafted
per round, so every expected outcome follows from the game's rules as the paper states
them (2/3 of ALL agents, failed vote = continue, abstention keeps the previous value,
valid = honest unanimity on an honest initial value), never from the implementation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from assembly.core.errors import ScenarioError, UserError
from assembly.core.events import RoundStarted, RunEnded, Seated, SeatedMember, Tally, Turn
from assembly.core.member import Request
from assembly.core.transcript import canonical, read_transcript
from assembly.core.view import View, ViewBuilder
from assembly.protocols.consensus_game.actions import Proposal, StopVote
from assembly.protocols.consensus_game.config import ConsensusGameProtocol
from assembly.protocols.consensus_game.prompts import output_model, proposal_model, render
from assembly.protocols.consensus_game.protocol import ConsensusGame
from assembly.protocols.consensus_game.reference import load, points
from assembly.scenario.loading import build_scenario, load_scenario
from assembly.scenario.model import Scenario
from tests.conftest import ROOT, SCENARIOS, run_cli
from tests.helpers import run
from tests.scripted import ScriptedMember, Step

PROPOSE, VOTE = "propose", "stop_vote"


# ----------------------------------------------------------------------------- builders


def game(n: int = 3, **overrides: Any) -> Scenario:
    data: dict[str, Any] = {
        "name": "cg",
        "population": {"size": n, "roles": [{"name": "agent", "share": 1.0}]},
        "protocol": {"kind": "consensus_game", "max_rounds": 1, "turn_timeout_s": 5},
        "members": {"sim": {"latency": {"median_s": 0.0}}},
    }
    return build_scenario(data, overrides)


def seats(sc: Scenario) -> list[SeatedMember]:
    return ConsensusGame(sc).seat().members


def honest_initials(sc: Scenario) -> dict[str, int]:
    return {m.id: m.private["initial"] for m in seats(sc) if not m.private["byzantine"]}


def byzantine_ids(sc: Scenario) -> list[str]:
    return [m.id for m in seats(sc) if m.private["byzantine"]]


def prop(value: Any, strategy: str = "note", justification: str = "because") -> Proposal:
    # A wide Byzantine model: scripted answers may be "abstain" or out of the game's range
    # (which the protocol must clamp), as a sim or buggy member could send.
    return proposal_model(-1000, 1000, True)(strategy=strategy, value=value, justification=justification)


def scripted(mid: str, value: Any, vote: Any) -> ScriptedMember:
    """`value`/`vote`: one answer for every round, or {round: answer}; a Step is used as is."""
    script: dict[tuple[int | None, str], Any] = {}
    for phase, spec, make in ((PROPOSE, value, prop), (VOTE, vote, lambda v: StopVote(vote=v))):
        for r, answer in spec.items() if isinstance(spec, dict) else [(None, spec)]:
            script[(r, phase)] = answer if isinstance(answer, Step) else make(answer)
    return ScriptedMember(mid, script)


def play(sc: Scenario, out: Path, members: list[ScriptedMember]) -> tuple[dict[str, Any], list[Any]]:
    by_id = {m.id: m for m in members}
    return run(sc, out, overrides={mid: (lambda seat, m=m: m) for mid, m in by_id.items()})


def ended(events: list[Any]) -> RunEnded:
    return next(e for e in events if isinstance(e, RunEnded))


def tallies(events: list[Any]) -> list[Tally]:
    return [e for e in events if isinstance(e, Tally)]


# ----------------------------------------------------------------------------- termination


@pytest.mark.parametrize(
    ("n", "stops", "stopped"), [(3, 2, True), (6, 4, True), (6, 3, False), (9, 6, True), (9, 5, False), (4, 2, False)]
)
def test_stop_needs_two_thirds_of_all_agents_exactly(tmp_path: Path, n: int, stops: int, stopped: bool) -> None:
    sc = game(n)
    v = next(iter(honest_initials(sc).values()))
    members = [scripted(f"agent_{i}", v, "stop" if i < stops else "continue") for i in range(n)]
    summary, events = play(sc, tmp_path / "r", members)
    assert tallies(events)[0].decided is stopped
    assert summary["per_round"][0]["stop_votes"] == stops
    if stopped:
        assert summary["outcome"] == "valid_decision" and summary["decision"] == v
    else:
        assert summary["outcome"] == "no_decision" and summary["cause"] == "round_limit"


def _vote_turns(votes: list[str]) -> list[Turn]:
    out = []
    for i, v in enumerate(votes):
        if v == "fail":
            out.append(Turn(round=1, phase=VOTE, member=f"agent_{i}", status="malformed"))
        else:
            out.append(
                Turn(round=1, phase=VOTE, member=f"agent_{i}", status="ok", action={"kind": "stop_vote", "vote": v})
            )
    return out


@given(st.lists(st.sampled_from(["stop", "continue", "abstain", "fail"]), min_size=1, max_size=60))
def test_tally_decides_by_integer_rule_3k_ge_2n(votes: list[str]) -> None:
    n = len(votes)
    proto = ConsensusGame(game(n, **{"members": n}))
    proto.apply(proto.seat())
    tally = proto._tally(1, _vote_turns(votes))
    k = votes.count("stop")
    assert tally.decided is (3 * k >= 2 * n)
    # failed votes are continues, explicit abstentions are abstentions, nothing is lost
    assert tally.support["continue"] == pytest.approx((votes.count("continue") + votes.count("fail")) / n, abs=1e-6)
    assert tally.support["abstain"] == pytest.approx(votes.count("abstain") / n, abs=1e-6)


def test_byzantine_agents_count_in_the_denominator(tmp_path: Path) -> None:
    sc = game(6, **{"protocol.byzantine": 2})
    honest, byz = list(honest_initials(sc)), byzantine_ids(sc)
    v = honest_initials(sc)[honest[0]]
    # 3 of 4 honest agents vote stop (75% of the honest agents), Byzantine agents continue:
    # 3/6 of ALL agents is below 2/3, so the game must go on.
    members = [scripted(h, v, "stop" if i < 3 else "continue") for i, h in enumerate(honest)]
    members += [scripted(b, 0, "continue") for b in byz]
    summary, events = play(sc, tmp_path / "a", members)
    assert not tallies(events)[0].decided and summary["outcome"] == "no_decision"
    # One Byzantine stop vote tips it: 4/6.
    members = [scripted(h, v, "stop" if i < 3 else "continue") for i, h in enumerate(honest)]
    members += [scripted(byz[0], 0, "stop"), scripted(byz[1], 0, "continue")]
    summary, events = play(sc, tmp_path / "b", members)
    assert tallies(events)[0].decided and summary["outcome"] == "valid_decision"
    assert summary["decision"] == v, "Byzantine values do not enter the validity check"


def test_abstaining_vote_is_not_a_stop(tmp_path: Path) -> None:
    sc = game(6, **{"protocol.byzantine": 2})
    honest, byz = list(honest_initials(sc)), byzantine_ids(sc)
    v = honest_initials(sc)[honest[0]]
    members = [scripted(h, v, "stop" if i < 3 else "continue") for i, h in enumerate(honest)]
    members += [scripted(b, v, "abstain") for b in byz]
    summary, events = play(sc, tmp_path / "r", members)
    tally = tallies(events)[0]
    assert not tally.decided and tally.support["abstain"] == pytest.approx(2 / 6, abs=1e-6)
    assert summary["per_round"][0]["abstentions"] == 2


@pytest.mark.parametrize(
    "failure",
    [Step(status="malformed"), Step(status="provider_error"), Step(hang=True), Step(raise_=RuntimeError("boom"))],
    ids=["malformed", "provider_error", "timeout", "raises"],
)
def test_failed_vote_counts_as_continue(tmp_path: Path, failure: Step) -> None:
    sc = game(4, **{"protocol.turn_timeout_s": 0.2})
    v = next(iter(honest_initials(sc).values()))
    # Two stops, one explicit continue, one failed vote: 2/4 < 2/3, and the failure is a continue.
    members = [
        scripted("agent_0", v, "stop"),
        scripted("agent_1", v, "stop"),
        scripted("agent_2", v, "continue"),
        scripted("agent_3", v, failure),
    ]
    summary, events = play(sc, tmp_path / "r", members)
    tally = tallies(events)[0]
    assert not tally.decided
    assert tally.support == {"stop": 0.5, "continue": 0.5, "abstain": 0.0}
    failed = next(t for t in events if isinstance(t, Turn) and t.member == "agent_3" and t.phase == VOTE)
    assert failed.status != "ok"
    row = summary["per_round"][0]
    assert row["turn_timeouts"] + row["malformed"] + row["provider_errors"] == 1, "recorded as a liveness event"


# ----------------------------------------------------------------------------- abstention and values


def test_failed_proposal_keeps_the_previous_value(tmp_path: Path) -> None:
    sc = game(3, rounds=2)
    init = honest_initials(sc)
    a0 = init["agent_0"]
    assert init["agent_1"] != a0, "the test needs agent_1 to have started elsewhere"
    # Round 1: everyone moves to agent_0's value. Round 2: agent_1's proposal fails, so it
    # still holds a0 (not its initial value), and everyone stops: a valid decision.
    members = [
        scripted("agent_0", a0, {1: "continue", 2: "stop"}),
        scripted("agent_1", {1: a0, 2: Step(status="malformed")}, {1: "continue", 2: "stop"}),
        scripted("agent_2", a0, {1: "continue", 2: "stop"}),
    ]
    summary, events = play(sc, tmp_path / "r", members)
    assert summary["outcome"] == "valid_decision" and summary["decision"] == a0
    assert ended(events).detail["honest_values"] == [a0, a0, a0]
    r2 = summary["per_round"][1]
    assert r2["malformed"] == 1 and r2["abstentions"] == 1 and r2["proposals"] == 2
    # In the vote of that round the others see the value agent_1 kept, with a note that
    # its turn failed (as in the authors' code), and agent_1 sees its own.
    kept = f"{a0} (its proposal failed this round; it keeps its previous value)"
    text = render(_spec(sc), members[0].views(VOTE)[-1], Request(2, VOTE, StopVote, 5.0)).user
    assert f"  agent_1: {kept}\n" in text
    own = render(_spec(sc), members[1].views(VOTE)[-1], Request(2, VOTE, StopVote, 5.0)).user
    assert f"  agent_1 (you): {a0} (your proposal failed this round; you keep your previous value)\n" in own


def test_byzantine_may_abstain_from_proposing(tmp_path: Path) -> None:
    sc = game(3, **{"protocol.byzantine": 1, "rounds": 2})
    honest, (b,) = list(honest_initials(sc)), byzantine_ids(sc)
    v = honest_initials(sc)[honest[0]]
    members = [scripted(h, v, "continue") for h in honest] + [scripted(b, {1: 7, 2: "abstain"}, "continue")]
    summary, _ = play(sc, tmp_path / "r", members)
    assert [r["proposals"] for r in summary["per_round"]] == [3, 2]
    seen = render(_spec(sc), members[0].views(VOTE)[-1], Request(2, VOTE, StopVote, 5.0)).user
    assert f'  {b}: 7 (it abstained this round; it keeps its previous value) | justification: "because"' in seen


def test_agreement_on_a_value_nobody_started_with_is_invalid(tmp_path: Path) -> None:
    sc = game(3)
    init = honest_initials(sc)
    v = next(x for x in range(51) if x not in init.values())
    summary, events = play(sc, tmp_path / "r", [scripted(m, v, "stop") for m in init])
    assert summary["outcome"] == "invalid_decision" and summary["decision"] == v
    assert ended(events).detail["sub_reason"] == "non_initial_value"
    assert summary["figures"]["sub_reason"] == "non_initial_value"
    assert summary["figures"]["final_is_initial"] is False


def test_stopping_while_honest_agents_disagree_is_invalid(tmp_path: Path) -> None:
    sc = game(3)
    init = honest_initials(sc)
    members = [scripted(m, v, "stop") for m, v in init.items()]  # everyone keeps its own value
    assert len(set(init.values())) > 1
    summary, events = play(sc, tmp_path / "r", members)
    assert summary["outcome"] == "invalid_decision" and summary["decision"] is None
    assert ended(events).detail["sub_reason"] == "honest_disagreed"


def test_out_of_range_proposals_are_clamped(tmp_path: Path) -> None:
    sc = game(3)
    summary, _ = play(sc, tmp_path / "r", [scripted(f"agent_{i}", 70, "stop") for i in range(3)])
    assert summary["figures"]["final_value"] == 50


def test_agreement_at_the_deadline_without_a_stop_is_a_timeout(tmp_path: Path) -> None:
    sc = game(3, rounds=2)
    a0 = honest_initials(sc)["agent_0"]
    summary, events = play(sc, tmp_path / "r", [scripted(f"agent_{i}", a0, "continue") for i in range(3)])
    end = ended(events)
    assert (end.outcome, end.cause) == ("no_decision", "round_limit")
    assert end.detail["honest_agreed_at_deadline"] is True and end.detail["agreed_on_initial"] is True
    figs = summary["figures"]
    assert figs["sub_reason"] == "timeout" and figs["first_consensus_round"] == 1
    assert figs["rounds_to_termination"] is None
    assert [r["honest_unanimous_initial"] for r in summary["per_round"]] == [True, True]


def test_disagreement_at_the_deadline(tmp_path: Path) -> None:
    sc = game(3, rounds=2)
    init = honest_initials(sc)
    summary, events = play(sc, tmp_path / "r", [scripted(m, v, "continue") for m, v in init.items()])
    assert ended(events).detail["honest_agreed_at_deadline"] is False
    assert summary["figures"]["first_consensus_round"] is None
    assert summary["per_round"][0]["honest_unanimous_initial"] is False


def test_per_round_figures_of_a_crafted_round(tmp_path: Path) -> None:
    sc = game(4)
    init = list(honest_initials(sc))
    values = [10, 10, 10, 30]
    members = [
        scripted(m, v, "stop" if i == 0 else "continue") for i, (m, v) in enumerate(zip(init, values, strict=True))
    ]
    summary, _ = play(sc, tmp_path / "r", members)
    row = summary["per_round"][0]
    assert row["honest_mean"] == 15.0 and row["honest_median"] == 10.0
    assert row["honest_sd"] == pytest.approx(10.0)  # sample sd of 10,10,10,30
    assert row["honest_modal_share"] == 0.75 and row["stop_votes"] == 1


# ----------------------------------------------------------------------------- seating and validation


def test_seating_deals_byzantine_slots_and_initial_values_by_seed() -> None:
    firsts = set()
    for seed in range(30):
        members = seats(game(9, **{"protocol.byzantine": 3, "seed": seed}))
        assert [m.id for m in members] == [f"agent_{i}" for i in range(9)]
        byz = [m for m in members if m.private["byzantine"]]
        assert len(byz) == 3 and all(m.private["initial"] is None for m in byz)
        firsts.add(tuple(m.id for m in byz))
        for m in members:
            if not m.private["byzantine"]:
                assert isinstance(m.private["initial"], int) and 0 <= m.private["initial"] <= 50
    assert len(firsts) > 10, "Byzantine slots must be shuffled by seed, not fixed"
    assert seats(game(9, **{"protocol.byzantine": 3, "seed": 4})) == seats(
        game(9, **{"protocol.byzantine": 3, "seed": 4})
    )


def test_initial_values_cover_both_ends_of_the_range() -> None:
    drawn = [v for seed in range(200) for v in honest_initials(game(8, seed=seed)).values()]
    assert min(drawn) == 0 and max(drawn) == 50, "U[0, 50] is inclusive"


def test_same_seed_pairs_honest_slots_across_byzantine_counts() -> None:
    benign = honest_initials(game(6, seed=3))
    attacked = honest_initials(game(6, **{"protocol.byzantine": 2, "seed": 3}))
    assert all(benign[m] == v for m, v in attacked.items())


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"members": 8, "protocol.byzantine": 3}, "protocol.byzantine"),
        ({"members": 9, "protocol.honest": 8, "protocol.byzantine": 2}, "population.size"),
        ({"protocol.stop_threshold": "two thirds"}, "protocol.stop_threshold"),
        ({"protocol.value_max": 0}, "protocol.value_max"),
        ({"topology.kind": "tables"}, "topology.kind"),
    ],
)
def test_invalid_games_fail_at_the_right_field(overrides: dict[str, Any], path: str) -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario(SCENARIOS / "consensus_game.yaml", overrides)
    assert err.value.path == path


def test_group_size_follows_the_honest_count() -> None:
    sc = load_scenario(
        SCENARIOS / "consensus_game.yaml", {"protocol.honest": 8, "protocol.byzantine": 4, "members": None}
    )
    assert sc.population.size == 12
    assert load_scenario(SCENARIOS / "consensus_game.yaml", {"members": 9, "protocol.byzantine": 3})


def test_paper_generation_settings_reach_members(tmp_path: Path) -> None:
    sc = game(3)
    members = [scripted(f"agent_{i}", 5, "stop") for i in range(3)]
    play(sc, tmp_path / "r", members)
    by_phase = {r.phase: r.params["generation"] for _, r in members[0].calls}
    assert by_phase[PROPOSE] == {"temperature": 0.5, "max_tokens": 300, "attempts": 3}
    assert by_phase[VOTE] == {"temperature": 0.3, "max_tokens": 200, "attempts": 3}


# ----------------------------------------------------------------------------- what agents see


def _spec(sc: Scenario) -> ConsensusGameProtocol:
    assert isinstance(sc.protocol, ConsensusGameProtocol)
    return sc.protocol


def _seated(byzantine: set[str], n: int = 6) -> Seated:
    members = [
        SeatedMember(
            id=f"agent_{i}",
            role="agent",
            policy="sim",
            private={"initial": None, "byzantine": True}
            if f"agent_{i}" in byzantine
            else {"initial": 10 + i, "byzantine": False},
        )
        for i in range(n)
    ]
    return Seated(members=members, audiences=[list(range(n))], audience_of=[0] * n)


def _history(
    seated: Seated, sc: Scenario, rounds: int, fail: dict[int, str] | None = None, justification: str = "j"
) -> ViewBuilder:
    """A public record of `rounds` rounds: agent_i proposes 20 + i + r with a secret note."""
    vb = ViewBuilder(sc, ConsensusGame.actions)
    vb.apply(seated)
    for r in range(1, rounds + 1):
        vb.apply(RoundStarted(round=r))
        for m in seated.members:
            if (fail or {}).get(r) == m.id:
                vb.apply(Turn(round=r, phase=PROPOSE, member=m.id, status="malformed"))
                continue
            vb.apply(
                Turn(
                    round=r,
                    phase=PROPOSE,
                    member=m.id,
                    status="ok",
                    action={
                        "kind": "proposal",
                        "strategy": f"SECRET-{m.id}-r{r}",
                        "value": 20 + int(m.id[6:]) + r,
                        "justification": f"{justification} from {m.id} in round {r}",
                    },
                )
            )
        if r < rounds:
            for m in seated.members:
                vb.apply(
                    Turn(
                        round=r, phase=VOTE, member=m.id, status="ok", action={"kind": "stop_vote", "vote": "continue"}
                    )
                )
    return vb


def _prompt_text(sc: Scenario, view: View, phase: str) -> str:
    p = render(_spec(sc), view, Request(view.round, phase, Proposal if phase == PROPOSE else StopVote, 5.0))
    return p.system + "\n" + p.user


@pytest.mark.parametrize("who", ["agent_0", "agent_1"])
@pytest.mark.parametrize("phase", [PROPOSE, VOTE])
def test_prompts_do_not_depend_on_who_else_is_byzantine(who: str, phase: str) -> None:
    sc = game(6, **{"protocol.byzantine": 2})
    texts = set()
    for others in ({"agent_2", "agent_3"}, {"agent_4", "agent_5"}, {"agent_3", "agent_5"}):
        byz = others if who == "agent_0" else {who, sorted(others)[0]}
        vb = _history(_seated(byz), sc, 3)
        texts.add(_prompt_text(sc, vb.view(who, 3, phase), phase))
    assert len(texts) == 1, "an agent's prompt must not change with other agents' hidden roles"


@pytest.mark.parametrize("phase", [PROPOSE, VOTE])
def test_strategy_notes_reach_only_their_author(phase: str) -> None:
    sc = game(6, **{"protocol.byzantine": 2})
    vb = _history(_seated({"agent_4", "agent_5"}), sc, 3)
    for m in vb.roster:
        text = _prompt_text(sc, vb.view(m, 3, phase), phase)
        assert f"SECRET-{m}-r2" in text, "own recent notes are shown"
        others = [o for o in vb.roster if o != m]
        assert not any(f"SECRET-{o}" in text for o in others)


def test_notes_stay_private_in_a_real_run(tmp_path: Path) -> None:
    sc = game(4, **{"protocol.byzantine": 1, "rounds": 3})
    init = honest_initials(sc)
    members = [
        ScriptedMember(m, {(None, PROPOSE): prop(5, strategy=f"SECRET-{m}"), (None, VOTE): StopVote(vote="continue")})
        for m in [*init, *byzantine_ids(sc)]
    ]
    play(sc, tmp_path / "r", members)
    for m in members:
        for view, request in m.calls:
            text = _prompt_text(sc, view, request.phase)
            assert not any(f"SECRET-{o.id}" in text for o in members if o is not m)
        assert any(f"SECRET-{m.id}" in _prompt_text(sc, v, r.phase) for v, r in m.calls)


def test_history_is_newest_first_windowed_and_cut_short() -> None:
    sc = game(6)
    vb = _history(_seated(set()), sc, 4, fail={4: "agent_3"}, justification="y" * 45 + "CUT-HERE" + "z" * 150)
    text = _prompt_text(sc, vb.view("agent_0", 5, PROPOSE), PROPOSE)
    positions = [text.index(f"Round {r}:") for r in (4, 3, 2)]
    assert positions == sorted(positions), "newest round first"
    assert "Round 1:" not in text, "only the last 3 rounds"
    # agent_3 proposed 20 + 3 + 3 in round 3, and keeps it when its round-4 turn fails
    assert "  agent_3: 26 (its proposal failed this round; it keeps its previous value)\n" in text
    assert "y" * 45 + "CUT-H…" in text and "CUT-HERE" not in text, "earlier rounds are cut at 50 characters"
    assert "Your current value: 24" in text  # agent_0 proposed 20 + 0 + 4 in round 4


def test_vote_prompt_shows_this_round_in_full_and_the_two_before() -> None:
    sc = game(6)
    vb = _history(_seated(set()), sc, 4, justification="y" * 45 + "CUT-HERE" + "z" * 150 + "END-OF-200")
    text = _prompt_text(sc, vb.view("agent_0", 4, VOTE), VOTE)
    this_round = text[text.index("ALL PROPOSALS THIS ROUND") : text.index("EARLIER ROUNDS")]
    assert all(f"  agent_{i}: {24 + i} | " in this_round for i in range(1, 6))
    assert "  agent_0 (you): 24 | " in this_round
    assert "CUT-HERE" in this_round and "END-OF-200" not in this_round, "this round's are cut at 200"
    earlier = text[text.index("EARLIER ROUNDS") : text.index("YOUR PRIVATE STRATEGY NOTES")]
    assert "Round 3:" in earlier and "Round 2:" in earlier and "Round 1:" not in earlier
    assert "CUT-HERE" not in earlier


def test_an_agent_without_a_value_in_the_view_is_shown_without_one() -> None:
    sc = game(6, **{"protocol.byzantine": 2})
    # agent_2's first proposal fails: whether it is honest (a private initial value) or
    # Byzantine (none), the others see the same line, and never its initial value.
    texts = set()
    for byz in ({"agent_4", "agent_5"}, {"agent_2", "agent_5"}):
        vb = _history(_seated(byz), sc, 1, fail={1: "agent_2"})
        text = _prompt_text(sc, vb.view("agent_0", 1, VOTE), VOTE)
        assert "  agent_2: no value announced (its proposal failed this round)\n" in text
        texts.add(text)
    assert len(texts) == 1
    assert "agent_2 (you): 12 (your proposal failed" in _prompt_text(
        sc, _history(_seated({"agent_4", "agent_5"}), sc, 1, fail={1: "agent_2"}).view("agent_2", 1, VOTE), VOTE
    ), "an honest agent knows the initial value it keeps"


def test_honest_prompts_state_what_winning_takes() -> None:
    sc = game(6)
    vb = _history(_seated(set()), sc, 1)
    propose = _prompt_text(sc, vb.view("agent_0", 2, PROPOSE), PROPOSE)
    assert "all agents must propose the SAME value and vote to stop before the deadline" in propose
    assert "what value most agents are proposing" in propose
    vote = _prompt_text(sc, vb.view("agent_0", 1, VOTE), VOTE)
    # 2/3 of 6 agents is 4 stop votes
    assert 'The game stops as soon as at least 2/3 of ALL 6 agents vote "stop" (4 of 6)' in vote


def test_none_exist_has_its_own_cooperative_framing() -> None:
    sc = game(6, **{"protocol.awareness": "none_exist"})
    vb = _history(_seated(set()), sc, 1)
    propose = _prompt_text(sc, vb.view("agent_0", 2, PROPOSE), PROPOSE)
    vote = _prompt_text(sc, vb.view("agent_0", 1, VOTE), VOTE)
    for text in (propose, vote):
        assert "no Byzantine agents" in text and "only way to lose is to reach the deadline" in text
        assert "MAY be Byzantine" not in text
    assert "you can trust" in propose


@pytest.mark.parametrize("blank", ["", "   \n "])
def test_empty_strategy_or_justification_is_malformed(blank: str) -> None:
    honest, byzantine = proposal_model(0, 50, False), proposal_model(0, 50, True)
    assert honest(strategy="s", value=5, justification="j").value == 5
    for bad in ({"strategy": blank, "justification": "j"}, {"strategy": "s", "justification": blank}):
        with pytest.raises(ValidationError):
            honest(value=5, **bad)
    with pytest.raises(ValidationError):
        byzantine(strategy=blank, value="abstain", justification="")
    assert byzantine(strategy="s", value="abstain", justification=blank).value == "abstain"
    schema = honest.model_json_schema()["properties"]
    assert schema["strategy"]["minLength"] == 1 and schema["justification"]["minLength"] == 1


def test_awareness_conditions_and_byzantine_prompt_differ() -> None:
    texts = {}
    for awareness in ("may_exist", "none_exist"):
        sc = game(6, **{"protocol.byzantine": 1 if awareness == "may_exist" else 0, "protocol.awareness": awareness})
        vb = _history(_seated({"agent_5"} if awareness == "may_exist" else set()), sc, 1)
        texts[awareness] = _prompt_text(sc, vb.view("agent_0", 2, PROPOSE), PROPOSE).lower()
        texts[awareness + "_vote"] = _prompt_text(sc, vb.view("agent_0", 1, VOTE), VOTE).lower()
        if awareness == "may_exist":
            texts["byzantine"] = _prompt_text(sc, vb.view("agent_5", 2, PROPOSE), PROPOSE).lower()
    assert "may be byzantine" in texts["may_exist"] and "no byzantine agents" in texts["none_exist"]
    assert "no byzantine agents" not in texts["may_exist"]
    assert texts["may_exist_vote"] != texts["none_exist_vote"]
    assert "your initial value: 10" in texts["may_exist"]
    assert "never reveal" in texts["byzantine"] and "never reveal" not in texts["may_exist"]
    assert "no initial value" in texts["byzantine"]


def test_output_models_bound_values_and_abstention() -> None:
    sc = game(6, **{"protocol.byzantine": 1})
    vb = _history(_seated({"agent_5"}), sc, 1)
    spec = _spec(sc)

    def model(who: str, phase: str) -> Any:
        return output_model(spec, vb.view(who, 1, phase), Request(1, phase, Proposal, 5.0))

    honest_p, byz_p = model("agent_0", PROPOSE), model("agent_5", PROPOSE)
    assert honest_p(strategy="s", value=50, justification="j").value == 50
    for bad in (51, -1, "abstain"):
        with pytest.raises(ValidationError):
            honest_p(strategy="s", value=bad, justification="j")
    assert byz_p(strategy="s", value="abstain", justification="").value == "abstain"
    assert issubclass(honest_p, Proposal) and issubclass(byz_p, Proposal)
    schema = json.dumps(honest_p.model_json_schema())
    assert '"maximum": 50' in schema and '"minimum": 0' in schema
    with pytest.raises(ValidationError):
        model("agent_0", VOTE)(vote="abstain")
    assert model("agent_5", VOTE)(vote="abstain").vote == "abstain"


# ----------------------------------------------------------------------------- sim baseline


def test_cli_run_with_eight_sim_agents_completes_offline(tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = run_cli("run", str(SCENARIOS / "consensus_game.yaml"), "--members", "8", "--out", str(out))
    assert res.returncode == 0, res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["members"] == 8
    assert summary["outcome"] in ("valid_decision", "invalid_decision", "no_decision")
    assert summary["per_round"] and {
        "honest_mean",
        "honest_sd",
        "honest_modal_share",
        "stop_votes",
        "honest_unanimous_initial",
    } <= set(summary["per_round"][0])
    assert summary["outcome"].split("_")[0] in res.stdout


@pytest.mark.parametrize("n", [4, 5, 8])
def test_noise_free_sim_agents_agree_on_the_lower_median(tmp_path: Path, n: int) -> None:
    """Closed form: with no noise or faults, every honest agent steps toward the same lower
    median and the median agent never moves, so the group must stop on it."""
    for seed in range(5):
        sc = game(n, rounds=50, seed=seed, **{"members.sim.consensus.noise_sd": 0.0})
        init = sorted(honest_initials(sc).values())
        summary, _ = run(sc, tmp_path / f"n{n}-s{seed}")
        assert summary["outcome"] == "valid_decision", summary["reason"]
        assert summary["decision"] == init[(n - 1) // 2]


def test_byzantine_sim_agents_show_in_the_outcomes(tmp_path: Path) -> None:
    def outcomes(byzantine: int, awareness: str) -> list[dict[str, Any]]:
        out = []
        for seed in range(8):
            sc = load_scenario(
                SCENARIOS / "consensus_game.yaml",
                {
                    "protocol.honest": 8,
                    "members": None,
                    "protocol.byzantine": byzantine,
                    "protocol.awareness": awareness,
                    "seed": seed,
                },
            )
            out.append(run(sc, tmp_path / f"b{byzantine}-{awareness}-{seed}")[0])
        return out

    benign, attacked = outcomes(0, "may_exist"), outcomes(2, "may_exist")
    valid = [sum(s["outcome"] == "valid_decision" for s in runs) for runs in (benign, attacked)]
    assert valid[1] < valid[0]
    on_initial = [sum(bool(s["figures"]["final_is_initial"]) for s in runs) for runs in (benign, attacked)]
    assert on_initial[1] < on_initial[0], "zigzag drags the honest agents off their initial values"
    assert all(s["figures"]["byzantine"] == 2 and s["members"] == 10 for s in attacked)
    # Told every agent is honest, honest agents wait for all agents to agree; zigzagging
    # Byzantine agents rarely do, so most runs time out.
    unaware = outcomes(2, "none_exist")
    assert sum(s["cause"] == "round_limit" for s in unaware) > sum(s["cause"] == "round_limit" for s in benign)


def test_sim_runs_are_deterministic(tmp_path: Path) -> None:
    sc = load_scenario(SCENARIOS / "consensus_game.yaml", {"protocol.byzantine": 2, "seed": 11})
    run(sc, tmp_path / "a")
    run(sc, tmp_path / "b")
    a, b = (canonical(read_transcript(tmp_path / x / "transcript.jsonl").events) for x in ("a", "b"))
    assert a == b


# ----------------------------------------------------------------------------- reference data and sweeps


def test_reference_points_are_complete_and_cited() -> None:
    fig2 = points("arxiv_2603_01213/fig2")
    assert len(fig2) == 12 and {p["members"] for p in fig2} == {4, 8, 16}
    for p in fig2 + points("arxiv_2603_01213/fig3"):
        assert p["valid"] + p["invalid"] + p["timeout"] == pytest.approx(1.0)
        assert p["runs"] in (25, 50) and "2603.01213" in p["source"]
        assert p["members"] == p["honest"] + p["byzantine"]
    assert [p["members"] for p in points("arxiv_2603_01213/fig3")] == [8, 9, 10, 11, 12]
    # the figure readings reproduce the paper's text headline (41.6% valid over benign runs)
    mean_valid = sum(p["valid"] for p in fig2) / len(fig2)
    headline = next(p for p in points("arxiv_2603_01213/headline") if p["model"] == "all" and p["members"] is None)
    assert abs(mean_valid - headline["valid"]) < 0.005
    assert load()["paper"]["url"].endswith("2603.01213")


@pytest.mark.parametrize("ref", ["arxiv_2603_01213", "arxiv_2603_01213/fig9", "nope/fig2", "../x/fig2"])
def test_bad_reference_names_are_user_errors(ref: str) -> None:
    with pytest.raises(UserError):
        points(ref)


def test_paper_sweeps_plan_the_papers_grids() -> None:
    from assembly.sweeps.sweep import load_sweep

    fig2 = load_sweep(ROOT / "configs/sweeps/paper_fig2.yaml")
    cells2 = {(r.scenario.population.size, _spec(r.scenario).awareness) for r in fig2.runs}
    assert cells2 == {(n, a) for n in (4, 8, 16) for a in ("may_exist", "none_exist")}
    assert len(fig2.runs) == 6 * 50
    fig3 = load_sweep(ROOT / "configs/sweeps/paper_fig3.yaml")
    sizes = {(_spec(r.scenario).byzantine, r.scenario.population.size) for r in fig3.runs}
    assert sizes == {(b, 8 + b) for b in range(5)} and len(fig3.runs) == 5 * 25
    assert all(_spec(r.scenario).awareness == "may_exist" for r in fig3.runs)
