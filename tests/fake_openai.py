"""A small OpenAI-compatible HTTP server for tests and benchmarks.

No real model is reachable from CI, yet every model code path has to be exercised
end to end over real HTTP (connection pools, timeouts, status codes, SSE parsing,
client-side cancellation). This server speaks just enough of the Chat Completions
API for the OpenAI SDK, litellm and autogen to treat it as a real provider:

* ``POST /v1/chat/completions`` answers structured-output requests with a JSON
  instance of the requested schema, and plain requests with a short sentence.
  Answers are a pure function of (server seed, messages, schema), so a cached
  re-run and a live run see the same content.
* ``GET /v1/models`` lists the configured model names.
* Faults (``latency``, ``hang``, ``rate_limit``, ``server_error``, ``malformed``,
  ``empty``, ``disconnect``, ``auth_error``, ``echo_auth``) are injected per request from a ``random.Random``
  seeded by (seed, request index), so a faulty run is reproducible and tests can
  compare ``fault_counts`` with what the client recorded.

It is deliberately built on the stdlib (``ThreadingHTTPServer``: one thread per
connection) so that slow requests overlap instead of queueing: 256 concurrent
requests with 200 ms latency finish in about 200 ms of wall time.

Run standalone for manual tests and benchmarks::

    python tests/fake_openai.py --port 8000 --latency 0.2 --fault rate_limit=0.05
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import random
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

FAULT_KINDS: tuple[str, ...] = (
    "latency",
    "hang",
    "rate_limit",
    "server_error",
    "malformed",
    "empty",
    "disconnect",
    "auth_error",
    "echo_auth",
)

_WORDS = [
    "housing",
    "transit",
    "budget",
    "school",
    "park",
    "water",
    "energy",
    "safety",
    "clinic",
    "library",
    "youth",
    "elders",
    "neighbourhood",
    "council",
    "tax",
    "fairness",
    "access",
    "cost",
    "trust",
    "evidence",
    "proposal",
    "priority",
    "compromise",
    "community",
    "climate",
    "jobs",
    "rent",
    "zoning",
    "bus",
    "bike",
    "garden",
    "noise",
    "data",
]

_SENTENCES = (
    "I think we should weigh the {a} question against the {b} costs before deciding.",
    "From what I know about {a}, the {b} option seems fairer to most residents.",
    "My concern is that {a} gets ignored if we focus only on {b}.",
    "I could support a compromise that funds {a} first and revisits {b} next year.",
    "The evidence on {a} is mixed, so I would like to hear more about {b}.",
)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _message_chars(messages: Iterable[Any]) -> int:
    """Characters of text in the messages, used for a chars/4 token estimate."""
    total = 0
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        content = message.get("content")
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                    total += len(part["text"])
    return total


def _tokens(chars: int) -> int:
    return max(1, chars // 4) if chars else 0


class SchemaInstanceGenerator:
    """Draws a JSON instance conforming to a JSON schema (the subset used by pydantic/OpenAI).

    Supported: object/properties/required/additionalProperties, enum, const, string
    (min/maxLength, a few formats), integer/number (inclusive and exclusive bounds,
    multipleOf for integers), boolean, null, array (items, prefixItems, min/maxItems,
    uniqueItems), anyOf/oneOf/allOf, $ref into $defs/definitions, type lists and
    OpenAPI-style ``nullable``. ``pattern`` is not honoured.
    """

    _MAX_DEPTH = 8

    def __init__(self, root: Mapping[str, Any], rng: random.Random, echo: str = "") -> None:
        self.root = root
        self.rng = rng
        self.echo = echo  # put at the start of every free-text string that has room for it

    def generate(self) -> Any:
        return self._gen(self.root, 0)

    def _resolve(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref is supported, got {ref!r}")
        node: Any = self.root
        for raw in ref.lstrip("#").strip("/").split("/"):
            if not raw:
                continue
            key = raw.replace("~1", "/").replace("~0", "~")
            node = node[int(key)] if isinstance(node, list) else node[key]
        return node  # type: ignore[no-any-return]

    def _deref(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        # A $ref may have sibling keywords (e.g. a description); siblings win.
        seen = 0
        while "$ref" in schema and seen < 32:
            target = self._resolve(schema["$ref"])
            merged = dict(target)
            merged.update({k: v for k, v in schema.items() if k != "$ref"})
            schema = merged
            seen += 1
        return schema

    def _merge_all_of(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = self._deref(part)
            for key, value in part.items():
                if key == "properties":
                    merged.setdefault("properties", {}).update(value)
                elif key == "required":
                    merged["required"] = sorted(set(merged.get("required", [])) | set(value))
                else:
                    merged.setdefault(key, value)
        return merged

    def _gen(self, schema: Any, depth: int) -> Any:
        if schema is True or schema == {}:
            return self._string({}, depth)
        if schema is False or not isinstance(schema, Mapping):
            return None
        schema = self._deref(schema)
        if "allOf" in schema:
            schema = self._merge_all_of(schema)
        if "const" in schema:
            return copy.deepcopy(schema["const"])
        if "enum" in schema:
            return copy.deepcopy(self.rng.choice(list(schema["enum"])))
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self._gen(self._pick_branch(schema[key], depth), depth + 1)
        if schema.get("nullable") and self.rng.random() < 0.2:
            return None
        stype = schema.get("type")
        if isinstance(stype, list):
            non_null = [t for t in stype if t != "null"]
            if not non_null or ("null" in stype and (self.rng.random() < 0.2 or depth > self._MAX_DEPTH)):
                return None
            stype = non_null[0]
        if stype is None:
            if "properties" in schema or "additionalProperties" in schema:
                stype = "object"
            elif "items" in schema or "prefixItems" in schema:
                stype = "array"
            else:
                stype = "string"
        generator = {
            "object": self._object,
            "array": self._array,
            "string": self._string,
            "integer": self._integer,
            "number": self._number,
            "boolean": lambda s, d: self.rng.random() < 0.5,
            "null": lambda s, d: None,
        }.get(stype)
        if generator is None:
            raise ValueError(f"unsupported schema type {stype!r}")
        return generator(schema, depth)

    def _pick_branch(self, branches: list[Any], depth: int) -> Any:
        resolved = [self._deref(b) if isinstance(b, Mapping) else b for b in branches]
        nulls = [b for b in resolved if isinstance(b, Mapping) and b.get("type") == "null"]
        others = [b for b in resolved if not (isinstance(b, Mapping) and b.get("type") == "null")]
        if nulls and (not others or depth > self._MAX_DEPTH or self.rng.random() < 0.2):
            return nulls[0]
        return self.rng.choice(others)

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        props: Mapping[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        out: dict[str, Any] = {}
        for name, sub in props.items():
            if name in required or (depth <= self._MAX_DEPTH and self.rng.random() < 0.6):
                out[name] = self._gen(sub, depth + 1)
        extra = schema.get("additionalProperties")
        if not props and isinstance(extra, Mapping) and depth <= self._MAX_DEPTH:
            for _ in range(max(int(schema.get("minProperties", 0)), self.rng.randint(1, 2))):
                out[self.rng.choice(_WORDS) + str(len(out))] = self._gen(extra, depth + 1)
        return out

    def _array(self, schema: Mapping[str, Any], depth: int) -> list[Any]:
        prefix = list(schema.get("prefixItems", []))
        lo = int(schema.get("minItems", 0))
        hi = int(schema.get("maxItems", max(lo, len(prefix)) + 3))
        if depth > self._MAX_DEPTH:
            n = lo
        else:
            n = self.rng.randint(max(lo, min(1, hi), len(prefix) if prefix else 0), max(lo, hi))
            n = min(n, hi)
        items_schema = schema.get("items", {})
        out: list[Any] = []
        seen: set[str] = set()
        attempts = 0
        while len(out) < n and attempts < n * 20 + 20:
            attempts += 1
            idx = len(out)
            sub = prefix[idx] if idx < len(prefix) else items_schema
            if items_schema is False and idx >= len(prefix):
                break
            value = self._gen(sub, depth + 1)
            if schema.get("uniqueItems"):
                key = _canonical(value)
                if key in seen:
                    continue
                seen.add(key)
            out.append(value)
        return out

    def _string(self, schema: Mapping[str, Any], depth: int) -> str:
        fmt = schema.get("format")
        fixed = {
            "date-time": "2024-05-17T10:00:00Z",
            "date": "2024-05-17",
            "time": "10:00:00",
            "email": "member@example.org",
            "uri": "https://example.org/assembly",
            "uuid": "00000000-0000-4000-8000-000000000000",
        }.get(str(fmt))
        lo = int(schema.get("minLength", 0))
        hi = int(schema.get("maxLength", max(lo, 80)))
        if fixed is not None and lo <= len(fixed) <= hi:
            return fixed
        words = [self.rng.choice(_WORDS) for _ in range(self.rng.randint(1, 8))]
        text = " ".join(words)
        if self.echo and len(self.echo) + 1 + len(text) <= hi:
            text = f"{self.echo} {text}"
        while len(text) < lo:
            text += " " + self.rng.choice(_WORDS)
        if len(text) > hi:
            text = text[:hi].rstrip() if hi >= lo else text[:hi]
            while len(text) < lo:  # stripping may have gone below minLength
                text += "x"
        return text

    def _bounds(self, schema: Mapping[str, Any], integer: bool) -> tuple[float, float]:
        step = 1.0 if integer else 1e-6
        lo: float | None = schema.get("minimum")
        ex_lo = schema.get("exclusiveMinimum")
        if ex_lo is not None and not isinstance(ex_lo, bool):
            lo = ex_lo + step if lo is None else max(lo, ex_lo + step)
        hi: float | None = schema.get("maximum")
        ex_hi = schema.get("exclusiveMaximum")
        if ex_hi is not None and not isinstance(ex_hi, bool):
            hi = ex_hi - step if hi is None else min(hi, ex_hi - step)
        if lo is None and hi is None:
            return 0.0, 10.0
        if lo is None:
            assert hi is not None
            return float(hi) - 10.0, float(hi)
        if hi is None:
            return float(lo), float(lo) + 10.0
        return float(lo), float(hi)

    def _integer(self, schema: Mapping[str, Any], depth: int) -> int:
        lo_f, hi_f = self._bounds(schema, integer=True)
        lo, hi = int(-(-lo_f // 1)), int(hi_f // 1)  # ceil / floor
        multiple = schema.get("multipleOf")
        if isinstance(multiple, int) and multiple > 0:
            k_lo, k_hi = -(-lo // multiple), hi // multiple
            if k_lo <= k_hi:
                return self.rng.randint(k_lo, k_hi) * multiple
        return self.rng.randint(lo, max(lo, hi))

    def _number(self, schema: Mapping[str, Any], depth: int) -> float:
        lo, hi = self._bounds(schema, integer=False)
        value = round(self.rng.uniform(lo, hi), 3)
        return min(max(value, lo), hi)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # The stdlib default backlog of 5 makes bursts of connections wait for SYN
    # retransmits (~1 s each); a burst of 256 clients must all be accepted at once.
    request_queue_size = 2048
    allow_reuse_address = True
    owner: FakeOpenAIServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that go away (cancelled requests, injected disconnects) are normal here.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    # Idle keep-alive connections release their thread after this many seconds.
    timeout = 60
    # Headers and body go out in separate writes; with Nagle on, the body waits for
    # the client's delayed ACK (~40 ms per request on Linux).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.owner._track(self.connection, add=False)

    def handle(self) -> None:
        with contextlib.suppress(OSError):
            super().handle()

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def do_GET(self) -> None:
        if self._path() in ("/v1/models", "/models"):
            owner = self.server.owner
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in owner.models]
            self.send_json(200, {"object": "list", "data": data})
        else:
            self.send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self) -> None:
        if self._path() in ("/v1/chat/completions", "/chat/completions"):
            self.server.owner._handle_chat(self)
        else:
            self._read_body()
            self.send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        self.send_encoded(status, json.dumps(payload).encode(), headers)

    def send_encoded(self, status: int, data: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


class FakeOpenAIServer:
    """OpenAI-compatible loopback server; see the module docstring.

    ``fault_rates`` maps fault kinds to per-request probabilities (at most one fault
    per request, drawn in ``FAULT_KINDS`` order, so the rates must sum to <= 1).
    ``fault_script`` lists faults (or None) for the next requests in order and takes
    precedence over the rates; it lets a test say "the first request gets a 429"
    without any randomness.
    """

    def __init__(
        self,
        seed: int = 0,
        latency_s: float = 0.0,
        fault_rates: Mapping[str, float] | None = None,
        hang_s: float = 30.0,
        *,
        extra_latency_s: float = 0.5,
        retry_after: str = "0.05",
        fault_script: Iterable[str | None] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        models: Iterable[str] = ("fake-model",),
        formats: Iterable[str] = ("json_schema", "json_object"),
    ) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._host = host
        self._port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self.models = list(models)
        # response_format types it accepts; others get an HTTP 500, as llama-cpp-python's
        # server answers every json_schema request.
        self.formats = frozenset(formats)
        self.seed = seed
        self.latency_s = latency_s
        self.hang_s = hang_s
        self.extra_latency_s = extra_latency_s
        self.retry_after = retry_after
        self.fault_rates: dict[str, float] = {}
        self._fault_script: deque[str | None] = deque()
        self.configure(fault_rates=fault_rates or {}, fault_script=fault_script)
        self._counter = 0
        self._requests: list[dict[str, Any]] = []
        self.fault_counts: Counter[str] = Counter()
        self._in_flight = 0
        self.max_in_flight = 0

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> FakeOpenAIServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _HTTPServer((self._host, self._port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping in latency/hang
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}/v1"

    # ----------------------------------------------------------------- settings
    def configure(
        self,
        *,
        seed: int | None = None,
        latency_s: float | None = None,
        fault_rates: Mapping[str, float] | None = None,
        hang_s: float | None = None,
        extra_latency_s: float | None = None,
        retry_after: str | None = None,
        fault_script: Iterable[str | None] | None = None,
    ) -> None:
        """Change settings; applies to requests that arrive afterwards."""
        if fault_rates is not None:
            unknown = set(fault_rates) - set(FAULT_KINDS)
            if unknown:
                raise ValueError(f"unknown fault kinds {sorted(unknown)}; expected {FAULT_KINDS}")
            if sum(fault_rates.values()) > 1.0 + 1e-9 or any(r < 0 for r in fault_rates.values()):
                raise ValueError("fault rates must be >= 0 and sum to <= 1")
        script = None
        if fault_script is not None:
            script = list(fault_script)
            bad = {k for k in script if k is not None and k not in FAULT_KINDS}
            if bad:
                raise ValueError(f"unknown fault kinds in script: {sorted(bad)}")
        with self._lock:
            if seed is not None:
                self.seed = seed
            if latency_s is not None:
                self.latency_s = latency_s
            if fault_rates is not None:
                self.fault_rates = dict(fault_rates)
            if hang_s is not None:
                self.hang_s = hang_s
            if extra_latency_s is not None:
                self.extra_latency_s = extra_latency_s
            if retry_after is not None:
                self.retry_after = retry_after
            if script is not None:
                self._fault_script = deque(script)

    # ----------------------------------------------------------------- stats
    @property
    def requests(self) -> list[dict[str, Any]]:
        """Snapshot of recorded chat requests: index, headers, authorization, body, fault."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        """Chat requests received since start or the last ``reset_stats()``."""
        with self._lock:
            return len(self._requests)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def reset_stats(self) -> None:
        """Forget recorded requests and counters (the request index keeps counting
        so fault draws stay independent across resets)."""
        with self._lock:
            self._requests.clear()
            self.fault_counts = Counter()
            self.max_in_flight = self._in_flight

    # ----------------------------------------------------------------- internals
    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _draw_fault(self, index: int) -> str | None:
        # Called with the lock held.
        if self._fault_script:
            return self._fault_script.popleft()
        if not self.fault_rates:
            return None
        u = random.Random(f"fault:{self.seed}:{index}").random()
        acc = 0.0
        for kind in FAULT_KINDS:
            acc += self.fault_rates.get(kind, 0.0)
            if u < acc:
                return kind
        return None

    def _handle_chat(self, handler: _Handler) -> None:
        raw = handler._read_body()
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
        except ValueError as exc:
            handler.send_json(400, {"error": {"message": f"invalid JSON body: {exc}", "type": "invalid_request_error"}})
            return
        arrived = time.monotonic()
        with self._lock:
            index = self._counter
            self._counter += 1
            fault = self._draw_fault(index)
            if fault is not None:
                self.fault_counts[fault] += 1
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            latency, hang_s, extra, retry_after = (
                self.latency_s,
                self.hang_s,
                self.extra_latency_s,
                self.retry_after,
            )
            seed = self.seed
            self._requests.append(
                {
                    "index": index,
                    "path": handler.path,
                    "headers": dict(handler.headers.items()),
                    "authorization": handler.headers.get("Authorization"),
                    "body": body,
                    "fault": fault,
                    "t_start": arrived,
                }
            )
        delay = hang_s if fault == "hang" else latency + (extra if fault == "latency" else 0.0)
        answering = False

        def answer_leaves() -> None:
            # A request stops being in flight when its answer starts to leave: a client
            # may read the answer and send its next request before this thread gets
            # back from writing, and that must not count as one more in flight.
            nonlocal answering
            if not answering:
                answering = True
                with self._lock:
                    self._in_flight -= 1

        try:
            self._respond(handler, body, index, fault, seed, arrived + delay, retry_after, answer_leaves)
        finally:
            answer_leaves()

    def _respond(
        self,
        handler: _Handler,
        body: dict[str, Any],
        index: int,
        fault: str | None,
        seed: int,
        due: float,
        retry_after: str,
        answer_leaves: Callable[[], None],
    ) -> None:
        """Answer at `due` (monotonic): the request's arrival plus its latency.

        An answer is computed before the wait, not after it: the latency is the
        provider's, measured from arrival, so a burst of N requests is answered N
        latencies in parallel, not one latency plus N answers' worth of this
        server's CPU in a row (which a benchmark would charge to the client)."""
        if fault is None or fault in ("latency", "malformed", "empty", "echo_auth"):
            reply = self._answer(handler, body, index, fault, seed)
            if self._wait_until(due):
                handler.close_connection = True
                return
            answer_leaves()
            reply()
            return
        if self._wait_until(due):
            handler.close_connection = True
            return
        answer_leaves()
        if fault == "disconnect":
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault == "rate_limit":
            handler.send_json(
                429,
                {
                    "error": {
                        "message": "Rate limit reached (injected)",
                        "type": "rate_limit_error",
                        "code": "rate_limit_exceeded",
                    }
                },
                headers={"Retry-After": retry_after, "retry-after-ms": str(int(float(retry_after) * 1000))},
            )
            return
        if fault == "auth_error":
            # Like real providers, echo (part of) the key back: clients must scrub it.
            auth = handler.headers.get("Authorization", "")
            handler.send_json(
                401,
                {
                    "error": {
                        "message": f"Incorrect API key provided: {auth.removeprefix('Bearer ')}",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
            )
            return
        if fault == "server_error":
            handler.send_json(500, {"error": {"message": "Internal server error (injected)", "type": "server_error"}})

    def _wait_until(self, due: float) -> bool:
        """Sleep until `due`; True when the server is stopping instead."""
        remaining = due - time.monotonic()
        return remaining > 0 and self._stopping.wait(remaining)

    def _answer(
        self, handler: _Handler, body: dict[str, Any], index: int, fault: str | None, seed: int
    ) -> Callable[[], None]:
        """The reply to a request that gets an answer (possibly a damaged one), ready to send."""
        fmt = body.get("response_format")
        if isinstance(fmt, Mapping) and fmt.get("type") not in self.formats:
            message = f"response_format {fmt.get('type')!r} is not supported"
            return lambda: handler.send_json(500, {"error": {"message": message, "type": "server_error"}})
        messages = body.get("messages") or []
        schema = self._schema_of(body)
        content_rng = random.Random(
            int.from_bytes(hashlib.sha256(f"{seed}|{_canonical(messages)}|{_canonical(schema)}".encode()).digest()[:8])
        )
        fault_rng = random.Random(f"content:{seed}:{index}")
        # echo_auth: a 200 answer that quotes the request's Authorization header, as a
        # misconfigured proxy or a model told to repeat its input might.
        echo = f"(you sent {handler.headers.get('Authorization', '')})" if fault == "echo_auth" else ""
        try:
            content = self._content(body, schema, content_rng, echo)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            error = {"error": {"message": f"unsupported schema: {exc}", "type": "invalid_request_error"}}
            return lambda: handler.send_json(400, error)
        if fault == "malformed":
            content = self._malform(content, fault_rng)
        elif fault == "empty":
            content = ""
        finish_reason = "stop"
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(max_tokens, int) and max_tokens > 0 and _tokens(len(content)) > max_tokens:
            content = content[: max_tokens * 4]
            finish_reason = "length"
        prompt_tokens = _tokens(_message_chars(messages))
        completion_tokens = _tokens(len(content))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        model = str(body.get("model", "fake-model"))
        ident = f"chatcmpl-fake-{seed}-{index}"
        created = int(time.time())
        if body.get("stream"):
            streamed_usage = usage if (body.get("stream_options") or {}).get("include_usage") else None
            return lambda: self._stream(handler, ident, created, model, content, finish_reason, streamed_usage)
        answer = {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "system_fingerprint": "fake-openai",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": usage,
        }
        encoded = json.dumps(answer).encode()
        return lambda: handler.send_encoded(200, encoded)

    @staticmethod
    def _schema_of(body: Mapping[str, Any]) -> Any:
        fmt = body.get("response_format")
        if not isinstance(fmt, Mapping):
            return None
        if fmt.get("type") == "json_schema":
            spec = fmt.get("json_schema") or {}
            return spec.get("schema", {}) if isinstance(spec, Mapping) else {}
        if fmt.get("type") == "json_object":
            if isinstance(fmt.get("schema"), Mapping):  # llama.cpp's and llama-cpp-python's form
                return fmt["schema"]
            return {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
        return None

    @staticmethod
    def _content(body: Mapping[str, Any], schema: Any, rng: random.Random, echo: str = "") -> str:
        if schema is not None:
            return json.dumps(SchemaInstanceGenerator(schema, rng, echo).generate(), ensure_ascii=False)
        template = rng.choice(_SENTENCES)
        a, b = rng.sample(_WORDS, 2)
        return (f"{echo} " if echo else "") + template.format(a=a, b=b)

    @staticmethod
    def _malform(content: str, rng: random.Random) -> str:
        # Either prose around the answer or a truncated document: both are invalid JSON,
        # which is what real models produce when they ignore or overrun the format.
        if rng.random() < 0.5 or len(content) < 4:
            return "Sure! Here is my answer: " + content
        return content[: max(1, len(content) // 2)]

    @staticmethod
    def _stream(
        handler: _Handler,
        ident: str,
        created: int,
        model: str,
        content: str,
        finish_reason: str,
        usage: Mapping[str, int] | None,
    ) -> None:
        handler.close_connection = True  # SSE without chunked encoding: the body ends at EOF
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Connection", "close")
        handler.end_headers()

        def chunk(delta: Mapping[str, Any], finish: str | None, extra: Mapping[str, Any] | None = None) -> None:
            payload: dict[str, Any] = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": dict(delta), "logprobs": None, "finish_reason": finish}],
            }
            if extra:
                payload.update(extra)
            handler.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
            handler.wfile.flush()

        chunk({"role": "assistant", "content": ""}, None)
        for start in range(0, len(content), 16):
            chunk({"content": content[start : start + 16]}, None)
        chunk({}, finish_reason)
        if usage is not None:
            payload = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": dict(usage),
            }
            handler.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
        handler.wfile.write(b"data: [DONE]\n\n")
        handler.wfile.flush()


def _parse_fault(text: str) -> tuple[str, float]:
    kind, _, rate = text.partition("=")
    return kind.strip(), float(rate)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible fake server for tests and benchmarks")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hang", type=float, default=30.0, help="seconds a 'hang' fault sleeps")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        type=_parse_fault,
        metavar="KIND=RATE",
        help=f"inject a fault with the given probability; kinds: {', '.join(FAULT_KINDS)}",
    )
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(
        seed=args.seed,
        latency_s=args.latency,
        fault_rates=dict(args.fault),
        hang_s=args.hang,
        host=args.host,
        port=args.port,
    )
    server.start()
    print(f"fake OpenAI server listening on {server.base_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
