"""Re-execute, fork and resume a run from its transcript."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from assembly.core.errors import UserError
from assembly.core.events import RoundEnded, RoundStarted, RunEnded, RunInterrupted, RunStarted, SeatedMember, Turn
from assembly.core.member import Request, TurnResult
from assembly.core.transcript import canonical, read_transcript
from assembly.core.view import View
from assembly.inspection.reexecute import DROPPED, compare, fork, rerun, resume
from assembly.llm.member import factory_for
from assembly.llm.profiles import ModelProfile
from assembly.llm.setup import LLMSetup
from assembly.protocols.facilitated.actions import Ballot, Speech
from assembly.scenario.loading import build_scenario
from assembly.scenario.model import Scenario
from tests.conftest import run_cli
from tests.fake_openai import FakeOpenAIServer
from tests.helpers import run, scenario


def _rounds(events: list[Any], keep: Any) -> list[Any]:
    return [e for e in events if getattr(e, "round", None) is not None and keep(e.round)]


def _no_timing(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k != "timing"}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sim run with every kind of liveness event, long enough to fork and cut."""
    out = tmp_path_factory.mktemp("source") / "run"
    sc = scenario(
        "hidden_profile",
        **{
            "members.sim.faults.timeout_rate": 0.1,
            "members.sim.faults.malformed_rate": 0.2,
            "members.sim.faults.provider_error_rate": 0.1,
            "members.sim.max_retries": 1,
            "rounds": 6,
            "protocol.first_vote_round": 4,
        },
    )
    summary, events = run(sc, out)
    assert summary["rounds"] >= 4, "precondition: enough rounds to fork and cut"
    statuses = {e.status for e in events if isinstance(e, Turn)}
    assert {"ok", "timeout", "malformed", "provider_error"} <= statuses
    return out


# ----------------------------------------------------------------------------- rerun


@pytest.mark.parametrize("name", ["citizens_assembly", "split_51_49", "consensus_game"])
def test_rerun_reproduces_a_sim_run_exactly(tmp_path: Path, name: str) -> None:
    run(scenario(name), tmp_path / "src")
    result = asyncio.run(rerun(tmp_path / "src", tmp_path / "again"))
    assert result.comparison.identical, result.comparison.first_difference
    assert canonical(read_transcript(tmp_path / "src").events) == canonical(read_transcript(tmp_path / "again").events)
    assert result.summary == {
        **json.loads((tmp_path / "src" / "summary.json").read_text()),
        "run_id": "again",
        "timing": result.summary["timing"],
    }


def test_rerun_reports_where_a_transcript_differs(source: Path, tmp_path: Path) -> None:
    """The comparison is not vacuous: an edited source is caught at the edited event."""
    edited = tmp_path / "edited"
    shutil.copytree(source, edited)
    lines = (edited / "transcript.jsonl").read_text().splitlines(keepends=True)
    i = next(i for i, line in enumerate(lines) if '"phase":"speak","member":"member_4","status":"ok"' in line)
    lines[i] = lines[i].replace('"message":"I favour', '"message":"I rather favour', 1)
    (edited / "transcript.jsonl").write_text("".join(lines))
    result = asyncio.run(rerun(edited, tmp_path / "again"))
    assert not result.comparison.identical
    assert result.comparison.first_difference is not None
    assert result.comparison.first_difference.startswith(f"event {i + 1}: action.message")


class Slow:
    """Times out (is cancelled by the engine) in round 1's speak phase; counts calls."""

    calls: ClassVar[dict[str, list[tuple[int, str]]]] = {}

    def __init__(self, seat: SeatedMember) -> None:
        self.id = seat.id

    async def act(self, view: View, request: Request) -> TurnResult:
        Slow.calls.setdefault(self.id, []).append((request.round, request.phase))
        if (request.round, request.phase) == (1, "speak"):
            await asyncio.Event().wait()  # only the engine's cancellation ends this
        if request.action is Speech:
            speech = Speech(message=f"{self.id} says A", position="A", scores={"A": 0.8, "B": 0.2}, disclose=[])
            return TurnResult(speech)
        if request.action is Ballot:
            return TurnResult(Ballot(choice="A"))
        raise AssertionError(f"unexpected {request.action.__name__}")


