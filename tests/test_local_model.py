"""Both protocols end to end against a real model: the embedded llama.cpp server and SmolLM2-135M.

One server is started for the module (as `assembly` starts it: `serving.start_server`, warm-up
included) behind a loopback recording proxy, so the tests see exactly what the server
received. Through the real CLI they run the consensus game with 4 agents and a citizens'
assembly of 5 members with a vote and an LLM facilitator, and check that

- the runs complete, and at least half of the turns are valid actions from the model;
- `rerun` reproduces each run with zero requests to the server;
- `replay --as MEMBER --prompt` rebuilds exactly the messages the server received;
- the longest valid answer of every call kind fits its default max_tokens, counted by the
  model's own tokenizer (`/tokenize`), so a model that writes to the limits stops in time.

`--model local/smollm2` itself (start, run, stop, Ctrl-C) is checked once, with one round.
Needs the `local` extra and the bundled model; skips without them, fails under CI.
Runs are tiny (1 round, few members): a 135M model on 2 shared cores reads a prompt at
tens of tokens per second, and these tests are about the pipeline, not the model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assembly.core.events import RunStarted, Seated, Turn
from assembly.core.transcript import read_transcript
from assembly.inspection.replay import open_transcript
from assembly.inspection.view_as import rebuild
from assembly.llm.local_server import LocalModelServer
from assembly.llm.profiles import LocalServer, ModelProfile
from tests.conftest import ROOT, SCENARIOS, run_cli
from tests.recording_proxy import RecordingProxy
from tests.test_answer_size import write_widest
from tests.test_local_server import alive, port_open, require_local_model

pytestmark = pytest.mark.local_model

ALIAS = "smollm2"
SLOTS = 6  # every member (and the facilitator) keeps its own prompt cache between calls
SLOT_TOKENS = 4096  # as `local` profiles have: a long prompt and the longest answer fit
TIMEOUT = "900"  # a member's deadline: generous, since these runs measure the pipeline, not the CPU


@pytest.fixture(scope="module")
def server() -> Iterator[LocalModelServer]:
    from assembly.llm.serving import start_server

    require_local_model()
    profile = ModelProfile(
        name="smol", model=f"openai/{ALIAS}", local=LocalServer(parallel=SLOTS, ctx_size=SLOTS * SLOT_TOKENS)
    )
    srv = start_server(profile)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def proxy(server: LocalModelServer) -> Iterator[RecordingProxy]:
    rec = RecordingProxy(server.base_url.removesuffix("/v1")).start()
    try:
        yield rec
    finally:
        rec.stop()


@pytest.fixture(scope="module")
def models_file(proxy: RecordingProxy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A profile on the proxied server: what `--model local/smollm2` makes, plus the proxy."""
    profile = {
        "model": f"openai/{ALIAS}",
        "client": "openai",
        "api_base": proxy.base_url,
        "max_concurrent": SLOTS,
        "timeout_s": 900,
        "retries": 0,
        "price_per_1k_input": 0.0,
        "price_per_1k_output": 0.0,
    }
    path = tmp_path_factory.mktemp("models") / "models.yaml"
    path.write_text(json.dumps({"profiles": {"smol": profile}}))
    return path


