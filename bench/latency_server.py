"""An OpenAI-compatible loopback server that answers every request exactly L seconds after it arrives.

The latency benchmarks (`round_wall.py`, `concurrency.py`, `client_cpu.py`,
`profile_llm.py`) stand this server in for a remote provider: what they measure is
the round's wall time over L, so the server must add nothing to L. The tests' server
(`tests/fake_openai.py`) cannot promise that at a few hundred requests in flight: it
is built for faults, on the stdlib's thread-per-connection HTTP server, and spends
about 0.6 ms of its one CPU per request (the stdlib's header parser, a thread switch
per request, the request log), so a burst of 256 requests is stamped up to 0.15 s
late and a round can never come within 1.15 x L of the latency, whatever the client.

This one is an asyncio protocol on one event loop: it reads a request (request
line, Content-Length, body), draws the answer at once (a JSON instance of the
request's schema, from the tests' generator, seeded by the request's index), and
sends it at arrival + L from a timer, keeping the connection alive. No faults, no
request log, no streaming: only the no-fault case the latency goals are about.

It notes when each chat completion arrived (monotonic clock, the system-wide one on
Linux), and `GET /arrivals` hands those times over at once and forgets them: how
long a client took to put a round's requests on the wire, measured where a provider
would see it (`round_wall.py`).

    python bench/latency_server.py --port 8000 --latency 1.0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fake_openai import FakeOpenAIServer, _message_chars, _tokens

_SEP = b"\r\n\r\n"


class _Connection(asyncio.Protocol):
    def __init__(self, server: LatencyServer) -> None:
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        arrived = time.monotonic()
        self.buffer += data
        while True:
            end = self.buffer.find(_SEP)
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            self._answer(head[0], body, arrived)

    def _answer(self, request_line: str, body: bytes, arrived: float) -> None:
        if request_line.startswith("GET /arrivals"):
            self._send(_reply("200 OK", {"arrivals": self.server.take_arrivals()}))
            return
        status, payload = self.server.respond(request_line, body, arrived)
        reply = _reply(status, payload)
        loop = asyncio.get_running_loop()
        loop.call_at(loop.time() + max(0.0, arrived + self.server.latency_s - time.monotonic()), self._send, reply)

    def _send(self, reply: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def _reply(status: str, payload: dict[str, Any]) -> bytes:
    data = json.dumps(payload).encode()
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    return (head + "Connection: keep-alive\r\n\r\n").encode() + data


class LatencyServer:
    """Answers chat completions with a schema instance after exactly `latency_s`."""

    def __init__(self, latency_s: float, seed: int = 0) -> None:
        self.latency_s = latency_s
        self.seed = seed
        self.count = 0
        self.arrivals: list[float] = []

    def take_arrivals(self) -> list[float]:
        taken, self.arrivals = self.arrivals, []
        return taken

    def respond(self, request_line: str, body: bytes, arrived: float) -> tuple[str, dict[str, Any]]:
        method, _, rest = request_line.partition(" ")
        path = rest.split(" ", 1)[0].split("?", 1)[0].rstrip("/")
        if method != "POST" or path not in ("/v1/chat/completions", "/chat/completions"):
            return "404 Not Found", {"error": {"message": "not found", "type": "invalid_request_error"}}
        try:
            request = json.loads(body)
            self.arrivals.append(arrived)
            schema = FakeOpenAIServer._schema_of(request)
            self.count += 1
            content = FakeOpenAIServer._content(request, schema, random.Random(f"{self.seed}:{self.count}"))
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            return "400 Bad Request", {"error": {"message": f"bad request: {exc}", "type": "invalid_request_error"}}
        prompt_tokens = _tokens(_message_chars(request.get("messages") or []))
        completion_tokens = _tokens(len(content))
        return "200 OK", {
            "id": f"chatcmpl-latency-{self.count}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(request.get("model", "fake-model")),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


async def serve(host: str, port: int, latency_s: float) -> None:
    server = LatencyServer(latency_s)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(lambda: _Connection(server), host, port, backlog=4096)
    print(f"latency server listening on http://{host}:{port}/v1", flush=True)
    async with listener:
        await listener.serve_forever()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--latency", type=float, default=0.0, help="seconds from a request's arrival to its answer")
    args = ap.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.latency))


if __name__ == "__main__":
    main()
