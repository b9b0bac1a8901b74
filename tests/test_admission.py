"""A member's deadline covers the member, never the tool's queue (admission-time turn clocks).

Real runs against the loopback server with latency, on a profile that allows far
fewer requests in flight than the group has members: members wait for a slot, and
that wait must never be recorded as a `turn_timeout` (the liveness loss the tool
measures); whoever is still queued when the round's time runs out is `throttled`,
counted apart.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assembly.core.actions import by_kind
from assembly.core.metrics import liveness
from assembly.core.transcript import read_transcript
from assembly.inspection.reexecute import rerun
from assembly.llm.setup import from_flags
from assembly.protocols.consensus_game.protocol import ConsensusGame
from tests.conftest import SCENARIOS, run_cli
from tests.fake_openai import FakeOpenAIServer
from tests.test_llm_runs import llm_scenario, make_profile, run, turns

MEMBERS = 12
LATENCY_S = 0.2


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(seed=5) as srv:
        srv.configure(latency_s=LATENCY_S)
        yield srv


@pytest.mark.parametrize("client_kind", ["openai", "litellm"])
def test_queued_members_are_never_timed_out(server: FakeOpenAIServer, client_kind: str, tmp_path: Path) -> None:
    # One request in flight for 12 members: the last of them waits 11 x latency for a
    # slot, longer than the turn deadline, yet each member's own call is well within it.
    profile = make_profile(server, client_kind, max_concurrent=1, api_key_env=None)
    turn_timeout = 6 * LATENCY_S
    assert turn_timeout < (MEMBERS - 1) * LATENCY_S  # the queue alone would outlast a queue-inclusive deadline
    sc = llm_scenario(
        "consensus_game",
        profile.name,
        rounds=1,
        members=MEMBERS,
        turn_timeout=turn_timeout,
        **{"protocol.round_timeout_s": 120.0},
    )
    summary, events = run(sc, tmp_path / "run", profile)
    statuses = [t.status for t in turns(events)]
    assert len(statuses) == 2 * MEMBERS
    assert set(statuses) == {"ok"}, statuses
    assert summary["totals"]["turn_timeouts"] == 0 and summary["totals"]["throttled"] == 0
    assert server.max_in_flight == 1
    queued = [float((t.timing or {}).get("queued_s", 0.0)) for t in turns(events)]
    assert max(queued) > turn_timeout  # members really did wait longer than their deadline


def test_members_still_queued_at_the_round_end_are_throttled(server: FakeOpenAIServer, tmp_path: Path) -> None:
    profile = make_profile(server, "openai", max_concurrent=1, api_key_env=None)
    round_timeout = 5 * LATENCY_S  # room for about five of the twelve answers, one at a time
    sc = llm_scenario(
        "consensus_game",
        profile.name,
        rounds=2,
        members=MEMBERS,
        turn_timeout=30.0,
        **{"protocol.round_timeout_s": round_timeout},
    )
    summary, events = run(sc, tmp_path / "run", profile)
    all_turns = turns(events)
    throttled = [t for t in all_turns if t.status == "throttled"]
    answered = [t for t in all_turns if t.status == "ok"]
    assert not [t for t in all_turns if t.status == "timeout"]
    assert throttled and answered
    assert {t.status for t in all_turns} == {"ok", "throttled"}
    assert all(t.action is None and not t.attempts for t in throttled)  # never sent, never answered
    totals = summary["totals"]
    assert totals["throttled"] == len(throttled)
    assert totals["turn_timeouts"] == 0
    # Throttled turns are the tool's capacity, not the members' abstentions.
    explicit = liveness(answered, by_kind(ConsensusGame.actions))["abstentions"]
    assert totals["abstentions"] == explicit
    assert sum(r["throttled"] for r in summary["per_round"]) == len(throttled)
    # The server saw the answered turns, plus at most the one request in flight (one
    # slot) when each round's time ran out: the queued members never sent theirs.
    assert len(answered) <= server.request_count <= len(answered) + 2

    # A rerun replays the throttled turns as they were, without calling anyone.
    server.reset_stats()
    result = asyncio.run(rerun(tmp_path / "run", tmp_path / "rerun"))
    assert result.comparison.identical, result.comparison.first_difference
    assert server.request_count == 0


# ----------------------------------------------------------------------------- ad-hoc concurrency


def _cli_run(server: FakeOpenAIServer, out: Path, members: int, *extra: str) -> list[Any]:
    result = run_cli(
        "run",
        str(SCENARIOS / "consensus_game.yaml"),
        "--model",
        "openai/fake-model",
        "--api-base",
        server.base_url,
        "--rounds",
        "1",
        "--members",
        str(members),
        "--out",
        str(out),
        "-q",
        *extra,
    )
    assert result.returncode == 0, result.stderr
    return read_transcript(out).events


def test_adhoc_runs_allow_one_request_per_seat(server: FakeOpenAIServer, tmp_path: Path) -> None:
    # Far more members than the old fixed default of 16 requests in flight.
    members = 40
    server.configure(latency_s=1.0)
    events = _cli_run(server, tmp_path / "run", members)
    (record,) = events[0].models.values()
    assert record["max_concurrent"] == members
    assert {t.status for t in turns(events)} == {"ok"}
    assert server.max_in_flight > 16  # nobody waited behind a fixed cap

    server.reset_stats()
    events = _cli_run(server, tmp_path / "capped", members, "--max-concurrent", "5")
    (record,) = events[0].models.values()
    assert record["max_concurrent"] == 5
    assert server.max_in_flight <= 5


def test_max_concurrent_caps_a_named_profile(tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(json.dumps({"profiles": {"small": {"model": "openai/m", "max_concurrent": 8}}}))
    assert from_flags(models_file=models).seat_profile("small", 100).max_concurrent == 8
    assert from_flags(models_file=models, max_concurrent=3).seat_profile("small", 100).max_concurrent == 3
    assert from_flags(models_file=models, max_concurrent=50).seat_profile("small", 100).max_concurrent == 8
    adhoc = from_flags(model="openai/x", api_base="http://127.0.0.1:1/v1", models_file=models)
    assert adhoc.seat_profile(adhoc.model, 7).max_concurrent == 7


def test_max_concurrent_must_be_positive(tmp_path: Path) -> None:
    result = run_cli("run", str(SCENARIOS / "consensus_game.yaml"), "--max-concurrent", "0", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "--max-concurrent" in result.stderr and "Traceback" not in result.stderr
