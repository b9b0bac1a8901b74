"""Provenance in `run_started`: git commit, scrubbed command line, host, CPUs, Python."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
from pathlib import Path

import pytest

from assembly.core.provenance import REDACTED, command_line, git_commit, scrub_command
from assembly.core.transcript import NONDETERMINISTIC_KEYS, canonical, read_transcript
from tests.conftest import ROOT, SCENARIOS, run_cli

CANARY = "sk-canary0123456789abcdef"


def test_secrets_are_scrubbed_from_the_command_line() -> None:
    env = {"MY_PROVIDER_API_KEY": "plain-value-42", "HOME": "/root"}
    argv = [
        "assembly",
        "run",
        "x.yaml",
        "--api-base",
        "http://alice:hunter2@127.0.0.1:8000/v1",
        "--api-key",
        "anything-at-all",
        "--token=abc123456",
        "--set",
        "members.llm.api_key=zzz999999",
        "--set",
        f"question=use {CANARY} please",
        "--note",
        "plain-value-42 again",
        "--api-key-env",
        "MY_PROVIDER_API_KEY",
    ]
    out = scrub_command(argv, env)
    text = " ".join(out)
    for secret in ("hunter2", "alice", "anything-at-all", "abc123456", "zzz999999", CANARY, "plain-value-42"):
        assert secret not in text, secret
    assert out[4] == f"http://{REDACTED}@127.0.0.1:8000/v1"
    assert out[5:7] == ["--api-key", REDACTED]
    assert out[-2:] == ["--api-key-env", "MY_PROVIDER_API_KEY"]  # a variable's NAME is not a secret
    assert out[:3] == ["assembly", "run", "x.yaml"]  # everything else is kept as it was


def test_the_module_form_is_shown_as_the_command() -> None:
    line = command_line([str(ROOT / "assembly" / "cli.py"), "run", "a b.yaml"])
    assert line == "assembly run 'a b.yaml'"


def test_no_commit_outside_a_checkout_holding_the_package(tmp_path: Path) -> None:
    assert git_commit(str(tmp_path)) is None  # not a checkout
    if subprocess.run(["git", "init", "-q", str(tmp_path)], check=False).returncode != 0:
        pytest.skip("git is not available")
    assert git_commit(str(tmp_path)) is None  # a checkout, but of something else


def test_run_started_records_provenance_and_comparisons_ignore_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = run_cli(
        "run",
        str(SCENARIOS / "hidden_profile.yaml"),
        "--out",
        str(out),
        "-q",
        "--set",
        f"description=key {CANARY}",
        env={"CANARY_API_KEY": CANARY},
    )
    assert done.returncode == 0, done.stderr
    started = read_transcript(out).started
    prov = started.provenance
    assert prov is not None
    assert prov["host"] == socket.gethostname() and prov["cpus"] == os.cpu_count()
    assert prov["python"] == platform.python_version()
    assert prov["command"].startswith("assembly run ") and "--out" in prov["command"]
    assert CANARY not in prov["command"] and REDACTED in prov["command"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    if head.returncode == 0:  # the tests run from a checkout: its commit is recorded
        assert prov["git_commit"] == head.stdout.strip()
        assert isinstance(prov["git_dirty"], bool)
    assert "provenance" in NONDETERMINISTIC_KEYS
    assert "provenance" not in json.dumps(canonical([started]))


def test_the_run_report_shows_provenance(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run_cli("run", str(SCENARIOS / "hidden_profile.yaml"), "--out", str(out), "-q").returncode == 0
    assert run_cli("report", str(out)).returncode == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    prov = read_transcript(out).started.provenance or {}
    assert 'id="provenance"' in html
    assert prov["host"] in html and f"Python {prov['python']}" in html
    if "git_commit" in prov:
        assert prov["git_commit"][:12] in html
