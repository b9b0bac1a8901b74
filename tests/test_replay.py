"""`assembly replay`: the walk-through, `--as` views, `--check`, torn lines, inert member text."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from assembly.core.events import Disclosure, RoundEnded, RunEnded, Seated, SeatedMember, Turn
from assembly.core.faults import SeededFaults
from assembly.core.member import Request, TurnResult
from assembly.core.transcript import read_transcript
from assembly.core.view import View
from assembly.inspection.replay import check, follow, open_transcript, walkthrough
from assembly.inspection.view_as import rebuild
from assembly.protocols.facilitated.actions import Ballot, Speech
from assembly.protocols.facilitated.sim import SimMember
from assembly.scenario.loading import load_scenario
from tests.conftest import SCENARIOS, run_cli
from tests.helpers import run, scenario, tiny

WIDE = {"COLUMNS": "220"}


def _render(parts: Any) -> str:
    console = Console(width=220, record=True, file=open("/dev/null", "w"), color_system=None)  # noqa: SIM115
    for part in parts:
        console.print(part)
    return console.export_text()


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run with timeouts and malformed turns, so liveness marks have something to show."""
    out = tmp_path_factory.mktemp("faulty") / "run"
    sc = scenario(
        "citizens_assembly",
        **{
            "members.sim.faults.timeout_rate": 0.15,
            "members.sim.faults.malformed_rate": 0.4,
            "members.sim.max_retries": 0,
            "rounds": 4,
        },
    )
    run(sc, out)
    return out


def test_walkthrough_shows_every_round_and_marks_each_failed_turn(faulty_run: Path) -> None:
    res = run_cli("replay", str(faulty_run), "--no-page", env=WIDE)
    assert res.returncode == 0, res.stderr
    events = read_transcript(faulty_run).events
    rounds = sorted(e.round for e in events if isinstance(e, RoundEnded))
    for r in rounds:
        assert f"Round {r}" in res.stdout
    turns = [e for e in events if isinstance(e, Turn)]
    timeouts = [t for t in turns if t.status == "timeout"]
    malformed = [t for t in turns if t.status == "malformed"]
    assert timeouts and malformed, "precondition: the fault model produced both kinds of failure"
    assert res.stdout.count("⏱ TIMEOUT") == len(timeouts)
    assert res.stdout.count("✗ MALFORMED") == len(malformed)
    end = next(e for e in events if isinstance(e, RunEnded))
    assert end.outcome in res.stdout
    assert "ballots counted" in res.stdout and "quorum" in res.stdout  # the vote with quorum and support
    summary = json.loads((faulty_run / "summary.json").read_text())
    last = summary["per_round"][-1]
    assert f"dispersion {last['dispersion']:.3f}" in res.stdout


def test_round_option_shows_only_that_round(faulty_run: Path) -> None:
    text = _render(walkthrough(open_transcript(faulty_run), only_round=2))
    assert "Round 2" in text
    assert "Round 1" not in text and "Round 3" not in text
    res = run_cli("replay", str(faulty_run), "--round", "99", "--no-page")
    assert res.returncode == 2 and "round 99 is not in this transcript" in res.stderr


# ----------------------------------------------------------------------------- --as


class Spy:
    """A sim member that records every (view, request) the live engine gave it."""

    def __init__(self, seat: SeatedMember, inner: SimMember) -> None:
        self.id = seat.id
        self.inner = inner
        self.calls: list[tuple[View, Request]] = []

    async def act(self, view: View, request: Request) -> TurnResult:
        self.calls.append((view, request))
        return await self.inner.act(view, request)


def _comparable(view: View) -> tuple[Any, ...]:
    return (
        view.member,
        view.round,
        view.phase,
        view.own_facts,
        view.heard_facts,
        view.recent,
        view.own_history,
        view.plenary,
        view.framing,
        view.mentioned,
        view.roster,
    )


@pytest.mark.parametrize("member", ["member_3", "facilitator"])
def test_as_rebuilds_exactly_the_views_and_requests_the_live_engine_gave(tmp_path: Path, member: str) -> None:
    sc = scenario(
        "hidden_profile",
        **{"topology.kind": "tables", "topology.table_size": 4, "rounds": 4, "members.sim.faults.timeout_rate": 0.1},
    )
    spies: list[Spy] = []

    def spy(seat: SeatedMember) -> Spy:
        spies.append(Spy(seat, SimMember(seat.id, sc.members.sim, SeededFaults(sc.members.sim, sc.seed), sc.seed)))
        return spies[-1]

    run(sc, tmp_path / "run", overrides={member: spy})
    live = spies[0].calls
    rebuilt = rebuild(open_transcript(tmp_path / "run"), member)
    assert rebuilt.stopped is None
    assert len(rebuilt.seen) == len(live) >= 3
    for seen, (view, request) in zip(rebuilt.seen, live, strict=True):
        assert seen.view is not None
        assert _comparable(seen.view) == _comparable(view)
        assert (seen.request.round, seen.request.phase, seen.request.action, seen.request.params) == (
            request.round,
            request.phase,
            request.action,
            request.params,
        )