def test_rerun_replays_cancelled_turns_without_calling_the_member(tmp_path: Path) -> None:
    data: dict[str, Any] = {
        "name": "slow",
        "question": "A or B?",
        "options": [{"id": "A", "text": "a"}, {"id": "B", "text": "b"}],
        "population": {
            "size": 4,
            "roles": [
                {"name": "sim", "share": 0.5},
                {"name": "scripted", "share": 0.5, "policy": "llm", "profile": "scripted"},
            ],
        },
        "protocol": {"kind": "assembly", "max_rounds": 3, "turn_timeout_s": 0.3, "first_vote_round": 1},
        "members": {"sim": {"latency": {"median_s": 0.0}}},
    }
    sc = build_scenario(data, {})

    def factory(seat: SeatedMember, *_: Any) -> Slow:
        return Slow(seat)

    run(sc, tmp_path / "src", factory=factory)
    src_events = read_transcript(tmp_path / "src").events
    cancelled = [e for e in src_events if isinstance(e, Turn) and e.status == "timeout"]
    assert len(cancelled) == 2 and all(e.latency_s is None for e in cancelled)
    Slow.calls.clear()
    result = asyncio.run(rerun(tmp_path / "src", tmp_path / "again", factory=factory))
    assert result.comparison.identical, result.comparison.first_difference
    for member, calls in Slow.calls.items():
        assert (1, "speak") not in calls, f"{member} was called for a turn that had timed out"
        assert calls, "the scripted members answered their other turns live"


# ----------------------------------------------------------------------------- fork


def test_fork_without_changes_continues_exactly_like_the_source(source: Path, tmp_path: Path) -> None:
    """Folding rounds 1-2 and continuing live must give the uninterrupted run."""
    out, summary = asyncio.run(fork(source, 3, {}, tmp_path / "fork"))
    src, new = read_transcript(source).events, read_transcript(out).events
    assert canonical(new[1:]) == canonical(src[1:])
    assert _no_timing(summary) == {**_no_timing(json.loads((source / "summary.json").read_text())), "run_id": "fork"}


@pytest.mark.parametrize("change", [{"members.sim.susceptibility": 0.95}, {"seed": 99}])
def test_fork_keeps_the_prefix_and_changes_the_continuation(
    source: Path, tmp_path: Path, change: dict[str, Any]
) -> None:
    out, _ = asyncio.run(fork(source, 3, change, tmp_path / "fork"))
    src, new = read_transcript(source).events, read_transcript(out).events
    assert canonical(_rounds(new, lambda r: r < 3)) == canonical(_rounds(src, lambda r: r < 3))
    assert canonical(new[1:2]) == canonical(src[1:2]), "the seating is part of the kept prefix"
    assert canonical(_rounds(new, lambda r: r >= 3)) != canonical(_rounds(src, lambda r: r >= 3))
    started = new[0]
    assert isinstance(started, RunStarted)
    assert started.parent is not None
    assert (started.parent["run"], started.parent["from_round"], started.parent["mode"]) == ("run", 3, "fork")
    key, value = next(iter(change.items()))
    assert started.parent["overrides"] == {key: value}
    res = run_cli("replay", str(out), "--check")
    assert res.returncode == 0, res.stdout + res.stderr


def test_fork_refuses_changes_that_would_rewrite_the_prefix(source: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="population"):
        asyncio.run(fork(source, 2, {"members": 20}, tmp_path / "a"))
    with pytest.raises(UserError, match="between 1 and"):
        asyncio.run(fork(source, 42, {}, tmp_path / "b"))
    res = run_cli("rerun", str(source), "--set", "members.sim.susceptibility=0.9")
    assert res.returncode == 2 and "--from-round" in res.stderr


# ----------------------------------------------------------------------------- resume