def _run(out: Path, models: Path, scenario: Path, *args: str) -> dict[str, Any]:
    result = run_cli(
        "run", str(scenario), "--models", str(models), "--model", "smol", "--turn-timeout", TIMEOUT,
        "--out", str(out), "--quiet", *args, timeout=1800,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((out / "summary.json").read_text())


def _check_run(out: Path, proxy: RecordingProxy, requests_before: int, member: str, models: Path) -> None:
    """Valid actions from the model, an exact rerun with no requests, and replay's prompts."""
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete"
    events = read_transcript(out).events
    turns = [e for e in events if isinstance(e, Turn)]
    ok = [t for t in turns if t.status == "ok"]
    assert turns and 2 * len(ok) >= len(turns), [(t.member, t.phase, t.status, t.detail) for t in turns]
    assert all(t.attempts and not t.attempts[-1].cache_hit for t in ok)  # answered by the model, not a cache
    sent = proxy.chat_requests[requests_before:]
    assert len(sent) == sum(len(t.attempts) for t in turns), "every request the server saw is an attempt"

    # What the server received is what `replay --as` rebuilds, for every seat.
    received = {(b["messages"][0]["content"], b["messages"][1]["content"]) for b in sent}
    transcript = open_transcript(out)
    seating = next(e for e in events if isinstance(e, Seated))
    rebuilt = set()
    for seat in [m.id for m in seating.members] + ([seating.facilitator.id] if seating.facilitator else []):
        for seen in rebuild(transcript, seat, with_prompt=True).seen:
            assert seen.prompt is not None, seen.prompt_note
            rebuilt.add((seen.prompt.system, seen.prompt.user))
    assert rebuilt == received
    shown = run_cli("replay", str(out), "--as", member, "--prompt", "--no-page", env={"COLUMNS": "400"})
    assert shown.returncode == 0 and "prompt · system" in shown.stdout and "prompt · user" in shown.stdout

    count = len(proxy.chat_requests)
    again = run_cli("rerun", str(out), "--out", str(out.parent / f"{out.name}-rerun"), "--quiet", timeout=600)
    assert again.returncode == 0 and "identical" in again.stdout, again.stdout + again.stderr
    assert len(proxy.chat_requests) == count, "a rerun answers from the cache: no request reaches the server"


def test_consensus_game_with_four_agents(proxy: RecordingProxy, models_file: Path, tmp_path: Path) -> None:
    before = len(proxy.chat_requests)
    out = tmp_path / "consensus"
    _run(out, models_file, SCENARIOS / "consensus_game.yaml", "--members", "4", "--rounds", "1")
    _check_run(out, proxy, before, "agent_0", models_file)


ASSEMBLY = """
name: small_assembly
question: Which one measure should the town fund first to cut traffic?
options:
  - {id: buses, text: More frequent buses., attributes: {cost: -0.3, environment: 0.6}}
  - {id: bikes, text: Protected bike lanes., attributes: {cost: 0.2, environment: 0.5}}
  - {id: parking, text: More parking downtown., attributes: {cost: -0.2, environment: -0.7}}
population:
  size: 5
  roles:
    - {name: commuter, share: 0.6, values: {cost: 1.0, environment: 0.4}}
    - {name: resident, share: 0.4, values: {cost: 0.3, environment: 1.0}}
facts:
  - {id: grant, text: A state grant pays half of any bus service., effects: {buses: 0.5}, holders: {count: 2}}
facilitator: {policy: llm}
protocol: {kind: assembly, max_rounds: 1, first_vote_round: 1, candidates: 2, quorum: 0.6}
members: {policy: llm}
"""


def test_citizens_assembly_with_five_members_a_vote_and_an_llm_facilitator(
    proxy: RecordingProxy, models_file: Path, tmp_path: Path
) -> None:
    scenario = tmp_path / "assembly.yaml"
    scenario.write_text(ASSEMBLY)
    before = len(proxy.chat_requests)
    out = tmp_path / "assembly"
    summary = _run(out, models_file, scenario)
    events = read_transcript(out).events
    phases = {t.phase for t in events if isinstance(t, Turn) and t.status == "ok"}
    assert {"speak", "synthesize", "vote"} <= phases, phases  # the facilitator drafted, members voted
    assert summary["per_round"][0]["quorum_met"] is not None
    _check_run(out, proxy, before, "member_0", models_file)


PROSE = "The group should agree on one value soon, because most members already support it. " * 40
# What SmolLM2 wrote into a speech on a CI machine, until max_tokens cut it: one token a digit.
DIGITS = ",".join(str(n) for n in range(1, 1000))


def _longest(schema: dict[str, Any], root: dict[str, Any], text: str = PROSE) -> Any:
    """The longest valid JSON instance of a schema: `text` at every maxLength, all items."""
    if "$ref" in schema:
        return _longest(root["$defs"][schema["$ref"].split("/")[-1]], root, text)
    if "anyOf" in schema:
        return max((_longest(s, root, text) for s in schema["anyOf"]), key=lambda v: len(json.dumps(v)))
    if "enum" in schema:
        return max(schema["enum"], key=lambda v: len(json.dumps(v)))
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object":
        return {k: _longest(v, root, text) for k, v in schema["properties"].items()}
    if kind == "array":
        return [_longest(schema["items"], root, text)] * schema.get("maxItems", 1)
    if kind == "string":
        return text[: schema.get("maxLength", 0)]
    if kind == "integer":
        return max(schema["minimum"], schema["maximum"], key=lambda v: len(str(v)))
    if kind == "boolean":
        return False
    raise AssertionError(f"unexpected schema {schema}")


def test_longest_valid_answers_fit_the_default_max_tokens(server: LocalModelServer) -> None:
    """Counted by the served model's own tokenizer. The assembly's own limits cover its
    longest answers in prose and in digits, with the widest whitespace llama.cpp's
    grammar allows after every token; the paper's limits, its prose as models write it."""
    from assembly.llm.response_format import strict_json_schema
    from assembly.protocols.consensus_game.config import ConsensusGeneration
    from assembly.protocols.consensus_game.prompts import HonestStopVote, proposal_model
    from assembly.protocols.facilitated.prompts import ballot_model, generations, speech_model, synthesis_model

    options = tuple(f"option_{i}" for i in range(5))
    facts = tuple(f"fact_{i}" for i in range(4))
    limits = {
        rule: generations(rule, options, facts, 4, 3) for rule in ("majority", "approval", "schulze", "maximin_score")
    }
    ours = [
        (speech_model(options, facts), limits["majority"]["speak"]["max_tokens"]),
        (synthesis_model(options, 3), limits["majority"]["synthesize"]["max_tokens"]),
        *[(ballot_model(rule, options[:3]), limits[rule]["vote"]["max_tokens"]) for rule in limits],
    ]
    for model, max_tokens in ours:
        schema = strict_json_schema(model)
        for text in (PROSE, DIGITS):
            _assert_fits(server, model.__name__, write_widest(_longest(schema, schema, text)), max_tokens)
    paper = ConsensusGeneration()
    for model, max_tokens in [
        (proposal_model(0, 50, False), paper.propose.max_tokens),
        (proposal_model(0, 50, True), paper.propose.max_tokens),
        (HonestStopVote, paper.stop_vote.max_tokens),
    ]:
        schema = strict_json_schema(model)
        _assert_fits(server, model.__name__, json.dumps(_longest(schema, schema), indent=1), max_tokens)


def _assert_fits(server: LocalModelServer, name: str, answer: str, max_tokens: int) -> None:
    """`answer` is at most `max_tokens` tokens."""
    request = urllib.request.Request(
        server.base_url.removesuffix("/v1") + "/tokenize",
        data=json.dumps({"content": answer}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        tokens = len(json.load(response)["tokens"])
    assert tokens <= max_tokens, f"{name}: {tokens} tokens > max_tokens {max_tokens}: {answer[:80]}"


def test_model_local_serves_runs_and_stops_the_server(tmp_path: Path) -> None:
    """The one flag: `--model local/smollm2` starts the server, runs, and stops it; and
    `assembly models` with it checks the server with a run's own structured request."""
    require_local_model()
    out = tmp_path / "run"
    result = run_cli(
        "run", str(SCENARIOS / "consensus_game.yaml"), "--model", "local/smollm2", "--members", "3",
        "--rounds", "1", "--turn-timeout", TIMEOUT, "--out", str(out), "--quiet", timeout=1800,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    started = next(e for e in read_transcript(out).events if isinstance(e, RunStarted))
    (profile,) = started.models.values()
    assert profile["local"]["gguf"] == "smollm2"
    port = int(profile["api_base"].rsplit(":", 1)[1].split("/")[0])
    assert not port_open(port), "the server stops with the command"
    assert any(isinstance(e, Turn) and e.status == "ok" for e in read_transcript(out).events)

    # `assembly models` proves the server takes a run's structured requests (json_schema).
    empty = tmp_path / "models.yaml"
    empty.write_text("profiles: {}\n")
    checked = run_cli("models", "--models", str(empty), "--model", "local/smollm2", env={"COLUMNS": "400"}, timeout=900)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    status = " ".join(checked.stdout.split())
    assert "OK answered a structured request (json_schema)" in status, status


def test_ctrl_c_stops_the_embedded_server(tmp_path: Path) -> None:
    require_local_model()
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "assembly.cli", "run", str(SCENARIOS / "consensus_game.yaml"), "--model",
        "local/smollm2", "--members", "3", "--rounds", "5", "--turn-timeout", TIMEOUT, "--out", str(out), "--quiet",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        transcript = out / "transcript.jsonl"
        deadline = time.monotonic() + 600
        while not transcript.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)  # the run has started once its transcript exists: the server is up
        assert transcript.exists(), proc.communicate()
        started = json.loads(transcript.read_text().splitlines()[0])
        port = int(next(iter(started["models"].values()))["api_base"].rsplit(":", 1)[1].split("/")[0])
        children = _children(proc.pid)
        assert port_open(port) and children
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "assembly resume" in err
    assert not port_open(port)
    assert not any(alive(pid) for pid in children), "no server outlives the command"


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []
