"""The prompt cases that `tests/test_golden_prompts.py` pins: one per prompt kind.

The facilitated assembly's prompts are rendered from views folded out of golden
transcripts (`tests/golden/*.jsonl`, themselves pinned), the consensus game's from a
crafted record that holds every kind of line a round can show: a proposal, a failed
turn, a Byzantine abstention, and an agent with no value yet.

Re-record after a change meant to alter prompts, and say why in the commit:

    .venv/bin/python -m tests.golden_prompts.cases
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from assembly.core.events import RoundEnded, RoundStarted, RunStarted, Seated, SeatedMember, Turn
from assembly.core.member import Request
from assembly.core.prompt import Prompt
from assembly.core.transcript import read_transcript
from assembly.core.view import ViewBuilder
from assembly.protocols.consensus_game.actions import Proposal, StopVote
from assembly.protocols.consensus_game.protocol import ConsensusGame
from assembly.protocols.facilitated.actions import Ballot, Speech, Synthesis
from assembly.protocols.facilitated.protocol import FacilitatedAssembly
from assembly.scenario.loading import build_scenario

HERE = Path(__file__).parent
GOLDEN = HERE.parent / "golden"


# ----------------------------------------------------------------------------- facilitated assembly


def _assembly(transcript: str, member: str, round: int, phase: str, rule: dict[str, Any] | None = None) -> Prompt:
    """`member`'s prompt for `phase` of `round`, from a golden transcript folded up to that phase."""
    events = read_transcript(GOLDEN / f"{transcript}.jsonl").events
    started = next(e for e in events if isinstance(e, RunStarted))
    data = dict(started.scenario)
    if rule is not None:
        data["protocol"] = {**data["protocol"], "decision_rule": rule}
    scenario = build_scenario(data, {})
    protocol = FacilitatedAssembly(scenario)
    builder = ViewBuilder(scenario, FacilitatedAssembly.actions)
    for e in events:
        if isinstance(e, Turn) and e.round == round and e.phase == phase:
            break
        if isinstance(e, RoundEnded) and e.round == round:
            break
        builder.apply(e)
        protocol.apply(e)
    action = {"speak": Speech, "synthesize": Synthesis, "vote": Ballot}[phase]
    params: dict[str, object] = {"candidates": scenario.protocol.candidates}
    if phase == "vote":
        params = {"rule": scenario.protocol.decision_rule.kind}  # type: ignore[attr-defined]
    request = Request(round=round, phase=phase, action=action, deadline_s=30.0, params=params)
    return protocol.prompt(builder.view(member, round, phase), request)


# ----------------------------------------------------------------------------- consensus game

PROPOSE, VOTE = "propose", "stop_vote"
_INITIAL = {"agent_0": 12, "agent_1": 30, "agent_2": 30, "agent_3": 41}


def _game(awareness: str, byzantine: bool) -> tuple[ConsensusGame, ViewBuilder]:
    """Five agents (agent_4 Byzantine, or honest with initial value 7), three rounds:

    round 1: agent_3's proposal fails (so it has no value in anyone else's view);
    round 2: agent_2's fails and agent_4 abstains (when honest, its turn fails too);
    round 3: everyone proposes. The stop votes of rounds 1 and 2 are all "continue"."""
    sc = build_scenario(
        {
            "name": "golden_prompts",
            "population": {"size": 5, "roles": [{"name": "agent", "share": 1.0}]},
            "protocol": {
                "kind": "consensus_game",
                "max_rounds": 10,
                "byzantine": int(byzantine),
                "awareness": awareness,
            },
        },
        {},
    )
    initial = {**_INITIAL, "agent_4": None if byzantine else 7}
    seated = Seated(
        members=[
            SeatedMember(id=m, role="agent", policy="llm", private={"initial": v, "byzantine": v is None})
            for m, v in initial.items()
        ],
        audiences=[list(range(5))],
        audience_of=[0] * 5,
    )
    said = {
        1: {"agent_0": 12, "agent_1": 30, "agent_2": 30, "agent_4": 50},
        2: {"agent_0": 30, "agent_1": 30, "agent_3": 35, "agent_4": "abstain"},
        3: {"agent_0": 30, "agent_1": 30, "agent_2": 30, "agent_3": 30, "agent_4": 0},
    }
    game, builder = ConsensusGame(sc), ViewBuilder(sc, ConsensusGame.actions)
    events: list[Any] = [seated]
    for r, values in said.items():
        events.append(RoundStarted(round=r))
        for m in initial:
            value = values.get(m)
            if value is None or (value == "abstain" and not byzantine):
                events.append(Turn(round=r, phase=PROPOSE, member=m, status="malformed"))
                continue
            why = (
                f"Round {r}: I propose {value} because most of the group is already close to it, and a value "
                f"that many agents share is the fastest route to agreement before the deadline ({m})."
                if value != "abstain"
                else "I will listen to the others for a round before I choose."
            )
            action = {"kind": "proposal", "strategy": f"my note in round {r}", "value": value, "justification": why}
            events.append(Turn(round=r, phase=PROPOSE, member=m, status="ok", action=action))
        if r < 3:
            for m in initial:
                vote = {"kind": "stop_vote", "vote": "continue"}
                events.append(Turn(round=r, phase=VOTE, member=m, status="ok", action=vote))
    for e in events:
        game.apply(e)
        builder.apply(e)
    return game, builder


def _consensus(member: str, phase: str, awareness: str = "may_exist", byzantine: bool = True) -> Prompt:
    game, builder = _game(awareness, byzantine)
    round = 4 if phase == PROPOSE else 3
    request = Request(round=round, phase=phase, action=Proposal if phase == PROPOSE else StopVote, deadline_s=60.0)
    return game.prompt(builder.view(member, round, phase), request)


# ----------------------------------------------------------------------------- the cases

CASES: dict[str, Callable[[], Prompt]] = {
    "assembly_speak": lambda: _assembly("citizens_assembly", "member_3", 3, "speak"),
    "assembly_synthesize": lambda: _assembly("citizens_assembly", "facilitator", 3, "synthesize"),
    "assembly_vote_majority": lambda: _assembly("citizens_assembly", "member_3", 3, "vote"),
    "assembly_vote_approval": lambda: _assembly(
        "citizens_assembly", "member_3", 3, "vote", {"kind": "approval", "threshold": 0.5}
    ),
    "assembly_vote_schulze": lambda: _assembly("small_world_schulze", "member_3", 3, "vote"),
    "consensus_propose_honest_may_exist": lambda: _consensus("agent_2", PROPOSE),
    "consensus_propose_honest_none_exist": lambda: _consensus("agent_2", PROPOSE, "none_exist", byzantine=False),
    "consensus_propose_byzantine": lambda: _consensus("agent_4", PROPOSE),
    "consensus_vote_honest_may_exist": lambda: _consensus("agent_0", VOTE),
    "consensus_vote_honest_none_exist": lambda: _consensus("agent_0", VOTE, "none_exist", byzantine=False),
    "consensus_vote_byzantine": lambda: _consensus("agent_4", VOTE),
}


def text(prompt: Prompt) -> str:
    return f"=== system\n{prompt.system}\n=== user\n{prompt.user}\n"


def main() -> None:
    for name, case in CASES.items():
        (HERE / f"{name}.txt").write_text(text(case()), encoding="utf-8")
        print(f"recorded {name}")


if __name__ == "__main__":
    main()
