"""The lean OpenAI-compatible client: Chat Completions on pooled keep-alive connections per event loop.

At a thousand members, the client's own CPU per call decides whether a round lasts
the model's latency or several times it, and the tool's CPU must not pass for the
members' slowness. The OpenAI SDK spends most of its ~4 ms per call in its request
transform (a recursive walk of the whole JSON schema), httpx, httpcore and anyio;
this client posts a body built as text, with the response format's JSON spliced in
as built once per output type (`response_format.WireFormat`), on connections that
are reused across calls, and parses the answer with one ``json.loads``.

A whole answer (every member turn) goes through `http1`, a minimal HTTP/1.1
client that writes a request in one piece; aiohttp, which costs about 0.2 ms of
CPU more per request (bench/client_cpu.py), carries streams and requests through
a proxy.

What a provider error is stays legible to `errors.classify_error`: HTTP statuses
keep their ``status_code`` and headers (so ``Retry-After`` is honoured), dropped
connections and cut bodies are `ConnectionError`, timeouts are `TimeoutError`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import ssl
import urllib.request
import weakref
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import aiohttp
import yarl
from autogen_core.models import CreateResult

from assembly.core.redaction import redact_url
from assembly.llm.cancellation import await_linked
from assembly.llm.http1 import Endpoint, HTTPConnectionError
from assembly.llm.json_text import Literals, dumps_spliced, take_texts
from assembly.llm.response_format import WireFormat, response_format_for
from assembly.llm.wire import ProviderClient, StreamedAnswer, finish_reason, to_openai_messages, tool_calls_of, usage_of
from assembly.llm.wrappers import Chunk, CreateCall, public_args

OPENAI_BASE_URL = "https://api.openai.com/v1"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})  # a local server is never reached through a proxy


class ProviderHTTPError(Exception):
    """The server answered with an error status. ``status_code`` and ``headers`` are
    what `errors.classify_error` and `errors.retry_after_s` read."""

    def __init__(self, status_code: int, headers: Mapping[str, str], message: str) -> None:
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code
        self.headers = headers


class ProviderConnectionError(ConnectionError):
    """The connection failed, was dropped, or the answer was cut short."""


class ProviderResponseError(Exception):
    """A 2xx answer that is not a Chat Completions answer (retrying will not help)."""


_NO_TIMEOUT = aiohttp.ClientTimeout(total=None)


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes tens of milliseconds; every session shares one context.
    return ssl.create_default_context()


class OpenAICompatClient(ProviderClient):
    """An autogen ``ChatCompletionClient`` that speaks Chat Completions over HTTP (`http1`, or aiohttp
    for streams and proxies).

    ``names`` sends each message's source as its ``name``, as autogen's OpenAI client
    did (the ``openai`` client path keeps sending it; litellm never did). The session
    and the `http1` connections are made on first use in each event loop (connections
    belong to one loop) and closed by `close` in the loop that calls it. No retries here: `structured` retries
    and records every attempt. The deadline of an answer is `wrappers.GatedClient`'s
    per-attempt one (every client is made under it, by `clients.make_client`), so a
    `create` sets no timer of its own (one per request, at every call); ``timeout_s``
    bounds a stream, which the gate cannot time from outside its generator.
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key: str | None,
        timeout_s: float,
        names: bool = False,
        literals: Literals | None = None,
    ) -> None:
        self._base = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL).rstrip("/")
        self._key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self._model = model
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._names = names
        self._literals = literals if literals is not None else Literals()
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
            weakref.WeakKeyDictionary()
        )
        super().__init__()

    # ------------------------------------------------------------------ requests

    @functools.cached_property
    def _endpoint(self) -> tuple[yarl.URL, dict[str, str], str | None]:
        """The URL to post to, the headers to send and the proxy to go through, worked
        out on the first request (a rerun answered from the cache never makes one,
        whatever its recorded api_base). The proxy comes from the environment, as
        ``trust_env`` would find it, but once: aiohttp looks it up in a thread per request."""
        try:
            base = yarl.URL(self._base)
        except ValueError as exc:
            raise ValueError(f"api_base {redact_url(self._base)} is not a usable URL ({exc})") from None
        url = (
            base.with_user(None)
            .with_path(base.raw_path.rstrip("/") + "/chat/completions", encoded=True)
            .with_query(base.query)
        )
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if base.user is not None:
            # Credentials written into the URL mean Basic auth (as httpx sends them),
            # e.g. for an authenticating proxy; they take the Authorization header.
            headers["Authorization"] = aiohttp.BasicAuth(base.user, base.password or "").encode()
        elif self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        bypass = url.host is None or url.host in _LOOPBACK or urllib.request.proxy_bypass(url.host)
        return url, headers, None if bypass else urllib.request.getproxies().get(url.scheme)

    @functools.cached_property
    def _direct(self) -> Endpoint | None:
        """The lean transport (`http1`) for answers read whole, when no proxy is in the way."""
        url, headers, proxy = self._endpoint
        if proxy is not None or url.scheme not in ("http", "https") or url.raw_host is None:
            return None
        port = url.port if url.port is not None else (443 if url.scheme == "https" else 80)
        ctx = _ssl_context() if url.scheme == "https" else None
        return Endpoint(
            scheme=url.scheme, host=url.raw_host, port=port, target=url.raw_path_qs, headers=headers, ssl_context=ctx
        )

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            # No connection limit here: the profile's rate limiter caps requests in flight.
            https = self._endpoint[0].scheme == "https"
            connector = aiohttp.TCPConnector(limit=0, ssl=_ssl_context() if https else False, keepalive_timeout=60)
            # No Accept-Encoding: answers are a few kB, and decompressing them costs
            # more CPU than the bytes cost on the wire.
            session = self._sessions[loop] = aiohttp.ClientSession(
                connector=connector, timeout=_NO_TIMEOUT, skip_auto_headers=("User-Agent", "Accept-Encoding")
            )
        return session

    def _body(self, call: CreateCall, stream: bool) -> bytes:
        if call.tools:
            raise ValueError("tools are not supported: members only need text and structured output")
        args = public_args(call.extra_create_args)
        fmt = args.pop("response_format", None)
        from_output = response_format_for(call.json_output)
        if fmt is not None and from_output is not None:
            raise ValueError("json_output and extra_create_args['response_format'] are both set")
        fmt = fmt if fmt is not None else from_output
        messages = to_openai_messages(call.messages, names=self._names)
        texts = take_texts(messages)  # each escaped once (a member's system message, once a run)
        body: dict[str, Any] = {"model": self._model, "messages": messages}
        body.update(args.pop("extra_body", None) or {})
        body.update(args)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        text = dumps_spliced(body, texts, self._literals)
        if fmt is not None:
            encoded = fmt.encoded if isinstance(fmt, WireFormat) else json.dumps(fmt, ensure_ascii=False)
            text = f'{text[:-1]},"response_format":{encoded}}}'
        return text.encode()

    async def _open(self, body: bytes, timeout: aiohttp.ClientTimeout = _NO_TIMEOUT) -> aiohttp.ClientResponse:
        """POST and return the response once its status is a success; the caller releases it."""
        url, headers, proxy = self._endpoint
        try:
            response = await self._session().post(url, data=body, headers=headers, proxy=proxy, timeout=timeout)
        except aiohttp.ClientConnectionError as exc:
            raise ProviderConnectionError(f"{type(exc).__name__}: {exc}") from exc
        if response.status >= 400:
            try:
                raw = await response.read()
            except aiohttp.ClientError:
                raw = b""
            finally:
                response.release()
            raise ProviderHTTPError(response.status, response.headers, _error_message(raw))
        return response

    async def _complete(self, body: bytes) -> dict[str, Any]:
        direct = self._direct
        if direct is not None:
            try:
                whole = await direct.post(body)
            except HTTPConnectionError as exc:
                raise ProviderConnectionError(str(exc)) from exc
            if whole.status >= 400:
                raise ProviderHTTPError(whole.status, whole.headers, _error_message(whole.body))
            raw = whole.body
        else:
            raw = await self._read_whole(body)
        try:
            answer = json.loads(raw)
            answer["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ProviderResponseError(f"not a chat completion: {raw[:200]!r}") from exc
        return answer  # type: ignore[no-any-return]

    async def _read_whole(self, body: bytes) -> bytes:
        """The answer's bytes, through aiohttp (the path for proxied endpoints)."""
        response = await self._open(body)
        try:
            return await response.read()
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            raise ProviderConnectionError(f"answer cut short: {exc}") from exc
        finally:
            response.release()

    # ------------------------------------------------------------------ the client interface

    async def on_create(self, call: CreateCall) -> CreateResult:
        answer = await await_linked(self._complete(self._body(call, stream=False)), call.cancellation_token)
        choice = answer["choices"][0]
        message = choice["message"]
        usage = usage_of(answer.get("usage"))
        self.add_usage(usage)
        calls = tool_calls_of(message)
        return CreateResult(
            finish_reason=finish_reason(choice.get("finish_reason")),
            content=calls if calls is not None and not message.get("content") else message.get("content") or "",
            usage=usage,
            cached=False,
            thought=message.get("reasoning_content") or None,
        )

    async def on_stream(self, call: CreateCall) -> AsyncGenerator[Chunk, None]:
        response = await await_linked(self._open(self._body(call, stream=True), self._timeout), call.cancellation_token)
        answer = StreamedAnswer()
        try:
            while True:
                try:
                    line = await await_linked(response.content.readline(), call.cancellation_token)
                except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
                    raise ProviderConnectionError(f"stream cut short: {exc}") from exc
                if not line:
                    break
                data = line.strip()
                if not data.startswith(b"data:"):
                    continue  # blank separators, comments, event names
                data = data[5:].strip()
                if data == b"[DONE]":
                    break
                chunk = json.loads(data)
                if chunk.get("usage"):
                    answer.usage = usage_of(chunk["usage"])
                for choice in chunk.get("choices") or []:
                    answer.finish = choice.get("finish_reason") or answer.finish
                    delta = choice.get("delta") or {}
                    if delta.get("reasoning_content"):
                        answer.thoughts.append(delta["reasoning_content"])
                    if delta.get("content"):
                        answer.parts.append(delta["content"])
                        yield delta["content"]
        finally:
            response.release()
        result = answer.result()
        self.add_usage(result.usage)
        yield result

    async def close(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - autogen closes clients from a loop
            return
        session = self._sessions.pop(loop, None)
        if session is not None:
            await session.close()
        direct = self.__dict__.get("_direct")
        if direct is not None:
            direct.close(loop)


def _error_message(raw: bytes) -> str:
    """The provider's own error message (OpenAI's ``{"error": {"message": ...}}``), else the body's start."""
    try:
        error = json.loads(raw).get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)[:500]
    except (ValueError, AttributeError):
        pass
    return raw[:500].decode("utf-8", "replace") or "(no body)"
