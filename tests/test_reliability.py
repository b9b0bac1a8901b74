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


URL_PASSWORD = "urlpass-CANARY-9876543210"


def _secrets_in(text: bytes, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s.encode() in text]


@pytest.mark.parametrize("credentials", ["key", "url"])
def test_a_key_echoed_in_a_normal_answer_is_redacted_everywhere(
    server: FakeOpenAIServer, tmp_path: Path, credentials: str
) -> None:
    """Every answer quotes the Authorization header back (a 200, not an error). With
    `url`, the credentials are written into --api-base instead (`http://user:pass@`),
    which HTTP clients send as Basic auth. Neither may reach a file, the cache, the
    report, or the terminal; a rerun from the cache must still reproduce the run."""
    import base64

    server.configure(fault_rates={"echo_auth": 1.0})
    base = server.base_url
    if credentials == "url":
        base = base.replace("http://", f"http://assembly:{URL_PASSWORD}@")
    secrets = [CANARY_KEY, URL_PASSWORD, base64.b64encode(f"assembly:{URL_PASSWORD}".encode()).decode()]
    out = tmp_path / "run"
    args = ["scenarios/consensus_game.yaml", "--members", "4", "--rounds", "2", "--model", "openai/fake-model"]
    res = run_cli("run", *args, "--api-base", base, "--api-key-env", KEY_ENV, "--out", str(out))  # live display
    assert res.returncode == 0, res.stderr
    sent = {r["authorization"] for r in server.requests}
    assert sent and all(_secrets_in(a.encode(), secrets) for a in sent), "the credentials were sent"
    assert server.fault_counts["echo_auth"] == server.request_count
    # The echo reached the run and was redacted there (not dropped as a bad answer).
    transcript = (out / "transcript.jsonl").read_text()
    assert "(you sent" in transcript and "[REDACTED]" in transcript
    outputs = [res.stdout, res.stderr]
    if credentials == "url":
        assert "at http://[REDACTED]@127.0.0.1" in res.stdout  # the endpoint is shown, its credentials not
    for cmd in (
        ["replay", str(out), "--no-page"],
        ["replay", str(out), "--as", "agent_0", "--no-page"],
        ["replay", str(out), "--check"],
        ["report", str(out), "-o", str(tmp_path / "r.html")],
        ["rerun", str(out), "--out", str(tmp_path / "rerun")],
    ):
        r = run_cli(*cmd)
        assert r.returncode == 0, (cmd, r.stdout, r.stderr)
        outputs += [r.stdout, r.stderr]
    assert "identical" in outputs[-2]  # the redacted answers replay exactly from the cache
    files = [p for p in [*out.rglob("*"), *(tmp_path / "rerun").rglob("*"), tmp_path / "r.html"] if p.is_file()]
    assert any(p.parent.name.startswith("openai_fake-model") for p in files), "the cache is among the files"
    for p in files:
        assert not _secrets_in(p.read_bytes(), secrets), p
    for text in outputs:
        assert not _secrets_in(text.encode(), secrets)


def test_redaction_removes_registered_keys_and_url_credentials_and_nothing_else() -> None:
    from assembly.core.redaction import redact, redact_url, register_secret, register_url_credentials, scrub

    register_secret("zz-registered-0123456789")
    register_url_credentials("https://bob:p%40ss-CANARY-4242@example.org/v1")
    text = (
        'say "zz-registered-0123456789" then p@ss-CANARY-4242, see http://eve:hunter22@host/x; '
        "the bearer instruments of option pk_parking_levy_2030 and ssh://git@host stay"
    )
    out = redact(text)
    assert "zz-registered" not in out and "p@ss-CANARY-4242" not in out and "hunter22" not in out
    assert "the bearer instruments of option pk_parking_levy_2030 and ssh://git@host stay" in out
    assert out.count("[REDACTED]") == 3
    assert redact_url("https://bob:p%40ss-CANARY-4242@example.org/v1") == "https://[REDACTED]@example.org/v1"
    # Messages and logs also lose key shapes and bearer tokens.
    assert scrub("Authorization: Bearer abc.def and sk-proj-0123456789") == (
        "Authorization: Bearer [REDACTED] and [REDACTED]"
    )
