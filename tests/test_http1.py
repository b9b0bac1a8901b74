"""`llm.http1`, the lean transport, against real loopback servers that answer with scripted bytes.

What a well-behaved provider sends is covered end to end by the model-client tests
(the fake OpenAI server) and the local-model tests (llama.cpp's server). Here each
server writes exact bytes, so the framings and faults a client must survive are
each checked: chunked and close-delimited answers, 1xx answers, ``Connection:
close``, answers cut short, garbage, and a caller cancelled mid-answer. Plus TLS,
with a certificate made for the test.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assembly.llm.http1 import MAX_HEAD_BYTES, Endpoint, HTTPConnectionError, _AnswerParser


class Scripted:
    """A loopback HTTP server whose answer to the k-th request on a connection is scripted."""

    def __init__(self, answers: Callable[[int, int, bytes, bytes], bytes | None]) -> None:
        self.answers = answers  # (connection index, request index on it, head, body) -> raw bytes, None: close
        self.requests: list[tuple[int, bytes, bytes]] = []
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = self.connections
        self.connections += 1
        k = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n"):
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                body = await reader.readexactly(length)
                self.requests.append((conn, head, body))
                raw = self.answers(conn, k, head, body)
                k += 1
                if raw is None:
                    break
                writer.write(raw)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(
    answers: Callable[[int, int, bytes, bytes], bytes | None], ssl_ctx: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[Scripted, int]]:
    script = Scripted(answers)
    server = await asyncio.start_server(script.handle, "127.0.0.1", 0, ssl=ssl_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        yield script, port
    finally:
        server.close()
        await server.wait_closed()


def endpoint(port: int, scheme: str = "http", ctx: ssl.SSLContext | None = None) -> Endpoint:
    return Endpoint(
        scheme=scheme,
        host="127.0.0.1",
        port=port,
        target="/v1/chat/completions",
        headers={"Content-Type": "application/json", "Authorization": "Bearer k"},
        ssl_context=ctx,
    )


def ok(body: bytes, extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


# --------------------------------------------------------------------------- requests and reuse


async def test_a_request_is_sent_as_http_1_1_and_connections_are_reused() -> None:
    async with serving(lambda c, k, h, b: ok(b'{"n":%d}' % k)) as (script, port):
        ep = endpoint(port)
        answers = [await ep.post(b'{"q":1}') for _ in range(3)]
        ep.close()
    assert [a.body for a in answers] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    assert all(a.status == 200 for a in answers)
    assert script.connections == 1  # kept alive
    _, head, body = script.requests[0]
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/chat/completions HTTP/1.1"
    assert f"Host: 127.0.0.1:{port}" in lines and "Content-Length: 7" in lines
    assert "Authorization: Bearer k" in lines and body == b'{"q":1}'


async def test_concurrent_requests_each_get_their_own_answer() -> None:
    async def slow_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                body = await reader.readexactly(length)
                await asyncio.sleep(0.05)
                writer.write(ok(body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(slow_echo, "127.0.0.1", 0)
    ep = endpoint(server.sockets[0].getsockname()[1])
    bodies = [b'{"i":%d}' % i for i in range(40)]
    answers = await asyncio.gather(*(ep.post(b) for b in bodies))
    answers += await asyncio.gather(*(ep.post(b) for b in bodies))
    ep.close()
    server.close()
    assert [a.body for a in answers] == bodies + bodies


async def test_error_statuses_come_back_as_answers_with_their_headers() -> None:
    raw = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 2\r\n\r\n{}"
    async with serving(lambda c, k, h, b: raw) as (_, port):
        answer = await endpoint(port).post(b"{}")
    assert answer.status == 429 and answer.headers["retry-after"] == "7" and answer.body == b"{}"


# --------------------------------------------------------------------------- framings


async def test_a_chunked_answer_with_extensions_and_trailers_is_joined() -> None:
    raw = (
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{"a"\r\n3\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n'
    )
    async with serving(lambda c, k, h, b: raw) as (script, port):
        ep = endpoint(port)
        first = await ep.post(b"{}")
        second = await ep.post(b"{}")
    assert first.body == second.body == b'{"a":1}'
    assert script.connections == 1


async def test_an_answer_delimited_by_the_close_is_read_to_the_end_and_not_reused() -> None:
    def answers(c: int, k: int, h: bytes, b: bytes) -> bytes | None:
        return b'HTTP/1.1 200 OK\r\n\r\n{"whole":true}' if k == 0 else None

    async def close_after(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        script = Scripted(answers)
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
        raw = script.answers(0, 0, b"", b"")
        assert raw is not None
        writer.write(raw)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(close_after, "127.0.0.1", 0)
    ep = endpoint(server.sockets[0].getsockname()[1])
    first = await ep.post(b"{}")
    second = await ep.post(b"{}")
    server.close()
    assert first.body == second.body == b'{"whole":true}'


async def test_informational_answers_are_skipped_and_connection_close_is_honoured() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"{}", "Connection: close\r\n")
    async with serving(lambda c, k, h, b: raw) as (script, port):
        ep = endpoint(port)
        assert (await ep.post(b"{}")).body == b"{}"
        assert (await ep.post(b"{}")).body == b"{}"
    assert script.connections == 2


async def test_an_http_1_0_answer_is_not_reused() -> None:
    async with serving(lambda c, k, h, b: b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}") as (script, port):
        ep = endpoint(port)
        await ep.post(b"{}")
        await ep.post(b"{}")
    assert script.connections == 2


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",  # cut short
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",  # chunk cut short
        b"",  # closed with nothing
    ],
)
async def test_an_answer_cut_short_is_a_connection_error(raw: bytes) -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(raw)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(once, "127.0.0.1", 0)
    with pytest.raises(HTTPConnectionError):
        await endpoint(server.sockets[0].getsockname()[1]).post(b"{}")
    server.close()


@pytest.mark.parametrize(
    "raw",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n folded: header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabc",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nab\r\n0\r\n\r\n",
    ],
)
async def test_garbage_is_a_connection_error_and_the_connection_is_dropped(raw: bytes) -> None:
    answers = [raw, ok(b"{}")]
    async with serving(lambda c, k, h, b: answers[min(c, 1)]) as (script, port):
        ep = endpoint(port)
        with pytest.raises(HTTPConnectionError):
            await ep.post(b"{}")
        assert (await ep.post(b"{}")).body == b"{}"  # on a new connection
    assert script.connections == 2


async def test_a_refused_connection_is_a_connection_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(HTTPConnectionError, match="cannot connect"):
        await endpoint(port).post(b"{}")


async def test_a_cancelled_caller_closes_its_connection_and_the_next_request_uses_a_new_one() -> None:
    def answers(c: int, k: int, h: bytes, b: bytes) -> bytes | None:
        return b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{}" if c == 0 else ok(b'"fresh"')

    async with serving(answers) as (script, port):
        ep = endpoint(port)
        task = asyncio.ensure_future(ep.post(b"{}"))
        await asyncio.sleep(0.1)  # half an answer has arrived
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await ep.post(b"{}")).body == b'"fresh"'
    assert script.connections == 2


async def test_a_connection_the_server_closes_while_idle_is_not_reused() -> None:
    connections = 0

    async def answer_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
        writer.write(ok(b"{}"))
        await writer.drain()
        await asyncio.sleep(0.05)  # a keep-alive timeout, as servers have
        writer.close()

    server = await asyncio.start_server(answer_then_close, "127.0.0.1", 0)
    ep = endpoint(server.sockets[0].getsockname()[1])
    await ep.post(b"{}")
    await asyncio.sleep(0.2)
    assert (await ep.post(b"{}")).body == b"{}"  # not an error on the closed connection
    server.close()
    assert connections == 2


def test_headers_with_line_breaks_are_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        Endpoint(scheme="http", host="h", port=80, target="/", headers={"X": "a\r\nInjected: 1"})


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_https_verifies_the_server_and_speaks_through_tls(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    async with serving(lambda c, k, h, b: ok(b'{"tls":true}'), server_ctx) as (script, port):
        ep = endpoint(port, "https", trusting)
        assert (await ep.post(b"{}")).body == b'{"tls":true}'
        assert (await ep.post(b"{}")).body == b'{"tls":true}'
        ep.close()
        with pytest.raises(HTTPConnectionError):  # the system's CAs do not know this certificate
            await endpoint(port, "https", ssl.create_default_context()).post(b"{}")
    assert script.connections >= 1
    assert f"Host: 127.0.0.1:{port}".encode() in script.requests[0][1]


# --------------------------------------------------------------------------- the parser


@st.composite
def framed(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """An answer body and one valid HTTP/1.1 framing of it."""
    body = draw(st.binary(max_size=300))
    if draw(st.booleans()):
        return body, ok(body)
    sizes = draw(st.lists(st.integers(1, 64), max_size=10))
    chunks, at = [], 0
    for size in sizes:
        part = body[at : at + size]
        at += size
        if part:
            chunks.append(b"%x\r\n%s\r\n" % (len(part), part))
    if at < len(body):
        chunks.append(b"%x\r\n%s\r\n" % (len(body) - at, body[at:]))
    return body, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(chunks) + b"0\r\n\r\n"


@settings(max_examples=300, deadline=None)
@given(framed(), st.lists(st.integers(1, 40), min_size=1, max_size=30))
def test_the_parser_reads_any_split_of_a_framed_answer(case: tuple[bytes, bytes], cuts: list[int]) -> None:
    body, raw = case
    parser = _AnswerParser()
    at = 0
    for size in cuts * (len(raw) // max(1, sum(cuts)) + 1):
        if at >= len(raw):
            break
        assert not parser.complete
        parser.feed(raw[at : at + size])
        at += size
    assert parser.complete and bytes(parser.body) == body and parser.status == 200 and parser.keep_alive
    assert not parser.buffer


def test_the_parser_refuses_endless_headers() -> None:
    parser = _AnswerParser()
    with pytest.raises(HTTPConnectionError, match="too long"):
        parser.feed(b"HTTP/1.1 200 OK\r\nX: " + b"a" * (MAX_HEAD_BYTES + 1))
