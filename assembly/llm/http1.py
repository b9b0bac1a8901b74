"""A minimal HTTP/1.1 client for the one request members make: POST a JSON body, read the whole answer.

Why not aiohttp for this: at N = 256 members the client puts N requests on the
wire back to back on one CPU, and a round lasts the model's latency plus that
burst. Measured side by side against the same loopback server (bench/client_cpu.py:
this transport alone 0.16 ms of CPU per call, a bare aiohttp session 0.36 ms),
aiohttp spends its extra time building a request object, header multidicts, a
writer task and a response object for every call. Here a
request is one ``transport.write`` of a header block made once per endpoint plus
the body, and an answer is parsed in place as its bytes arrive.

Scope, deliberately narrow: POST, a body of known length, an answer read whole;
``http`` and ``https`` (TLS by asyncio, with the caller's `ssl.SSLContext`), no
proxy. Streams and proxied endpoints stay on aiohttp (`openai_http`). Answers may
come with ``Content-Length``, chunked, or delimited by the connection closing;
informational (1xx) answers are skipped. Connections are kept alive and reused
unless the server says ``Connection: close`` or speaks HTTP/1.0; one that fails,
is cancelled mid-answer or sends something unparseable is closed, never reused.
No retry happens here: a failed request raises, and `structured` records and
retries it like any other provider error (aiohttp does not retry a POST either).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from multidict import CIMultiDict

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024  # a chat completion is kilobytes; this only stops a runaway answer
_HEX = b"0123456789abcdefABCDEF"


class HTTPConnectionError(ConnectionError):
    """The connection failed, was dropped before the whole answer arrived, or the
    server sent something that is not an HTTP/1.x answer."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: CIMultiDict[str]
    body: bytes