def test_as_shows_own_and_heard_facts_but_never_facts_from_other_tables(tmp_path: Path) -> None:
    sc = scenario(
        "hidden_profile",
        **{"topology.kind": "tables", "topology.table_size": 4, "rounds": 4, "members.sim.disclosure_rate": 0.5},
    )
    _, events = run(sc, tmp_path / "run")
    seated = next(e for e in events if isinstance(e, Seated))
    ids = [m.id for m in seated.members]
    text_of = {f.id: f.text for f in sc.facts}
    for i, seat in enumerate(seated.members):
        audience = {ids[j] for j in seated.audiences[seated.audience_of[i]]}
        heard = {e.fact for e in events if isinstance(e, Disclosure) and e.member in audience} - set(seat.facts)
        elsewhere = {f for m in seated.members for f in m.facts} - set(seat.facts) - heard
        if heard and elsewhere:
            break
    else:
        pytest.fail("precondition: some member heard a fact and missed another")
    res = run_cli("replay", str(tmp_path / "run"), "--as", seat.id, "--no-page", env=WIDE)
    assert res.returncode == 0, res.stderr
    flat = " ".join(res.stdout.split())  # undo rich's line wrapping
    for f in seat.facts:
        assert text_of[f] in flat, f"own fact {f} missing"
    for f in heard:
        assert text_of[f] in flat, f"heard fact {f} missing"
    for f in elsewhere:
        assert text_of[f] not in flat, f"fact {f} was never disclosed within earshot of {seat.id}"


def test_as_unknown_member_is_a_clear_error(faulty_run: Path) -> None:
    res = run_cli("replay", str(faulty_run), "--as", "member_77")
    assert res.returncode == 2
    assert "no member 'member_77'" in res.stderr


# ----------------------------------------------------------------------------- --check


def _shipped_sim_scenarios() -> list[str]:
    names = []
    for path in sorted(SCENARIOS.glob("*.yaml")):
        sc = load_scenario(path)
        if sc.members.policy == "sim":
            names.append(path.stem)
    return names


@pytest.mark.parametrize("name", _shipped_sim_scenarios())
def test_check_passes_on_every_shipped_scenario(tmp_path: Path, name: str) -> None:
    run(scenario(name), tmp_path / name)
    result = check(tmp_path / name)
    assert result.ok, result.differences


