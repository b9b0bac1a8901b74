"""Command-line conventions: --version, completion, clean help, flag parity between
`run`, `sweep` and `rerun`, and --set/--max-concurrent on sweeps."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from assembly import __version__
from assembly.core.transcript import read_transcript
from tests.conftest import SCENARIOS, run_cli

SWEEP = """\
name: parity
scenario: {scenario}
grid:
  members: [4, 6]
set:
  rounds: 2
seeds: 1
concurrency: 2
"""


def _sweep(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sweep.yaml"
    path.write_text(SWEEP.format(scenario=SCENARIOS / "hidden_profile.yaml"))
    return path


def _options(command: str) -> set[str]:
    done = run_cli(command, "--help")
    assert done.returncode == 0, done.stderr
    return set(re.findall(r"--[a-z][a-z-]+", done.stdout))


def test_version_and_shell_completion() -> None:
    done = run_cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"assembly {__version__}"
    help_text = run_cli("--help").stdout
    assert "--install-completion" in help_text and "--show-completion" in help_text
    shown = run_cli("--show-completion", "bash", env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert shown.returncode == 0 and "complete" in shown.stdout


def test_help_shows_no_type_after_flags() -> None:
    for command in ("run", "sweep", "rerun", "replay", "models"):
        text = run_cli(command, "--help").stdout
        assert "<bool>" not in text and "BOOLEAN" not in text, command
        assert re.search(r"-q, --quiet\s+\S", text) or command in ("models", "replay"), command


def test_sweep_and_rerun_take_the_flags_run_has() -> None:
    run, sweep, rerun = _options("run"), _options("sweep"), _options("rerun")
    model_flags = {"--model", "--api-base", "--client", "--api-key-env", "--models", "--cache", "--max-concurrent"}
    assert model_flags <= run and model_flags <= sweep and model_flags <= rerun
    assert {"--set", "--max-cost", "--quiet"} <= sweep


def test_sweep_set_applies_to_every_run_and_guards_the_grid(tmp_path: Path) -> None:
    spec = _sweep(tmp_path / "spec")
    out = tmp_path / "out"
    done = run_cli("sweep", str(spec), "--out", str(out), "-q", "--set", "protocol.quorum=0.75")
    assert done.returncode == 0, done.stderr
    for run in pd.read_csv(out / "results.csv")["run"]:
        assert read_transcript(out / "runs" / run).started.scenario["protocol"]["quorum"] == 0.75
    for bad, why in (("members=8", "grid factor"), ("population.size=8", "grid factor"), ("seed=3", "seeds")):
        refused = run_cli("sweep", str(spec), "--out", str(tmp_path / "x"), "--set", bad)
        assert refused.returncode == 2 and why in refused.stderr and "Traceback" not in refused.stderr, bad
        assert not (tmp_path / "x").exists()


def test_max_concurrent_caps_the_profiles_a_run_records(tmp_path: Path) -> None:
    from tests.fake_openai import FakeOpenAIServer

    with FakeOpenAIServer(seed=4) as server:
        flags = ["--model", "openai/fake-model", "--api-base", server.base_url, "--members", "4", "--rounds", "1"]
        done = run_cli(
            "run",
            str(SCENARIOS / "hidden_profile.yaml"),
            *flags,
            "--max-concurrent",
            "3",
            "--out",
            str(tmp_path / "run"),
            "-q",
        )
        assert done.returncode == 0, done.stderr
        models = read_transcript(tmp_path / "run").started.models or {}
        assert [m["max_concurrent"] for m in models.values()] == [3]  # --model's default is 16
        sweep = run_cli(
            "sweep", str(_sweep(tmp_path / "spec")), "--model", "openai/fake-model", "--api-base", server.base_url,
            "--max-concurrent", "2", "--out", str(tmp_path / "sweep"), "-q",
        )  # fmt: skip
        assert sweep.returncode == 0, sweep.stderr
        for run in pd.read_csv(tmp_path / "sweep" / "results.csv")["run"]:
            recorded = read_transcript(tmp_path / "sweep" / "runs" / run).started.models or {}
            assert [m["max_concurrent"] for m in recorded.values()] == [2]
        # A rerun replays from the cache; the cap changes no answer.
        rerun = run_cli("rerun", str(tmp_path / "run"), "--max-concurrent", "1", "--out", str(tmp_path / "again"))
        assert rerun.returncode == 0 and "identical" in rerun.stdout, rerun.stdout + rerun.stderr
    summary = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert summary["totals"]["calls"] == summary["totals"]["cache_hits"] > 0
