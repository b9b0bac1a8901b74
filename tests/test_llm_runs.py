"""LLM members end to end: full scenario runs over real HTTP against the loopback server.

No client is mocked: members are autogen AssistantAgents whose requests go through
autogen-ext's OpenAI client or our litellm client, over a socket, to
tests/fake_openai.py, which answers with instances of the requested JSON schema and
injects seeded faults. What the transcript records is compared with what the server
saw and did (its request log, fault counts and in-flight high-water mark).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assembly.core.events import Attempt, Disclosure, RoundEnded, RunEnded, RunStarted, Seated, Turn
from assembly.core.transcript import canonical, read_transcript
from assembly.inspection.reexecute import rerun, resume_async
from assembly.launch import execute
from assembly.llm import setup as llm_setup
from assembly.llm.member import factory_for
from assembly.llm.profiles import ModelProfile
from assembly.llm.rate_limit import limiter_for
from assembly.llm.setup import LLMSetup, ModelSetupError
from assembly.scenario.loading import build_scenario, load_scenario
from assembly.scenario.model import Scenario
from tests.conftest import ROOT, SCENARIOS, run_cli
from tests.fake_openai import FakeOpenAIServer
from tests.helpers import cyclic_garbage

CANARY_KEY = "sk-canary-LLMRUNS-0123456789abcdef"
KEY_ENV = "ASSEMBLY_TEST_LLM_KEY"
CLIENTS = pytest.mark.parametrize("client_kind", ["openai", "litellm"])
_names = itertools.count()


@pytest.fixture(autouse=True)
def _canary_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, CANARY_KEY)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(seed=21, hang_s=60.0) as srv:
        yield srv


def make_profile(srv: FakeOpenAIServer, client_kind: str, **overrides: Any) -> ModelProfile:
    # Unique names: rate limiters are process-wide per profile.
    fields: dict[str, Any] = {
        "name": f"llm-{client_kind}-{next(_names)}",
        "model": "openai/fake-model",
        "client": client_kind,
        "api_base": srv.base_url,
        "api_key_env": KEY_ENV,
        "timeout_s": 30.0,
        "retries": 4,
        "max_concurrent": 32,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
    }
    fields.update(overrides)
    return ModelProfile(**fields)


def llm_scenario(name: str, profile: str, **overrides: Any) -> Scenario:
    """A shipped scenario, small, with every seat played by `profile`."""
    base: dict[str, Any] = {"rounds": 2, "members.policy": "llm", "members.profile": profile}
    if name == "citizens_assembly":
        base.update(
            {"members": 8, "protocol.first_vote_round": 2, "facilitator.policy": "llm", "facilitator.profile": profile}
        )
    return load_scenario(SCENARIOS / f"{name}.yaml", {**base, **overrides})


def run(
    sc: Scenario, out: Path, *profiles: ModelProfile, cache: Path | None = None
) -> tuple[dict[str, Any], list[Any]]:
    setup = LLMSetup(profiles={p.name: p for p in profiles}, cache_dir=cache)
    summary = asyncio.run(execute(sc, out, factory=factory_for(setup)))
    return summary, read_transcript(out).events


def turns(events: list[Any]) -> list[Turn]:
    return [e for e in events if isinstance(e, Turn)]


def attempts(events: list[Any]) -> list[Attempt]:
    return [a for t in turns(events) for a in t.attempts]


def without(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return {k: without(v, key) for k, v in value.items() if k != key}
    if isinstance(value, list):
        return [without(v, key) for v in value]
    return value


# ----------------------------------------------------------------------------- full runs


@CLIENTS
@pytest.mark.parametrize("scenario_name", ["citizens_assembly", "consensus_game"])
def test_full_run(server: FakeOpenAIServer, client_kind: str, scenario_name: str, tmp_path: Path) -> None:
    profile = make_profile(server, client_kind)
    sc = llm_scenario(scenario_name, profile.name)
    summary, events = run(sc, tmp_path / "run", profile)

    assert summary["status"] == "complete" and summary["rounds"] == 2
    started = events[0]
    assert isinstance(started, RunStarted) and started.models is not None
    assert started.models[profile.name]["model"] == "openai/fake-model"
    assert started.models[profile.name]["api_key_env"] == KEY_ENV  # the variable's name, never its value
    assert all(t.status == "ok" and t.action for t in turns(events))
    # One HTTP request per attempt, each recorded with its usage and latency.
    recorded = attempts(events)
    assert len(recorded) == server.request_count == summary["totals"]["calls"]
    assert all(
        a.model == "openai/fake-model"
        and a.prompt_tokens > 0
        and a.completion_tokens > 0
        and not a.cache_hit
        and a.timing
        and a.timing["latency_s"] > 0
        for a in recorded
    )
    assert summary["totals"]["prompt_tokens"] == sum(a.prompt_tokens for a in recorded)
    for request in server.requests:
        body = request["body"]
        assert request["authorization"] == f"Bearer {CANARY_KEY}"
        # The view is the whole context: a system and a user message, no history.
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
        assert body["response_format"]["type"] == "json_schema"


def _schema(request: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = request["body"]["response_format"]["json_schema"]["schema"]
    return schema


def _choices(prop: dict[str, Any]) -> list[Any]:
    return list(prop["enum"]) if "enum" in prop else [prop["const"]]


def _who(request: dict[str, Any]) -> tuple[str, int, str]:
    """(member, round, phase) of a request, read from the prompt it carried."""
    system, user = (m["content"] for m in request["body"]["messages"][:2])
    if system.startswith("You are the facilitator"):
        member = "facilitator"
    else:
        member = re.match(r"You are (\w+),", system).group(1)  # type: ignore[union-attr]
    header = re.search(r"ROUND (\d+)(?: of \d+)?(?:: (\w+))?", user)
    assert header is not None, user[:80]
    phase = (header.group(2) or ("VOTE" if user.startswith("VOTE") else "PROPOSE")).lower()
    return member, int(header.group(1)), phase


def test_output_schemas_are_narrowed_to_the_turn(server: FakeOpenAIServer, tmp_path: Path) -> None:
    profile = make_profile(server, "openai")
    sc = llm_scenario("citizens_assembly", profile.name)
    _, events = run(sc, tmp_path / "run", profile)
    seated = next(e for e in events if isinstance(e, Seated))
    facts = {m.id: m.facts for m in seated.members}
    options = [o.id for o in sc.options]
    candidates = {
        t.round: [c["option"] for c in t.action["candidates"]]
        for t in turns(events)
        if t.phase == "synthesize" and t.action
    }
    seen = set()
    for request in server.requests:
        member, r, phase = _who(request)
        schema = _schema(request)
        props = schema["properties"]
        seen.add(phase)
        if phase == "speak":
            assert _choices(props["position"]) == options
            assert list(schema["$defs"]["Scores"]["properties"]) == options
            disclose = props["disclose"]
            if facts[member]:  # only the member's own facts can be disclosed
                assert set(_choices(disclose["items"])) == set(facts[member])
            else:
                assert disclose["maxItems"] == 0
        elif phase == "vote":  # supermajority: one choice among this round's candidates
            assert set(props) == {"choice", "abstain"}
            assert _choices(props["choice"]) == list(dict.fromkeys(candidates[r]))
        else:
            assert phase == "synthesis" and member == "facilitator"
            assert props["candidates"]["maxItems"] == sc.protocol.candidates  # type: ignore[union-attr]
    assert seen == {"speak", "synthesis", "vote"}


def test_consensus_generation_defaults_and_profile_precedence(server: FakeOpenAIServer, tmp_path: Path) -> None:
    # The paper's settings (0.5 / 300 for proposals, 0.3 / 200 for stop votes) apply
    # unless the profile names the call kind; a profile-wide default does not override them.
    profile = make_profile(
        server, "litellm", temperature={"default": 0.9, "stop_vote": 0.0}, max_tokens={"default": 50}
    )
    run(llm_scenario("consensus_game", profile.name, rounds=1), tmp_path / "run", profile)
    by_phase: dict[str, set[tuple[float, int]]] = {}
    for request in server.requests:
        _, _, phase = _who(request)
        body = request["body"]
        by_phase.setdefault(phase, set()).add((body["temperature"], body["max_tokens"]))
    assert by_phase == {"propose": {(0.5, 300)}, "vote": {(0.0, 200)}}


# ----------------------------------------------------------------------------- deadlines, retries, faults


@CLIENTS
def test_deadline_cuts_hung_calls_and_the_round_completes(
    server: FakeOpenAIServer, client_kind: str, tmp_path: Path
) -> None:
    # Calls that hang far past the turn deadline (the profile's own timeout is longer
    # still) are cut off by the engine; the rest of the round goes on.
    profile = make_profile(server, client_kind, timeout_s=120.0)
    server.configure(fault_rates={"hang": 0.2}, seed=4)
    sc = llm_scenario("citizens_assembly", profile.name, rounds=2, turn_timeout=0.6)
    started = time.monotonic()
    summary, events = run(sc, tmp_path / "run", profile)
    elapsed = time.monotonic() - started

    hung = server.fault_counts["hang"]
    timed_out = [t for t in turns(events) if t.status == "timeout"]
    assert hung > 0 and len(timed_out) == hung
    assert all(t.action is None and not t.attempts for t in timed_out)  # a late answer is discarded
    assert [e.round for e in events if isinstance(e, RoundEnded)] == [1, 2]
    assert summary["totals"]["turn_timeouts"] == hung
    assert elapsed < 60.0  # a hung call (60 s on the server) was never waited out
    # Every cancelled request released its rate-limit slot: the HTTP calls were aborted.
    assert limiter_for(profile).in_flight == 0


@CLIENTS
def test_retries_are_counted_like_the_server_counts_faults(
    server: FakeOpenAIServer, client_kind: str, tmp_path: Path
) -> None:
    server.configure(
        seed=9,
        fault_rates={"rate_limit": 0.1, "server_error": 0.1, "malformed": 0.1, "empty": 0.05, "disconnect": 0.05},
    )
    profile = make_profile(server, client_kind, retries=8)
    summary, events = run(llm_scenario("consensus_game", profile.name), tmp_path / "run", profile)

    recorded = attempts(events)
    kinds = {
        k: sum(a.error_kind == k for a in recorded)
        for k in ("rate_limit", "server_error", "invalid_json", "empty", "connection")
    }
    faults = server.fault_counts
    assert kinds == {
        "rate_limit": faults["rate_limit"],
        "server_error": faults["server_error"],
        "invalid_json": faults["malformed"],
        "empty": faults["empty"],
        "connection": faults["disconnect"],
    }
    assert sum(kinds.values()) >= 5
    assert len(recorded) == server.request_count
    assert summary["totals"]["retries"] == len(recorded) - len(turns(events))
    for t in turns(events):
        assert [a.attempt for a in t.attempts] == list(range(1, len(t.attempts) + 1))
        assert (t.status == "ok") == (t.attempts[-1].outcome == "ok")
        if t.status != "ok":
            assert t.status == t.attempts[-1].outcome and t.detail


@pytest.mark.parametrize(
    ("client_kind", "scenario_name"), [("openai", "citizens_assembly"), ("litellm", "consensus_game")]
)
def test_no_crash_at_a_30_percent_fault_rate(
    server: FakeOpenAIServer, client_kind: str, scenario_name: str, tmp_path: Path
) -> None:
    server.configure(
        seed=5,
        fault_rates={
            "rate_limit": 0.06,
            "server_error": 0.06,
            "malformed": 0.06,
            "empty": 0.04,
            "disconnect": 0.03,
            "hang": 0.03,
            "auth_error": 0.02,
        },
    )
    # Hangs become provider timeouts; auth errors cannot be retried and fail the turn at once.
    profile = make_profile(server, client_kind, retries=1, timeout_s=0.5)
    summary, events = run(
        llm_scenario(scenario_name, profile.name, rounds=3, turn_timeout=10), tmp_path / "run", profile
    )

    assert summary["status"] == "complete" and isinstance(events[-1], RunEnded)
    statuses = {t.status for t in turns(events)}
    assert "ok" in statuses and statuses & {"malformed", "provider_error"}
    kinds = {a.error_kind for a in attempts(events)}
    assert {"timeout", "other"} <= kinds and len(kinds - {None}) >= 5
    assert len(attempts(events)) == server.request_count


# ----------------------------------------------------------------------------- cache and reruns


@CLIENTS
def test_cache_makes_a_second_run_free_and_identical(
    server: FakeOpenAIServer, client_kind: str, tmp_path: Path
) -> None:
    server.configure(fault_script=["malformed"])  # a re-asked turn is replayed too
    profile = make_profile(server, client_kind)
    sc = llm_scenario("citizens_assembly", profile.name)
    cache = tmp_path / "shared-cache"
    _, first = run(sc, tmp_path / "one", profile, cache=cache)
    calls = server.request_count
    assert calls > 0 and any(a.outcome == "malformed" for a in attempts(first))

    summary, second = run(sc, tmp_path / "two", profile, cache=cache)
    assert server.request_count == calls  # zero HTTP requests
    assert all(a.cache_hit and a.cost_usd == 0 for a in attempts(second))
    assert summary["totals"]["cache_hits"] == summary["totals"]["calls"] == len(attempts(first))
    # Identical canonical transcripts, except that the answers now came from the cache.
    assert without(canonical(second), "cache_hit") == without(canonical(first), "cache_hit")
    _, third = run(sc, tmp_path / "three", profile, cache=cache)
    assert canonical(third) == canonical(second)

    # `assembly rerun` finds the shared cache from the run folder and reproduces the run.
    result = asyncio.run(rerun(tmp_path / "one", tmp_path / "rerun"))
    assert result.comparison.identical, result.comparison.first_difference
    assert server.request_count == calls


def test_resume_rebuilds_clients_from_the_recorded_profiles(server: FakeOpenAIServer, tmp_path: Path) -> None:
    # The profile exists only in the transcript (no models file knows it): a resumed
    # run must rebuild its clients from run_started.models and find its own cache.
    profile = make_profile(server, "openai")
    sc = llm_scenario("citizens_assembly", profile.name, rounds=3)
    _, full = run(sc, tmp_path / "full", profile)
    calls = server.request_count
    cut = tmp_path / "cut"
    cut.mkdir()
    lines = (tmp_path / "full" / "transcript.jsonl").read_text().splitlines(keepends=True)
    end_of_round_1 = next(i for i, line in enumerate(lines) if '"round_ended"' in line)
    (cut / "transcript.jsonl").write_text("".join(lines[: end_of_round_1 + 1]))
    (cut / "cache.json").write_text(json.dumps({"cache_dir": str(tmp_path / "full" / "cache")}))

    # An empty registry: nothing but the run's own record.
    asyncio.run(resume_async(cut, factory=factory_for(LLMSetup())))
    assert server.request_count == calls  # rounds 2 and 3 were replayed from the cache
    resumed = read_transcript(cut).events
    assert without(canonical(resumed), "cache_hit") == without(canonical(full), "cache_hit")


def test_two_setups_in_one_process_each_bind_their_own_members(tmp_path: Path) -> None:
    # One profile name, two setups that mean different models on different servers,
    # two runs at once on one event loop: every member must call its own setup's
    # model, which a process-wide "current setup" could not give.
    name = f"shared-{next(_names)}"
    with FakeOpenAIServer(seed=1) as srv_a, FakeOpenAIServer(seed=2) as srv_b:
        servers = {"a": srv_a, "b": srv_b}
        setups = {
            key: LLMSetup(profiles={name: make_profile(srv, "openai", name=name, model=f"openai/model-{key}")})
            for key, srv in servers.items()
        }
        sc = llm_scenario("consensus_game", name, members=4)
        factories = {key: factory_for(setup) for key, setup in setups.items()}

        async def both() -> None:
            await asyncio.gather(*(execute(sc, tmp_path / key, factory=factories[key]) for key in servers))

        asyncio.run(both())
    for key, srv in servers.items():
        events = read_transcript(tmp_path / key).events
        assert events[0].models[name]["model"] == f"openai/model-{key}"
        assert srv.request_count == len(attempts(events)) > 0
        assert {r["body"]["model"] for r in srv.requests} == {f"model-{key}"}
        assert {a.model for a in attempts(events)} == {f"openai/model-{key}"}


def test_importing_the_llm_member_does_not_import_litellm() -> None:
    code = "import sys, assembly.llm.member; print('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_unknown_profiles_and_stray_flags_fail_early(tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(json.dumps({"profiles": {"known": {"model": "openai/m"}}}))
    setup = llm_setup.from_flags(models_file=models)
    sc = load_scenario(SCENARIOS / "citizens_assembly.yaml", {"members.policy": "llm", "members.profile": "nope"})
    with pytest.raises(ModelSetupError, match=r"unknown model profile 'nope'.*known"):
        setup.check(sc)
    with pytest.raises(ModelSetupError, match="--model"):
        llm_setup.from_flags(api_base="http://127.0.0.1:1/v1", models_file=models)
    adhoc = llm_setup.from_flags(model="openai/Qwen/Qwen3-14B", api_base="http://127.0.0.1:1/v1", models_file=models)
    chosen = adhoc.profiles[adhoc.model or ""]
    assert chosen.client == "openai" and chosen.model == "openai/Qwen/Qwen3-14B"
    overrides = adhoc.scenario_overrides_for(SCENARIOS / "citizens_assembly.yaml")
    seated = load_scenario(SCENARIOS / "citizens_assembly.yaml", overrides)
    adhoc.check(seated)
    assert llm_setup.profiles_named(seated) == [chosen.name]


# ----------------------------------------------------------------------------- rate limits and profiles


@CLIENTS
def test_rate_limit_holds_across_the_assembly(server: FakeOpenAIServer, client_kind: str, tmp_path: Path) -> None:
    server.configure(latency_s=0.05)
    profile = make_profile(server, client_kind, max_concurrent=3)
    run(llm_scenario("consensus_game", profile.name, rounds=1, members=12), tmp_path / "run", profile)
    assert server.request_count == 24
    assert 2 <= server.max_in_flight <= 3


def test_members_assign_deals_profiles_by_share(server: FakeOpenAIServer, tmp_path: Path) -> None:
    big = make_profile(server, "openai", model="openai/big-model")
    small = make_profile(server, "litellm", model="openai/small-model")
    sc = llm_scenario(
        "consensus_game",
        big.name,
        rounds=1,
        members=9,
        **{"members.assign": [{"share": 0.667, "profile": big.name}, {"share": 0.333, "profile": small.name}]},
    )
    _, events = run(sc, tmp_path / "run", big, small)
    seated = next(e for e in events if isinstance(e, Seated))
    profile_of = {m.id: str(m.profile) for m in seated.members}
    assert sorted(profile_of.values()).count(big.name) == 6 and list(profile_of.values()).count(small.name) == 3
    assert set(events[0].models) == {big.name, small.name}
    model_of = {big.name: "big-model", small.name: "small-model"}
    for request in server.requests:
        member, _, _ = _who(request)
        assert request["body"]["model"] == model_of[profile_of[member]]
    # The deal is seeded: the same seed deals the same profiles.
    again = build_scenario(sc.model_dump(mode="json"), {})
    from assembly.core.seating import seat

    assert [m.profile for m in seat(again, prefix="agent")] == [m.profile for m in seated.members]


# ----------------------------------------------------------------------------- isolation in prompts


def _canary_scenario(topology: dict[str, Any], profile: str) -> Scenario:
    facts = [
        {"id": f"f{i}", "text": f"CANARY-FACT-{i} is known only to its holder", "holders": {"count": 1}}
        for i in range(6)
    ]
    data: dict[str, Any] = {
        "name": "canary",
        "question": "A or B?",
        "options": [{"id": "A", "text": "option a"}, {"id": "B", "text": "option b"}],
        "population": {"size": 9, "roles": [{"name": "citizen", "share": 1.0}]},
        "facts": facts,
        "topology": topology,
        "protocol": {"kind": "assembly", "max_rounds": 3, "first_vote_round": 2, "turn_timeout_s": 20},
        "members": {"policy": "llm", "profile": profile},
        "facilitator": {"policy": "llm", "profile": profile},
    }
    return build_scenario(data, {})


@pytest.mark.parametrize(
    "topology",
    [{"kind": "all_to_all"}, {"kind": "tables", "table_size": 3}, {"kind": "small_world", "k": 2, "p": 0.3}],
    ids=["all_to_all", "tables", "small_world"],
)
def test_prompts_hold_no_undisclosed_private_facts(
    server: FakeOpenAIServer, topology: dict[str, Any], tmp_path: Path
) -> None:
    profile = make_profile(server, "openai")
    sc = _canary_scenario(topology, profile.name)
    _, events = run(sc, tmp_path / "run", profile)
    seated = next(e for e in events if isinstance(e, Seated))
    ids = [m.id for m in seated.members]
    audience = {m: {ids[j] for j in seated.audiences[seated.audience_of[i]]} for i, m in enumerate(ids)}
    dealt = {m.id: set(m.facts) for m in seated.members}
    disclosures = [e for e in events if isinstance(e, Disclosure)]
    assert disclosures, "the run must disclose something for this test to mean anything"
    leaks_checked = 0
    for request in server.requests:
        member, r, phase = _who(request)
        text = json.dumps(request["body"]["messages"])
        if member == "facilitator":
            allowed: set[str] = set()  # the facilitator is shown fact ids, never fact texts
        else:
            # Disclosures of a round happen after its speak phase.
            allowed = dealt[member] | {
                d.fact
                for d in disclosures
                if d.member in audience[member] and (d.round < r or (d.round == r and phase != "speak"))
            }
        for fact in sc.facts:
            if fact.id in allowed:
                continue
            assert fact.text not in text, (member, r, phase, fact.id)
            leaks_checked += 1
        if member != "facilitator":
            for own in dealt[member]:  # the member does see its own facts
                assert next(f.text for f in sc.facts if f.id == own) in text
    assert leaks_checked > 0


def test_consensus_prompts_hold_no_other_agents_strategy_notes(server: FakeOpenAIServer, tmp_path: Path) -> None:
    profile = make_profile(server, "litellm")
    _, events = run(
        llm_scenario("consensus_game", profile.name, rounds=3, **{"protocol.byzantine": 2}), tmp_path / "run", profile
    )
    notes = {
        (t.member, str(t.action["strategy"]))
        for t in turns(events)
        if t.phase == "propose" and t.action and len(str(t.action["strategy"]).split()) >= 5
    }
    assert notes
    for request in server.requests:
        member, _, _ = _who(request)
        text = json.dumps(request["body"]["messages"])
        for author, note in notes:
            if author != member:
                assert note not in text, (member, author)


# ----------------------------------------------------------------------------- the command line


def _models_file(path: Path, srv: FakeOpenAIServer, **extra: Any) -> Path:
    profile = {
        "model": "openai/fake-model",
        "client": "openai",
        "api_base": srv.base_url,
        "api_key_env": KEY_ENV,
        "retries": 2,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
        **extra,
    }
    path.write_text(json.dumps({"profiles": {"fake": profile}}))  # JSON is YAML
    return path


def test_cli_run_with_model_and_api_base(server: FakeOpenAIServer, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_cli(
        "run",
        str(SCENARIOS / "consensus_game.yaml"),
        "--model",
        "openai/fake-model",
        "--api-base",
        server.base_url,
        "--rounds",
        "2",
        "--members",
        "6",
        "--out",
        str(out),
        "-q",
    )
    assert result.returncode == 0, result.stderr
    events = read_transcript(out).events
    (record,) = events[0].models.values()
    assert record["model"] == "openai/fake-model" and record["client"] == "openai"  # openai: --api-base given
    assert all(t.status == "ok" for t in turns(events))
    seated = next(e for e in events if isinstance(e, Seated))
    assert len(seated.members) == 6
    assert len(attempts(events)) == server.request_count == len(turns(events)) > 0
    assert (out / "cache").is_dir()


def test_cli_models_file_budget_and_no_key_anywhere(server: FakeOpenAIServer, tmp_path: Path) -> None:
    # The fake provider echoes the key in its 401 message, as real providers do.
    server.configure(fault_script=["auth_error", "rate_limit", "server_error", "auth_error"])
    models = _models_file(tmp_path / "models.yaml", server, price_per_1k_input=1.0, price_per_1k_output=1.0)
    out, cache = tmp_path / "run", tmp_path / "cache"
    result = run_cli(
        "run",
        str(SCENARIOS / "citizens_assembly.yaml"),
        "--models",
        str(models),
        "--model",
        "fake",
        "--members",
        "8",
        "--rounds",
        "6",
        "--max-cost",
        "0.01",
        "--cache",
        str(cache),
        "--out",
        str(out),
        env={KEY_ENV: CANARY_KEY},
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cause"] == "budget" and summary["rounds"] < 6
    assert summary["totals"]["cost_usd"] >= 0.01
    assert "cost budget was spent" in summary["reason"] and "max_cost $0.01" in summary["reason"]
    assert json.loads((out / "cache.json").read_text())["cache_dir"] == str(cache.resolve())
    transcript = (out / "transcript.jsonl").read_text()
    assert "Incorrect API key" in transcript  # the key-echoing error really was recorded ...
    assert any(r["authorization"] == f"Bearer {CANARY_KEY}" for r in server.requests)  # ... and the key used
    # ... but the key is in no file of the run folder or the cache, and not on the terminal.
    files = [p for p in [*out.rglob("*"), *cache.rglob("*")] if p.is_file()]
    assert files
    for path in files:
        assert CANARY_KEY.encode() not in path.read_bytes(), path
    assert CANARY_KEY not in result.stdout + result.stderr


def test_cli_models_lists_and_checks_profiles(server: FakeOpenAIServer, tmp_path: Path) -> None:
    models = _models_file(tmp_path / "models.yaml", server)
    result = run_cli("models", "--models", str(models), env={KEY_ENV: CANARY_KEY})
    assert result.returncode == 0, result.stdout  # every profile of the file is checked
    assert any(line.startswith("fake ") and "OK" in line for line in result.stdout.splitlines()), result.stdout
    dead = FakeOpenAIServer().start()
    dead_url = dead.base_url
    dead.stop()  # nothing listens there any more
    result = run_cli(
        "models", "--models", str(models), "--model", "openai/other", "--api-base", dead_url, env={KEY_ENV: CANARY_KEY}
    )
    assert result.returncode == 1  # the one model asked about is unreachable
    lines = result.stdout.splitlines()
    assert any(line.startswith("openai_other") and "FAIL" in line for line in lines), result.stdout
    assert not any(line.startswith("fake ") for line in lines)  # --model checks only that model
    assert CANARY_KEY not in result.stdout + result.stderr


def test_cli_models_with_model_checks_only_that_model(server: FakeOpenAIServer) -> None:
    """configs/models.yaml (read by default from the repo) also names hosted profiles
    without keys here; `--model` must not check them, wait on them, or fail for them."""
    result = run_cli("models", "--model", "openai/fake-model", "--api-base", server.base_url, "--timeout", "60")
    assert result.returncode == 0, result.stdout + result.stderr
    text = result.stdout
    assert text.startswith("--model openai_fake-model") and text.count(" OK ") == 1 and "FAIL" not in text, text
    assert "gpt-4o-mini" not in text  # the models file's other profiles are neither listed nor checked


class _FinalizerCountingLoop(asyncio.SelectorEventLoop):
    """An event loop that counts the async generators it had to close for their owners."""

    def __init__(self) -> None:
        super().__init__()
        self.finalized: list[str] = []

    def _asyncgen_finalizer_hook(self, agen: Any) -> None:
        self.finalized.append(getattr(agen, "__qualname__", repr(agen)))
        super()._asyncgen_finalizer_hook(agen)  # type: ignore[misc]


def test_llm_turns_leave_no_reference_cycles(server: FakeOpenAIServer, tmp_path: Path) -> None:
    """An LLM member's seat and its turn clock (whose expiry callback points back at
    the seat) are freed when the phase ends, not left for the cycle collector."""
    profile = make_profile(server, "openai")
    sc = llm_scenario("citizens_assembly", profile.name)
    setup = LLMSetup(profiles={profile.name: profile})
    with cyclic_garbage() as garbage:
        asyncio.run(execute(sc, tmp_path / "run", factory=factory_for(setup)))
    assert len(turns(read_transcript(tmp_path / "run").events)) > 20
    assert not {"Seat", "TurnClock"} & set(garbage), garbage


def test_a_member_turn_leaves_no_async_generator_for_the_loop_to_close(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    """A dropped async generator costs the loop a wake-up through its self-pipe and a
    task to close it; a member turn (autogen's agent stream included) ends every one
    it starts."""
    profile = make_profile(server, "openai")
    sc = llm_scenario("citizens_assembly", profile.name)
    setup = LLMSetup(profiles={profile.name: profile})
    loop = _FinalizerCountingLoop()
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        runner.run(execute(sc, tmp_path / "run", factory=factory_for(setup)))
    done = turns(read_transcript(tmp_path / "run").events)
    assert len(done) > 20 and all(t.status == "ok" for t in done)
    assert loop.finalized == []