def _cut(source: Path, dest: Path, at: Any, tail: str = "") -> None:
    """Copy a run and cut its transcript after line index `at(lines)`, plus `tail` text."""
    dest.mkdir(parents=True)
    lines = (source / "transcript.jsonl").read_text().splitlines(keepends=True)
    (dest / "transcript.jsonl").write_text("".join(lines[: at(lines)]) + tail)


def _line_of(lines: list[str], kind: str, n: int) -> int:
    return [i for i, line in enumerate(lines) if f'"type":"{kind}"' in line][n]


CUTS = {
    "mid-round": (lambda ls: _line_of(ls, "round_ended", 1) + 7, ""),
    "mid-round, torn last line": (lambda ls: _line_of(ls, "round_ended", 1) + 7, '{"type":"turn","round":3,"ph'),
    "right after a round": (lambda ls: _line_of(ls, "round_ended", 2) + 1, ""),
    "after the stopping round, before run_ended": (lambda ls: len(ls) - 1, ""),
    "interrupted by the user": (
        lambda ls: _line_of(ls, "round_ended", 0) + 4,
        json.dumps({"type": "run_interrupted", "round": 2, "reason": "interrupted by the user"}, separators=(",", ":"))
        + "\n",
    ),
    "before any round": (lambda ls: 2, ""),
}


@pytest.mark.parametrize("cut", list(CUTS))
def test_resume_gives_the_uninterrupted_result(source: Path, tmp_path: Path, cut: str) -> None:
    at, tail = CUTS[cut]
    run_dir = tmp_path / "run"
    _cut(source, run_dir, at, tail)
    before = read_transcript(run_dir)
    result = resume(run_dir)
    expected = json.loads((source / "summary.json").read_text())
    assert _no_timing(result.summary) == _no_timing(expected)
    assert _no_timing(json.loads((run_dir / "summary.json").read_text())) == _no_timing(expected)
    assert canonical(read_transcript(run_dir).events) == canonical(read_transcript(source).events)
    assert result.torn == (before.torn is not None)
    kept_rounds = {e.round for e in before.events if isinstance(e, RoundEnded) and not e.stop}
    assert result.from_round == max(kept_rounds, default=0) + 1
    dropped = run_dir / DROPPED
    if result.dropped_events or result.torn:
        assert len(dropped.read_text().splitlines()) == result.dropped_events + int(result.torn)
    started = read_transcript(run_dir).events[0]
    assert started.parent["mode"] == "resume" and started.parent["from_round"] == result.from_round


def test_resume_after_the_last_round_concludes_at_the_round_limit(tmp_path: Path) -> None:
    sc = scenario("citizens_assembly", **{"rounds": 3, "protocol.decision_rule": {"kind": "unanimity"}})
    summary, _ = run(sc, tmp_path / "src")
    assert summary["cause"] in ("round_limit", "quorum_not_met") and summary["rounds"] == 3
    _cut(tmp_path / "src", tmp_path / "run", lambda ls: len(ls) - 1)  # killed just before run_ended
    result = resume(tmp_path / "run")
    assert result.from_round == 4 and result.dropped_events == 0
    assert _no_timing(result.summary) == _no_timing(summary)


def test_resume_a_finished_run_only_rewrites_its_summary(source: Path, tmp_path: Path) -> None:
    """Killed after `run_ended` but before summary.json: nothing to run, only bookkeeping."""
    run_dir = tmp_path / "run"
    shutil.copytree(source, run_dir)
    (run_dir / "summary.json").unlink()
    before = (run_dir / "transcript.jsonl").read_bytes()
    result = resume(run_dir)
    assert (run_dir / "transcript.jsonl").read_bytes() == before
    assert json.loads((run_dir / "summary.json").read_text()) == json.loads((source / "summary.json").read_text())
    assert result.dropped_events == 0


def test_resume_from_the_command_line(source: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _cut(source, run_dir, lambda ls: _line_of(ls, "round_ended", 1) + 3, '{"type":"tur')
    res = run_cli("resume", str(run_dir), "--quiet")
    assert res.returncode == 0, res.stderr
    assert "resumed from round 3" in res.stdout
    events = read_transcript(run_dir).events
    assert isinstance(events[-1], RunEnded)
    assert not any(isinstance(e, RunInterrupted) for e in events)
    assert run_cli("replay", str(run_dir), "--check").returncode == 0


def test_compare_ignores_timing_but_nothing_else() -> None:
    a = [RoundEnded(round=1, timing={"wall_s": 1.0}), RoundStarted(round=2, framing="x")]
    b = [RoundEnded(round=1, timing={"wall_s": 2.0}), RoundStarted(round=2, framing="y")]
    result = compare(a, b)
    assert not result.identical and result.first_difference == 'event 2: framing: source "x", rerun "y"'
    assert compare(a[:1], b[:1]).identical


# ----------------------------------------------------------------------------- LLM runs (loopback server)


_profiles = itertools.count()


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(seed=5, hang_s=60.0) as srv:
        yield srv


def _llm(srv: FakeOpenAIServer, tmp: Path, **overrides: Any) -> tuple[Scenario, LLMSetup]:
    name = f"rerun-fake-{next(_profiles)}"  # unique: rate limiters are per profile and process
    profile = ModelProfile(
        name=name,
        model="openai/fake-model",
        client="openai",
        api_base=srv.base_url,
        timeout_s=30.0,
        retries=4,
        max_concurrent=32,
        backoff_base_s=0.01,
        backoff_max_s=0.05,
    )
    sc = scenario(
        "citizens_assembly",
        **{
            "members": 6,
            "rounds": 2,
            "turn_timeout": 1.0,
            "population.roles.0.quota.min": 1,
            "population.roles.1.quota.min": 1,
            "members.policy": "llm",
            "members.profile": name,
            "facilitator.policy": "llm",
            "facilitator.profile": name,
            **overrides,
        },
    )
    return sc, LLMSetup(profiles={name: profile})


def test_rerun_of_an_llm_run_replays_answers_timeouts_and_provider_errors_without_a_call(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    # The first request to arrive hangs past the deadline, the next ones fail like a
    # 5xx and a 429 and are retried, one answer is unusable and re-asked.
    server.configure(fault_script=["hang", "server_error", "rate_limit", "malformed"])
    sc, setup = _llm(server, tmp_path)
    _, events = run(sc, tmp_path / "src", factory=factory_for(setup))
    turns = [e for e in events if isinstance(e, Turn)]
    assert sum(t.status == "timeout" for t in turns) == 1
    outcomes = [a.outcome for t in turns for a in t.attempts]
    assert outcomes.count("provider_error") == 2 and outcomes.count("malformed") == 1
    calls = server.request_count

    result = asyncio.run(rerun(tmp_path / "src", tmp_path / "again"))
    assert server.request_count == calls, "a rerun must not call the model"
    assert result.comparison.identical, result.comparison.first_difference
    assert result.ignored == ("cache_hit",)
    assert run_cli("replay", str(tmp_path / "again"), "--check").returncode == 0


def test_fork_of_an_llm_run_keeps_the_prefix_and_continues_live(server: FakeOpenAIServer, tmp_path: Path) -> None:
    sc, setup = _llm(server, tmp_path, rounds=3)
    _, src = run(sc, tmp_path / "src", factory=factory_for(setup))
    calls = server.request_count
    # An empty setup: the recorded profiles alone must be enough to continue.
    out, _ = asyncio.run(fork(tmp_path / "src", 3, {"protocol.candidates": 2}, tmp_path / "fork", setup=LLMSetup()))
    assert server.request_count > calls, "the fork continues live"
    new = read_transcript(out).events
    assert canonical(_rounds(new, lambda r: r < 3)) == canonical(_rounds(src, lambda r: r < 3))
    synth = [e for e in new if isinstance(e, Turn) and e.phase == "synthesize" and e.round == 3]
    assert synth and synth[0].status == "ok" and synth[0].action is not None
    assert len(synth[0].action["candidates"]) <= 2