class _AnswerParser:
    """Incremental parser of one HTTP/1.x answer (after any 1xx ones)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.status = 0
        self.headers: CIMultiDict[str] = CIMultiDict()
        self.keep_alive = True
        self.body = bytearray()
        self._length: int | None = None  # Content-Length, or None: chunked or until close
        self._chunked = False
        self._chunk_left = -1  # bytes left in the current chunk; -1: a size line is next
        self._in_head = True
        self.complete = False

    def feed(self, data: bytes) -> None:
        self.buffer += data
        if self._in_head:
            self._head()
        if not self._in_head and not self.complete:
            self._body()

    def eof(self) -> None:
        """The server closed the connection: only an answer delimited by the close is complete."""
        if not self._in_head and not self.complete and self._length is None and not self._chunked:
            self.body += self.buffer
            self.buffer.clear()
            self.complete = True
            self.keep_alive = False

    def _head(self) -> None:
        while self._in_head:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD_BYTES:
                    raise HTTPConnectionError("answer headers too long")
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            del self.buffer[: end + 4]
            version, _, rest = lines[0].partition(" ")
            code = rest[:3]
            if not version.startswith("HTTP/1.") or not code.isdigit():
                raise HTTPConnectionError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
            status = int(code)
            headers: CIMultiDict[str] = CIMultiDict()
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if not sep or not name or name[0] in " \t":
                    raise HTTPConnectionError(f"malformed answer header: {line[:80]!r}")
                headers.add(name.strip(), value.strip())
            if 100 <= status < 200:
                continue  # informational: the real answer follows
            self.status, self.headers, self._in_head = status, headers, False
            connection = headers.get("Connection", "").lower()
            self.keep_alive = version == "HTTP/1.1" and "close" not in connection
            if "chunked" in headers.get("Transfer-Encoding", "").lower():
                self._chunked = True
            elif "Content-Length" in headers:
                length = headers["Content-Length"].strip()
                if not length.isdigit():
                    raise HTTPConnectionError(f"bad Content-Length: {length[:40]!r}")
                self._length = int(length)
                if self._length > MAX_BODY_BYTES:
                    raise HTTPConnectionError(f"answer too large ({self._length} bytes)")
            elif status in (204, 304):
                self._length = 0
            else:
                self.keep_alive = False  # delimited by the close

    def _body(self) -> None:
        if self._length is not None:
            take = min(self._length - len(self.body), len(self.buffer))
            self.body += self.buffer[:take]
            del self.buffer[:take]
            self.complete = len(self.body) == self._length
        elif self._chunked:
            self._chunks()
        else:
            self.body += self.buffer
            self.buffer.clear()
        if len(self.body) > MAX_BODY_BYTES:
            raise HTTPConnectionError("answer too large")

    def _chunks(self) -> None:
        while not self.complete:
            if self._chunk_left == -1:
                end = self.buffer.find(b"\r\n")
                if end < 0:
                    if len(self.buffer) > MAX_HEAD_BYTES:
                        raise HTTPConnectionError("chunk size line too long")
                    return
                size = bytes(self.buffer[:end]).split(b";", 1)[0].strip()
                if not size or size.strip(_HEX):
                    raise HTTPConnectionError(f"bad chunk size {size[:20]!r}")
                self._chunk_left = int(size, 16)
                del self.buffer[: end + 2]
                if self._chunk_left == 0:
                    self._chunk_left = -2  # trailers follow, up to an empty line
            if self._chunk_left == -2:
                while True:  # trailer lines (not needed), up to an empty line
                    end = self.buffer.find(b"\r\n")
                    if end < 0:
                        if len(self.buffer) > MAX_HEAD_BYTES:
                            raise HTTPConnectionError("answer trailers too long")
                        return
                    del self.buffer[: end + 2]
                    if end == 0:
                        self.complete = True
                        return
            take = min(self._chunk_left, len(self.buffer))
            self.body += self.buffer[:take]
            del self.buffer[:take]
            self._chunk_left -= take
            if self._chunk_left:
                return
            if len(self.buffer) < 2:
                self._chunk_left = 0  # the CRLF after the chunk has not arrived yet
                return
            if self.buffer[:2] != b"\r\n":
                raise HTTPConnectionError("chunk not followed by CRLF")
            del self.buffer[:2]
            self._chunk_left = -1


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request on it at a time."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser: _AnswerParser | None = None
        self.waiter: asyncio.Future[Answer] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, data: bytes, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Answer]:
        assert self.transport is not None
        self.parser = _AnswerParser()
        self.waiter = loop.create_future()
        self.transport.write(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        parser, waiter = self.parser, self.waiter
        if parser is None or waiter is None or waiter.done():
            self._fail(HTTPConnectionError("the server sent data with no request waiting"))
            return
        try:
            parser.feed(data)
        except HTTPConnectionError as exc:
            self._fail(exc)
            return
        if parser.complete:
            self._finish(parser)

    def eof_received(self) -> bool | None:
        parser = self.parser
        if parser is not None and self.waiter is not None and not self.waiter.done():
            parser.eof()
            if parser.complete:
                self._finish(parser)
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            detail = f"{type(exc).__name__}: {exc}" if exc else "the server closed the connection"
            waiter.set_exception(HTTPConnectionError(f"connection lost before the whole answer: {detail}"))

    def _finish(self, parser: _AnswerParser) -> None:
        waiter = self.waiter
        self.parser = self.waiter = None
        if parser.buffer or not parser.keep_alive:
            self.close()  # more than one answer, or the server will close: never reused
        else:
            self.pool.release(self)
        if waiter is not None and not waiter.done():
            waiter.set_result(Answer(parser.status, parser.headers, bytes(parser.body)))

    def _fail(self, exc: Exception) -> None:
        waiter = self.waiter
        self.parser = self.waiter = None
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.transport is not None:
            self.transport.abort()


class _Pool:
    """Idle keep-alive connections to one origin, in one event loop."""

    def __init__(self) -> None:
        self.idle: list[_Connection] = []
        self.busy: set[_Connection] = set()

    def release(self, conn: _Connection) -> None:
        self.busy.discard(conn)
        if not conn.closed:
            self.idle.append(conn)

    def forget(self, conn: _Connection) -> None:
        self.busy.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)

    def close(self) -> None:
        for conn in [*self.idle, *self.busy]:
            conn.close()


class Endpoint:
    """POSTs to one URL (scheme, host, port, path and query), on pooled connections per event loop.

    ``headers`` are sent with every request (Content-Length is added per body).
    ``ssl_context`` is used for ``https``; ``server_hostname`` defaults to the host.
    """

    def __init__(
        self,
        *,
        scheme: str,
        host: str,
        port: int,
        target: str,
        headers: Mapping[str, str],
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if scheme not in ("http", "https"):
            raise ValueError(f"unsupported scheme {scheme!r}")
        self.host, self.port = host, port
        self.ssl = ssl_context if scheme == "https" else None
        if scheme == "https" and self.ssl is None:
            self.ssl = ssl.create_default_context()
        default_port = 443 if scheme == "https" else 80
        shown = f"[{host}]" if ":" in host else host
        authority = shown if port == default_port else f"{shown}:{port}"
        lines = [f"POST {target} HTTP/1.1", f"Host: {authority}"]
        for name, value in headers.items():
            if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
                raise ValueError(f"header {name!r} holds a line break")
            lines.append(f"{name}: {value}")
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        self._pools: dict[asyncio.AbstractEventLoop, _Pool] = {}

    async def post(self, body: bytes) -> Answer:
        """Send ``body`` and return the whole answer, whatever its status.

        Cancelling the caller closes the connection (its answer would arrive on it
        later); a lost connection or an unreadable answer raises `HTTPConnectionError`."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = _Pool()
        conn = pool.idle.pop() if pool.idle else await self._connect(loop, pool)
        pool.busy.add(conn)
        waiter = conn.send(self._head + str(len(body)).encode() + b"\r\n\r\n" + body, loop)
        try:
            return await waiter
        except BaseException:
            if conn.waiter is waiter:
                conn.close()  # cancelled mid-answer: the connection is not reusable
            raise

    async def _connect(self, loop: asyncio.AbstractEventLoop, pool: _Pool) -> _Connection:
        try:
            _, conn = await loop.create_connection(
                lambda: _Connection(pool),
                self.host,
                self.port,
                ssl=self.ssl,
                server_hostname=self.host if self.ssl is not None else None,
            )
        except (OSError, ssl.SSLError) as exc:
            raise HTTPConnectionError(f"cannot connect: {type(exc).__name__}: {exc}") from exc
        return conn

    def close(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Close the connections of ``loop`` (or of every loop)."""
        if loop is None:
            pools, self._pools = list(self._pools.values()), {}
        else:
            pools = [self._pools.pop(loop)] if loop in self._pools else []
        for pool in pools:
            pool.close()
