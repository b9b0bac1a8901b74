"""Provider errors: which are worth retrying (and under which kind they are recorded), and when to retry.

A liveness study must tell a provider's 429 from a dropped connection, a 5xx or a
timeout, whichever client path raised it; each SDK labels them differently, and
litellm wraps the OpenAI SDK's errors, which wrap the transport's, so the kind is
read from the whole cause chain, as is the server's ``Retry-After``.
"""

from __future__ import annotations

import email.utils
import sys
import time
from typing import Any


def _loaded(module: str, *names: str) -> tuple[type[BaseException], ...]:
    """Exception classes of an SDK, if it is imported at all: an error of a class can
    only exist once its module is loaded, and importing the OpenAI SDK just to test
    for its errors would spend a second of CPU inside a member's turn."""
    mod = sys.modules.get(module)
    return tuple(getattr(mod, name) for name in names) if mod is not None else ()


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes: litellm wraps the SDK error, which wraps the transport error."""
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in out and len(out) < 10:
        out.append(current)
        current = current.__cause__ or current.__context__
    return out


def classify_error(exc: BaseException) -> str | None:
    """Retryable provider error kind (rate_limit, server_error, connection, timeout), else None.

    Looks through the cause chain because wrappers re-label errors: litellm reports a
    dropped connection as a 500 whose cause is the SDK's ``APIConnectionError``.
    """
    chain = _chain(exc)
    timeouts: tuple[type[BaseException], ...] = (
        TimeoutError,
        *_loaded("openai", "APITimeoutError"),
        *_loaded("httpx", "TimeoutException"),
    )
    if any(isinstance(e, timeouts) for e in chain):
        return "timeout"
    rate_limits: tuple[type[BaseException], ...] = _loaded("openai", "RateLimitError")
    if any(isinstance(e, rate_limits) or getattr(e, "status_code", None) == 429 for e in chain):
        return "rate_limit"
    if any(_is_connection_error(e) for e in chain):
        return "connection"
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 500 <= status < 600:
        return "server_error"
    return None


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(
        exc, (ConnectionError, *_loaded("openai", "APIConnectionError"), *_loaded("httpx", "TransportError"))
    ):
        return True
    # aiohttp (litellm's transport) errors may surface unwrapped.
    names = {c.__name__ for c in type(exc).__mro__}
    return type(exc).__module__.startswith("aiohttp") and bool(
        names & {"ClientConnectionError", "ServerDisconnectedError"}
    )


def retry_after_s(exc: BaseException) -> float | None:
    """The server's ``Retry-After`` (or ``retry-after-ms``) anywhere in the cause chain, in seconds."""
    for e in _chain(exc):
        value = _retry_after_header(e)
        if value is not None:
            return value
    return None


def _retry_after_header(exc: BaseException) -> float | None:
    headers: Any = None
    response = getattr(exc, "response", None)
    if response is not None:
        headers = getattr(response, "headers", None)
    if not headers:
        headers = getattr(exc, "litellm_response_headers", None) or getattr(exc, "headers", None)
    if not headers:
        return None
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return float(millis) / 1000.0
        value = headers.get("retry-after")
    except Exception:
        return None
    return None if value is None else _seconds(value)


def _seconds(value: str) -> float | None:
    """A Retry-After value: delay seconds, or an HTTP date."""
    try:
        return float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())
