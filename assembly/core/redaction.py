"""Keys kept out of every byte the tool writes or prints.

One place knows what a secret looks like: the values registered here (every key a
model client is built with, and every `*_API_KEY`-style environment value), common
provider key shapes, bearer tokens, and credentials written into a URL
(`http://user:key@host`). The boundaries that write or print (the transcript
writer, summary and report files, sweep tables, the response cache, the terminal,
error messages) pass their text through `redact`, so a key is removed whatever
produced the text: an error body, a provider that echoes the Authorization header
inside a normal answer, or an `--api-base` with credentials in it.

The registry is process-wide on purpose: a key registered when a model client is
built must be known to the transcript writer and the terminal of the same process,
which share nothing else. It only ever grows, and is guarded by a lock because
model calls run in threads (litellm) as well as in the event loop.
"""

from __future__ import annotations

import base64
import re
import threading
from urllib.parse import unquote

REDACTED = "[REDACTED]"

_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
_SECRETS_PATTERN: list[re.Pattern[str] | None] = [None]  # rebuilt when the registry grows

# Shapes of provider keys, removed even if they were never registered (e.g. a key
# litellm picked up from a provider's default environment variable).
_KEY_SHAPES = re.compile(r"\b(?:sk|gsk|xai|hf|pk)[-_][A-Za-z0-9_\-]{8,}|AIza[A-Za-z0-9_\-]{20,}")
_BEARER = re.compile(r"(Bearer\s+)\S+", re.IGNORECASE)
# user:password@ in a URL. Quotes, backslashes and whitespace end the match, so it
# never runs across a JSON string boundary in a transcript line.
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/@:\"'\\<>]+:[^\s/@\"'\\<>]+@")
# Any user information, for URLs known to be endpoints (a profile's api_base).
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/@\"'\\<>]+@")
_MIN_SECRET_LEN = 6  # shorter values would redact ordinary words


def register_secret(value: str | None) -> None:
    """Remember a key so that `redact` removes it from any text written or printed."""
    if not value or len(value) < _MIN_SECRET_LEN:
        return
    with _SECRETS_LOCK:
        if value in _SECRETS:
            return
        _SECRETS.add(value)
        # Longest first, so a key that contains another is removed whole.
        ordered = sorted(_SECRETS, key=len, reverse=True)
        _SECRETS_PATTERN[0] = re.compile("|".join(re.escape(s) for s in ordered))


def register_url_credentials(url: str | None) -> None:
    """Register the credentials written into a URL (`scheme://user:key@host`, or a
    token as the user), whole and by parts, so each is removed wherever it appears."""
    match = _URL_USERINFO.search(url or "")
    if match is None:
        return
    userinfo = match.group(0)[len(match.group(1)) : -1]
    user, _, password = userinfo.partition(":")
    plain = f"{unquote(user)}:{unquote(password)}"
    # HTTP clients send URL credentials as Basic auth: base64 of the decoded pair.
    basic = base64.b64encode(plain.encode()).decode()
    for value in (userinfo, password or user, unquote(password or user), plain, basic):
        register_secret(value)


def redact(text: str) -> str:
    """`text` with every registered key and URL credential replaced by [REDACTED];
    nothing else changes (no clipping, no folding), so it is safe on transcript lines
    and answers.

    Key *shapes* and bearer tokens are left to `scrub` (messages and logs): on data
    they would also hit ordinary words and ids ("the bearer instruments", an option
    called `pk_parking_levy`), and every key in the environment is registered anyway."""
    pattern = _SECRETS_PATTERN[0]
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    if "://" in text:
        text = _URL_CREDENTIALS.sub(rf"\1{REDACTED}@", text)
    return text


def redact_url(url: str | None) -> str | None:
    """A URL as it may be shown or stored: any user information replaced, the rest kept."""
    return None if url is None else _URL_USERINFO.sub(rf"\1{REDACTED}@", url)


def has_redacted_credentials(url: str | None) -> bool:
    """True for a URL whose credentials were replaced by `redact_url` when stored."""
    return url is not None and f"://{REDACTED}@" in url


def scrub(text: str, limit: int = 300) -> str:
    """Text safe to log: `redact`ed, key-shaped and bearer tokens removed too, folded
    to one line and clipped to `limit` characters."""
    text = _BEARER.sub(rf"\1{REDACTED}", _KEY_SHAPES.sub(REDACTED, redact(text)))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
