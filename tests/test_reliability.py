"""Reliability under provider faults, and secrets kept out of every output.

The LLM-path helpers (loopback server, profiles, small LLM scenarios) come from
tests/test_llm_runs.py so both files exercise the same setup.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assembly.core.events import RunEnded
from tests.conftest import run_cli
from tests.fake_openai import FakeOpenAIServer
from tests.test_llm_runs import CANARY_KEY, KEY_ENV, _canary_key, attempts, llm_scenario, make_profile, run, turns

__all__ = ["_canary_key"]  # the autouse fixture that puts the canary key in the environment

# Half of all requests fail, in every way a provider can fail.
FIFTY_PERCENT = {
    "rate_limit": 0.1,
    "server_error": 0.1,
    "malformed": 0.1,
    "empty": 0.05,
    "disconnect": 0.1,
    "hang": 0.05,
}
RECORDED_AS = {
    "rate_limit": "rate_limit",
    "server_error": "server_error",
    "malformed": "invalid_json",
    "empty": "empty",
    "disconnect": "connection",
    "hang": "timeout",
}


@pytest.fixture
def server() -> FakeOpenAIServer:
    with FakeOpenAIServer(seed=50, hang_s=60.0) as srv:
        yield srv  # type: ignore[misc]


@pytest.mark.parametrize(
    ("client_kind", "scenario_name"), [("openai", "consensus_game"), ("litellm", "citizens_assembly")]
)
def test_fifty_percent_faults_every_one_an_event(
    server: FakeOpenAIServer, client_kind: str, scenario_name: str, tmp_path: Path
) -> None:
    server.configure(fault_rates=FIFTY_PERCENT)
    profile = make_profile(server, client_kind, retries=3, timeout_s=0.5)
    summary, events = run(
        llm_scenario(scenario_name, profile.name, rounds=3, turn_timeout=20), tmp_path / "run", profile
    )
    assert summary["status"] == "complete" and isinstance(events[-1], RunEnded)
    recorded = attempts(events)
    assert len(recorded) == server.request_count, "every request the server saw is an attempt on an event"
    faults = server.fault_counts
    assert sum(faults[k] for k in FIFTY_PERCENT) >= 0.3 * server.request_count
    for kind, error_kind in RECORDED_AS.items():
        assert sum(a.error_kind == error_kind for a in recorded) == faults[kind], kind
    t = summary["totals"]
    assert t["retries"] == len(recorded) - len(turns(events))
    assert t["malformed"] + t["provider_errors"] == sum(
        x.status in ("malformed", "provider_error") for x in turns(events)
    )


def test_canary_key_never_reaches_any_output(server: FakeOpenAIServer, tmp_path: Path) -> None:
    """The server echoes the key back in a 401, as real providers do; the key must not
    reach the transcript, summary, cache, report, replay or any message we print."""
    server.configure(fault_rates={"auth_error": 0.3, "server_error": 0.2})
    out = tmp_path / "run"
    res = run_cli(
        "run",
        "scenarios/consensus_game.yaml",
        "--members",
        "4",
        "--rounds",
        "2",
        "--model",
        "openai/fake-model",
        "--api-base",
        server.base_url,
        "--api-key-env",
        KEY_ENV,
        "--out",
        str(out),
        "--quiet",
        env={KEY_ENV: CANARY_KEY},
    )
    assert res.returncode == 0, res.stderr
    assert any(r["authorization"] == f"Bearer {CANARY_KEY}" for r in server.requests), "the key was used"
    outputs = [res.stdout, res.stderr]
    for args in (
        ["replay", str(out), "--no-page"],
        ["replay", str(out), "--as", "agent_0", "--no-page"],
        ["replay", str(out), "--check"],
        ["report", str(out), "-o", str(tmp_path / "r.html")],
    ):
        r = run_cli(*args, env={KEY_ENV: CANARY_KEY})
        assert r.returncode == 0, (args, r.stderr)
        outputs += [r.stdout, r.stderr]
    files = [p for p in [*out.rglob("*"), tmp_path / "r.html"] if p.is_file()]
    assert any(p.name == "transcript.jsonl" for p in files)
    for p in files:
        assert CANARY_KEY.encode() not in p.read_bytes(), p
    for text in outputs:
        assert CANARY_KEY not in text
