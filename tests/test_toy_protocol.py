"""A third protocol, registered from outside `assembly` with one line, end to end.

`tests/toy_protocol/` is a show of hands written against `assembly.core` only. Every
command here is the real CLI in a subprocess with the protocol registered by
`ASSEMBLY_PROTOCOLS`; each must work and show the toy protocol's own presentation,
which proves the general modules ask the registry instead of naming action kinds.
Expected figures are recounted from the raw transcript lines, not taken from the
code under test.
"""

from __future__ import annotations

import csv
import json
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, run_cli

TOY = {"ASSEMBLY_PROTOCOLS": "show_of_hands=tests.toy_protocol:ShowOfHands"}
SCENARIO = ROOT / "tests" / "toy_protocol" / "show_of_hands.yaml"
DESCRIBED = {"yes": "✋ hand up", "no": "hand down", "abstain": "abstains"}


def toy(*args: str) -> Any:
    result = run_cli(*args, env=TOY)
    assert result.returncode == 0, result.stderr
    return result


def raw_events(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "transcript.jsonl").read_text().splitlines() if line.strip()]


def hands(events: list[dict[str, Any]], round: int) -> dict[str, str | None]:
    """member -> its hand in `round` (None: the turn failed)."""
    return {
        e["member"]: (e["action"]["hand"] if e["status"] == "ok" else None)
        for e in events
        if e["type"] == "turn" and e["round"] == round
    }


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[dict[str, Any]]]:
    run_dir = tmp_path_factory.mktemp("toy") / "run"
    # Faults on, so that failed turns and abstentions both reach the figures.
    result = toy("run", str(SCENARIO), "--out", str(run_dir), "--set", "members.sim.faults.timeout_rate=0.25")
    return run_dir, result.stdout, raw_events(run_dir)


def test_run_ends_as_the_toy_protocol_decides_and_counts_its_abstentions(
    toy_run: tuple[Path, str, list[dict[str, Any]]],
) -> None:
    run_dir, stdout, events = toy_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["protocol"] == "show_of_hands" and summary["status"] == "complete"
    last = max(e["round"] for e in events if e["type"] == "round_ended")
    final = [h for h in hands(events, last).values()]
    seated = len(final)
    agreed = [v for v in ("yes", "no") if Fraction(final.count(v), seated) >= Fraction(3, 4)]
    assert summary["decision"] == (agreed[0] if agreed else None)
    # The general liveness figures count the toy's own abstentions (its action class
    # says what abstains) beside failed turns.
    every = [h for r in range(1, last + 1) for h in hands(events, r).values()]
    assert summary["totals"]["abstentions"] == sum(h in (None, "abstain") for h in every)
    assert summary["totals"]["abstentions"] > summary["totals"]["turn_timeouts"] > 0
    # The end-of-run table shows the toy's figures under its own short headers.
    assert re.search(r"\brd\s+up\s+hands\s+t/o\b", stdout), stdout


def test_replay_and_check_show_the_toy_presentation(toy_run: tuple[Path, str, list[dict[str, Any]]]) -> None:
    run_dir, _, events = toy_run
    out = toy("replay", str(run_dir)).stdout
    every = [h for e in events if e["type"] == "turn" and (h := (e.get("action") or {}).get("hand"))]
    for hand, text in DESCRIBED.items():
        assert out.count(text) == every.count(hand), hand
    assert "recomputed identically" in toy("replay", str(run_dir), "--check").stdout


def test_replay_as_a_member_shows_what_it_heard_in_the_toy_presentation(
    toy_run: tuple[Path, str, list[dict[str, Any]]],
) -> None:
    run_dir, _, events = toy_run
    out = toy("replay", str(run_dir), "--as", "member_3").stdout
    round_2 = out.split("round 2 · raise_hands")[1].split("round 3 · raise_hands")[0]
    heard = {m: h for m, h in hands(events, 1).items() if h is not None}
    for member, hand in heard.items():
        assert re.search(rf"^\s*1\s+{member}\s+{re.escape(DESCRIBED[hand])}", round_2, re.M), member
    failed = [m for m, h in hands(events, 1).items() if h is None]
    for member in failed:  # a failed turn is heard by nobody
        assert not re.search(rf"^\s*1\s+{member}\s", round_2, re.M), member


def test_report_uses_the_toy_figures_and_positions(
    toy_run: tuple[Path, str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    run_dir, _, events = toy_run
    page = tmp_path / "report.html"
    toy("report", str(run_dir), "-o", str(page))
    html = page.read_text()
    rounds = sorted({e["round"] for e in events if e["type"] == "round_ended"})
    for r in rounds:
        shown = list(hands(events, r).values())
        assert f'<span class="badge">hands up {shown.count("yes") / len(shown):.3f}</span>' in html
    # Every answered hand is listed with the toy's position, and so is the decision.
    positions = re.findall(r'<span class="pos">(yes|no|abstain)</span>', html)
    spoken = [h for r in rounds for h in hands(events, r).values() if h is not None]
    decision = next(e["decision"] for e in events if e["type"] == "run_ended")
    assert sorted(positions) == sorted([*spoken, decision])
    assert '<th class="num">hands up</th>' in html and "dispersion" not in html


def test_a_sweep_of_the_toy_protocol_runs_every_cell(tmp_path: Path) -> None:
    (tmp_path / "hands.yaml").write_text(SCENARIO.read_text())
    (tmp_path / "sweep.yaml").write_text(
        "name: hands\nscenario: hands.yaml\ngrid:\n  protocol.agree_share: [0.75, 1.0]\nseeds: 1\n"
    )
    toy("sweep", str(tmp_path / "sweep.yaml"), "--out", str(tmp_path / "out"))
    with open(tmp_path / "out" / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["protocol.agree_share"] for r in rows) == ["0.75", "1.0"]
    for row in rows:
        assert (row["protocol"], row["status"]) == ("show_of_hands", "complete")
        events = raw_events(tmp_path / "out" / "runs" / row["run"])
        last_tally = [e for e in events if e["type"] == "tally"][-1]
        assert float(row["final_hands_up"]) == last_tally["support"]["yes"]


def test_an_unregistered_protocol_is_a_clear_error(toy_run: tuple[Path, str, list[dict[str, Any]]]) -> None:
    run_dir, _, _ = toy_run
    result = run_cli("replay", str(run_dir), env={"ASSEMBLY_PROTOCOLS": ""})
    assert result.returncode == 2
    assert "unknown protocol 'show_of_hands'" in result.stderr and "ASSEMBLY_PROTOCOLS" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("show_of_hands", "is not kind=package.module:Class"),
        ("show_of_hands=tests.no_such_module:ShowOfHands", "cannot import 'tests.no_such_module'"),
        ("show_of_hands=tests.toy_protocol.actions:Hand", "not a subclass of"),
        ("hands=tests.toy_protocol:ShowOfHands", "is named 'show_of_hands', not 'hands'"),
        ("assembly=tests.toy_protocol:ShowOfHands", "'assembly' is already registered"),
    ],
)
def test_a_bad_registration_is_one_clear_error(entry: str, message: str) -> None:
    result = run_cli("validate", str(SCENARIO), env={"ASSEMBLY_PROTOCOLS": entry})
    assert result.returncode == 2
    assert result.stderr.startswith("error: ASSEMBLY_PROTOCOLS") and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