def test_check_fails_with_a_clear_diff_when_summary_is_tampered(faulty_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "copy"
    shutil.copytree(faulty_run, run_dir)
    assert run_cli("replay", str(run_dir), "--check").returncode == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["per_round"][1]["dispersion"] = round(summary["per_round"][1]["dispersion"] + 0.1, 6)
    summary["outcome"] = "valid_decision" if summary["outcome"] != "valid_decision" else "no_decision"
    del summary["totals"]["turn_timeouts"]
    (run_dir / "summary.json").write_text(json.dumps(summary))
    res = run_cli("replay", str(run_dir), "--check", env=WIDE)
    assert res.returncode == 1
    assert "per_round[1].dispersion" in res.stdout
    assert "outcome: summary.json has" in res.stdout
    assert "totals.turn_timeouts: missing from summary.json" in res.stdout
    assert "3 figures" in res.stdout


# ----------------------------------------------------------------------------- torn and partial transcripts


def test_torn_last_line_is_reported_by_replay_and_check(faulty_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "torn"
    shutil.copytree(faulty_run, run_dir)
    with open(run_dir / "transcript.jsonl", "a") as fh:
        fh.write('{"type": "turn", "round": 9, "pha')
    res = run_cli("replay", str(run_dir), "--no-page", env=WIDE)
    assert res.returncode == 0, res.stderr
    assert "torn last line" in res.stdout
    res = run_cli("replay", str(run_dir), "--check")
    assert res.returncode == 0  # the torn line is ignored; the figures still match
    assert "torn line" in res.stderr


def test_a_run_cut_mid_round_shows_the_incomplete_round_and_how_to_resume(faulty_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "cut"
    run_dir.mkdir()
    lines = (faulty_run / "transcript.jsonl").read_text().splitlines(keepends=True)
    ends = [i for i, line in enumerate(lines) if '"type":"round_ended"' in line]
    (run_dir / "transcript.jsonl").write_text("".join(lines[: ends[0] + 5]))
    text = _render(walkthrough(open_transcript(run_dir)))
    assert "Round 2 (incomplete: no round_ended event)" in text
    assert "assembly resume" in text


# ----------------------------------------------------------------------------- hostile member text


HOSTILE = (
    "[bold red]PWNED[/] \x1b[2J\x1b]0;title\x07 [link=file:///etc/passwd]x[/link] "
    "<script>alert(1)</script><img src=x onerror=alert(2)>"
)


class Hostile:
    def __init__(self, seat: SeatedMember) -> None:
        self.id = seat.id

    async def act(self, view: View, request: Request) -> TurnResult:
        if request.action is Speech:
            return TurnResult(Speech(message=HOSTILE, position="A", scores={"A": 1.0, "B": 0.0}, disclose=[]))
        return TurnResult(Ballot(choice="A", approve=["A"], ranking=["A", "B"]))


@pytest.fixture
def hostile_run(tmp_path: Path) -> Path:
    run(tiny(4), tmp_path / "hostile", overrides={"member_1": Hostile})
    return tmp_path / "hostile"


def test_member_markup_and_escape_sequences_are_printed_inert(hostile_run: Path) -> None:
    for args in ([], ["--as", "member_2"], ["--as", "member_1"]):
        res = run_cli("replay", str(hostile_run), "--no-page", *args, env=WIDE)
        assert res.returncode == 0, res.stderr
        assert "\x1b" not in res.stdout and "\x07" not in res.stdout
        assert "[bold red]PWNED[/]" in res.stdout  # shown literally, not interpreted
        assert "[link=file:///etc/passwd]x[/link]" in res.stdout


def test_member_html_is_escaped_in_the_report(hostile_run: Path) -> None:
    from assembly.inspection.report import build

    html = build(hostile_run)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not re.search(r"<img[^>]*onerror", html)


# ----------------------------------------------------------------------------- --follow


def test_follow_renders_each_round_as_a_live_run_writes_it(faulty_run: Path, tmp_path: Path) -> None:
    lines = (faulty_run / "transcript.jsonl").read_text().splitlines(keepends=True)
    live = tmp_path / "live"
    live.mkdir()
    target = live / "transcript.jsonl"
    target.write_text(lines[0])

    def writer() -> None:
        with open(target, "a") as fh:
            for line in lines[1:]:
                time.sleep(0.002)
                fh.write(line[: len(line) // 2])  # half a line first: a reader must wait for the rest
                fh.flush()
                fh.write(line[len(line) // 2 :])
                fh.flush()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        text = _render(follow(live, poll_s=0.005))
    finally:
        thread.join()
    rounds = [e.round for e in read_transcript(faulty_run).events if isinstance(e, RoundEnded)]
    for r in rounds:
        assert f"Round {r}" in text
    assert "outcome" in text and "incomplete" not in text


# ----------------------------------------------------------------------------- LLM members: the exact prompt


def test_as_shows_the_exact_prompt_each_llm_member_was_sent(tmp_path: Path) -> None:
    from assembly.llm.member import factory_for
    from assembly.llm.profiles import ModelProfile
    from assembly.llm.setup import LLMSetup
    from tests.fake_openai import FakeOpenAIServer

    with FakeOpenAIServer(seed=3) as srv:
        profile = ModelProfile(
            name="replay-as-fake",
            model="openai/fake-model",
            client="openai",
            api_base=srv.base_url,
            timeout_s=30.0,
            retries=2,
            max_concurrent=32,
        )
        sc = scenario(
            "citizens_assembly",
            **{
                "members": 5,
                "rounds": 2,
                "protocol.first_vote_round": 1,
                "population.roles.0.quota.min": 1,
                "population.roles.1.quota.min": 1,
                "members.policy": "llm",
                "members.profile": profile.name,
                "facilitator.policy": "llm",
                "facilitator.profile": profile.name,
            },
        )
        _, events = run(sc, tmp_path / "run", factory=factory_for(LLMSetup(profiles={profile.name: profile})))
        sent = sorted((r["body"]["messages"][0]["content"], r["body"]["messages"][1]["content"]) for r in srv.requests)
    transcript = open_transcript(tmp_path / "run")
    seated = next(e for e in events if isinstance(e, Seated))
    rebuilt = []
    for seat in [*seated.members, seated.facilitator]:
        assert seat is not None and seat.policy == "llm"
        for seen in rebuild(transcript, seat.id).seen:
            assert seen.prompt is not None, seen.prompt_note
            rebuilt.append((seen.prompt.system, seen.prompt.user))
    assert len(sent) == sum(isinstance(e, Turn) for e in events)  # one request per turn: no retries here
    assert sorted(rebuilt) == sent
    # Round 1 always exists (a vote may end the run there).
    res = run_cli("replay", str(tmp_path / "run"), "--as", "member_0", "--round", "1", "--no-page", env=WIDE)
    assert res.returncode == 0, res.stderr
    assert "prompt · system" in res.stdout and "prompt · user" in res.stdout
    assert run_cli("replay", str(tmp_path / "run"), "--check").returncode == 0


def test_an_unreadable_schema_version_is_named_by_every_reader(faulty_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "future"
    shutil.copytree(faulty_run, run_dir)
    lines = (run_dir / "transcript.jsonl").read_text().splitlines(keepends=True)
    lines[0] = lines[0].replace('"schema_version":1', '"schema_version":99', 1)
    (run_dir / "transcript.jsonl").write_text("".join(lines))
    for args in (
        ["replay", str(run_dir)],
        ["replay", str(run_dir), "--check"],
        ["rerun", str(run_dir)],
        ["resume", str(run_dir)],
        ["report", str(run_dir)],
    ):
        res = run_cli(*args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert "schema version 99" in res.stderr and "Traceback" not in res.stderr
