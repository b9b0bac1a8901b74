"""The loopback OpenAI-compatible server used by every model-client test.

These tests talk to it with plain HTTP (httpx or raw sockets) so that a bug in the
server cannot be masked by the same bug in the client under test.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import jsonschema
import pytest
from pydantic import BaseModel, Field

from tests.fake_openai import FAULT_KINDS, FakeOpenAIServer, SchemaInstanceGenerator

# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(seed=7) as srv:
        yield srv


# One pooled client: a fresh httpx.Client per request costs ~25 ms of TLS setup.
_HTTP = httpx.Client(timeout=10)


def _chat(srv: FakeOpenAIServer, *, content: str = "Should we fund the bus line?", **extra: Any) -> httpx.Response:
    body = {"model": "fake-model", "messages": [{"role": "user", "content": content}], **extra}
    return _HTTP.post(f"{srv.base_url}/chat/completions", json=body)


def _schema_format(schema: dict[str, Any], name: str = "Answer") -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


class Stance(BaseModel):
    position: Literal["support", "oppose", "undecided"]
    strength: int = Field(ge=1, le=5)


class Ballot(BaseModel):
    """Exercises $defs/$ref, enums, bounds, nullable, nested arrays and dicts."""

    member_id: Annotated[str, Field(min_length=3, max_length=12)]
    stances: list[Stance] = Field(min_length=2, max_length=4)
    ranking: list[Literal["A", "B", "C", "D"]] = Field(min_length=1, max_length=4)
    confidence: float = Field(gt=0.0, lt=1.0)
    note: str | None = None
    weights: dict[str, int] = Field(default_factory=dict)
    fallback: Stance | None
    approve: bool


# --------------------------------------------------------------------------- schema answers


@pytest.mark.parametrize("seed", range(25))
def test_generator_instances_validate_against_pydantic_models(seed: int) -> None:
    schema = Ballot.model_json_schema()
    instance = SchemaInstanceGenerator(schema, random.Random(seed)).generate()
    Ballot.model_validate(instance)
    jsonschema.validate(instance, schema)


HAND_WRITTEN_SCHEMAS: list[dict[str, Any]] = [
    {"const": "fixed"},
    {"type": "integer", "exclusiveMinimum": 3, "exclusiveMaximum": 6},
    {"type": "integer", "minimum": 10, "maximum": 100, "multipleOf": 7},
    {"type": "number", "minimum": -1.5, "maximum": -1.0},
    {"type": ["string", "null"], "maxLength": 4},
    {"type": "string", "nullable": True, "minLength": 30, "maxLength": 35},
    {"oneOf": [{"type": "boolean"}, {"type": "integer", "minimum": 0, "maximum": 1}]},
    {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False},
    {
        "type": "array",
        "items": {"enum": [1, 2, 3, 4, 5, 6]},
        "minItems": 3,
        "maxItems": 3,
        "uniqueItems": True,
    },
    {
        "type": "object",
        "properties": {"a": {"allOf": [{"$ref": "#/$defs/Leaf"}]}, "b": {"$ref": "#/$defs/Leaf"}},
        "required": ["a", "b"],
        "additionalProperties": False,
        "$defs": {
            "Leaf": {
                "type": "object",
                "properties": {"x": {"type": "integer", "minimum": 0, "maximum": 3}},
                "required": ["x"],
                "additionalProperties": False,
            }
        },
    },
]


@pytest.mark.parametrize("schema", HAND_WRITTEN_SCHEMAS, ids=lambda s: json.dumps(s)[:40])
def test_generator_hand_written_schemas(schema: dict[str, Any]) -> None:
    # `nullable` is OpenAPI, not JSON Schema; spell it out for the validator.
    check = {"anyOf": [{"type": "null"}, schema]} if schema.get("nullable") else schema
    for seed in range(20):
        jsonschema.validate(SchemaInstanceGenerator(schema, random.Random(seed)).generate(), check)


def test_structured_answer_over_http(server: FakeOpenAIServer) -> None:
    response = _chat(server, response_format=_schema_format(Ballot.model_json_schema()))
    assert response.status_code == 200
    payload = response.json()
    choice = payload["choices"][0]
    assert choice["finish_reason"] == "stop"
    Ballot.model_validate_json(choice["message"]["content"])
    assert payload["model"] == "fake-model"
    assert payload["id"].startswith("chatcmpl-")
    usage = payload["usage"]
    assert usage["completion_tokens"] == len(choice["message"]["content"]) // 4
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_prompt_tokens_track_message_length(server: FakeOpenAIServer) -> None:
    short = _chat(server, content="x" * 40).json()["usage"]["prompt_tokens"]
    long = _chat(server, content="x" * 4000).json()["usage"]["prompt_tokens"]
    assert short == 10
    assert long == 1000


def test_answers_are_deterministic_in_seed_messages_and_schema(server: FakeOpenAIServer) -> None:
    fmt = _schema_format(Ballot.model_json_schema())

    def content(srv: FakeOpenAIServer, text: str) -> str:
        return str(_chat(srv, content=text, response_format=fmt).json()["choices"][0]["message"]["content"])

    first = content(server, "round 1")
    assert content(server, "round 1") == first
    assert content(server, "round 2") != first
    with FakeOpenAIServer(seed=7) as same_seed, FakeOpenAIServer(seed=8) as other_seed:
        assert content(same_seed, "round 1") == first
        assert content(other_seed, "round 1") != first


def test_plain_text_and_json_object_modes(server: FakeOpenAIServer) -> None:
    text = _chat(server).json()["choices"][0]["message"]["content"]
    assert isinstance(text, str) and len(text.split()) > 3
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    obj = _chat(server, response_format={"type": "json_object"}).json()["choices"][0]["message"]["content"]
    assert isinstance(json.loads(obj), dict)


def test_max_tokens_truncates_with_length_finish(server: FakeOpenAIServer) -> None:
    payload = _chat(server, max_tokens=3, response_format=_schema_format(Ballot.model_json_schema())).json()
    choice = payload["choices"][0]
    assert choice["finish_reason"] == "length"
    assert len(choice["message"]["content"]) <= 12
    assert payload["usage"]["completion_tokens"] <= 3


def test_models_endpoint(server: FakeOpenAIServer) -> None:
    response = httpx.get(f"{server.base_url}/models", timeout=5)
    assert response.status_code == 200
    assert [m["id"] for m in response.json()["data"]] == ["fake-model"]


def test_unknown_path_is_404(server: FakeOpenAIServer) -> None:
    assert httpx.post(f"{server.base_url}/embeddings", json={}, timeout=5).status_code == 404


# --------------------------------------------------------------------------- recording


def test_records_authorization_body_and_count(server: FakeOpenAIServer) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "private fact: 42"}], "temperature": 0.3}
    headers = {"Authorization": "Bearer sk-canary-record"}
    httpx.post(f"{server.base_url}/chat/completions", json=body, headers=headers, timeout=5)
    assert server.request_count == 1
    record = server.requests[0]
    assert record["authorization"] == "Bearer sk-canary-record"
    assert record["body"] == body
    assert record["fault"] is None
    server.reset_stats()
    assert server.request_count == 0 and server.requests == []


# --------------------------------------------------------------------------- streaming


def _sse_events(response: httpx.Response) -> list[str]:
    return [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]


@pytest.mark.parametrize("include_usage", [True, False])
def test_streaming_matches_non_streaming(server: FakeOpenAIServer, include_usage: bool) -> None:
    fmt = _schema_format(Ballot.model_json_schema())
    plain = _chat(server, response_format=fmt).json()
    body = {
        "model": "fake-model",
        "messages": [{"role": "user", "content": "Should we fund the bus line?"}],
        "response_format": fmt,
        "stream": True,
        "stream_options": {"include_usage": include_usage},
    }
    with httpx.stream("POST", f"{server.base_url}/chat/completions", json=body, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == plain["choices"][0]["message"]["content"]
    assert len([c for c in chunks if c["choices"]]) > 2  # really chunked
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "stop"
    usage_chunks = [c for c in chunks if c.get("usage")]
    if include_usage:
        assert len(usage_chunks) == 1 and usage_chunks[0]["usage"] == plain["usage"]
    else:
        assert usage_chunks == []


# --------------------------------------------------------------------------- faults


def test_rate_limit_fault_has_retry_after(server: FakeOpenAIServer) -> None:
    server.configure(fault_script=["rate_limit"], retry_after="0.25")
    response = _chat(server)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "0.25"
    assert server.fault_counts["rate_limit"] == 1
    assert _chat(server).status_code == 200  # the script is used up


def test_server_error_and_auth_error_faults(server: FakeOpenAIServer) -> None:
    server.configure(fault_script=["server_error", "auth_error"])
    assert _chat(server).status_code == 500
    response = httpx.post(
        f"{server.base_url}/chat/completions",
        json={"model": "m", "messages": []},
        headers={"Authorization": "Bearer sk-echo-me"},
        timeout=5,
    )
    assert response.status_code == 401
    assert "sk-echo-me" in response.json()["error"]["message"]


def test_malformed_and_empty_faults(server: FakeOpenAIServer) -> None:
    fmt = _schema_format(Stance.model_json_schema())
    server.configure(fault_script=["malformed", "malformed", "malformed", "malformed", "empty"])
    for _ in range(4):
        content = _chat(server, response_format=fmt).json()["choices"][0]["message"]["content"]
        with pytest.raises(json.JSONDecodeError):
            json.loads(content)
    empty = _chat(server, response_format=fmt).json()
    assert empty["choices"][0]["message"]["content"] == ""
    assert empty["usage"]["completion_tokens"] == 0
    assert server.fault_counts == {"malformed": 4, "empty": 1}


def test_disconnect_fault_closes_without_response(server: FakeOpenAIServer) -> None:
    server.configure(fault_script=["disconnect"])
    with pytest.raises(httpx.RemoteProtocolError):
        _chat(server)
    assert _chat(server).status_code == 200


def test_hang_outlasts_client_deadline_and_stop_wakes_it() -> None:
    srv = FakeOpenAIServer(hang_s=30.0, fault_script=["hang"]).start()
    try:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{srv.base_url}/chat/completions", json={"model": "m", "messages": []}, timeout=0.3)
        assert time.monotonic() - started < 5
        assert srv.fault_counts["hang"] == 1
    finally:
        started = time.monotonic()
        srv.stop()  # must not wait for the sleeping handler
        assert time.monotonic() - started < 5


def test_latency_fault_adds_delay(server: FakeOpenAIServer) -> None:
    server.configure(fault_script=["latency"], extra_latency_s=0.4)
    started = time.monotonic()
    assert _chat(server).status_code == 200
    assert time.monotonic() - started >= 0.35


def test_fault_rates_are_seeded_and_counted() -> None:
    rates = {"rate_limit": 0.2, "server_error": 0.1, "empty": 0.1}
    observed = []
    for _ in range(2):
        with FakeOpenAIServer(seed=3, fault_rates=rates) as srv:
            statuses = [_chat(srv).status_code for _ in range(60)]
            observed.append((statuses, dict(srv.fault_counts), [r["fault"] for r in srv.requests]))
    (statuses, counts, faults), (statuses2, counts2, faults2) = observed
    assert statuses == statuses2 and counts == counts2 and faults == faults2
    assert statuses.count(429) == counts["rate_limit"] > 0
    assert statuses.count(500) == counts["server_error"] > 0
    assert sum(counts.values()) == sum(f is not None for f in faults)
    with FakeOpenAIServer(seed=4, fault_rates=rates) as other:
        assert [_chat(other).status_code for _ in range(60)] != statuses


def test_configure_rejects_bad_faults(server: FakeOpenAIServer) -> None:
    with pytest.raises(ValueError):
        server.configure(fault_rates={"gremlins": 0.1})
    with pytest.raises(ValueError):
        server.configure(fault_rates={"hang": 0.7, "empty": 0.7})
    with pytest.raises(ValueError):
        server.configure(fault_script=["nope"])
    assert set(FAULT_KINDS) >= {
        "latency",
        "hang",
        "rate_limit",
        "server_error",
        "malformed",
        "empty",
        "disconnect",
    }


# --------------------------------------------------------------------------- concurrency


async def _raw_post(port: int, body: bytes) -> bytes:
    # Raw sockets: httpx's pool itself becomes the bottleneck at this concurrency,
    # and this test is about the server.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data


async def test_256_slow_requests_overlap() -> None:
    n, latency = 256, 0.2
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    with FakeOpenAIServer(latency_s=latency) as srv:
        started = time.monotonic()
        responses = await asyncio.gather(*[_raw_post(srv.port, body) for _ in range(n)])
        elapsed = time.monotonic() - started
        assert all(r.startswith(b"HTTP/1.1 200") for r in responses)
        assert srv.request_count == n
        # Serialised, this would take n * latency = 51 s.
        assert elapsed < 5.0
        assert srv.max_in_flight >= n // 2


# --------------------------------------------------------------------------- CLI


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_cli_serves_until_terminated() -> None:
    port = _free_port()
    script = Path(__file__).with_name("fake_openai.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), "--port", str(port), "--latency", "0", "--fault", "server_error=1.0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert f"127.0.0.1:{port}" in proc.stdout.readline()
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions", json={"model": "m", "messages": []}, timeout=5
        )
        assert response.status_code == 500
    finally:
        proc.terminate()
        proc.wait(timeout=10)
