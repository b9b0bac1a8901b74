"""The response cache: answers kept on disk so that a rerun replays a run without calling a model.

It is autogen-ext's `ChatCompletionCache` over a `diskcache` directory, whose key is
a SHA-256 over the messages (with each message's ``source``), tools, the
``json_output`` schema and all create args, which carry temperature, max_tokens,
``response_format`` and the ``assembly_salt``. The key leaves out the model, so each
model gets its own subdirectory. Failed calls are not cached; malformed answers are
(a rerun replays them, and the re-ask that followed, exactly).

Two costs of it grow with the number of members, and both are cut here without
changing what is stored or under which key (caches written before still replay):
* the key serializes the whole JSON schema, sorted, on every call; the format's
  sorted text is built once per output type (`WireFormat.sorted_encoded`) and
  spliced into the same text;
* diskcache commits one SQLite transaction per answer (~0.15 ms of CPU); answers
  are committed together, `COMMIT_DELAY_S` after the first of them (or at once
  when `COMMIT_BATCH` wait), and whatever waits when the client closes. Until then
  a client of the same directory finds them waiting. A crash can lose the last
  `COMMIT_DELAY_S` of answers, which a resume asks for again: the transcript
  itself only keeps a phase's turns once the phase is over.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from autogen_core import CacheStore
from autogen_core.models import ChatCompletionClient, CreateResult, LLMMessage
from autogen_core.tools import Tool, ToolSchema
from autogen_ext.models.cache import CHAT_CACHE_VALUE_TYPE, ChatCompletionCache
from pydantic import BaseModel

from assembly.llm.json_text import Literals, splice, take_texts
from assembly.llm.response_format import WireFormat

# One store (one diskcache.Cache, one SQLite connection pool, one set of answers
# waiting to be committed) per directory per process, however many clients a sweep
# creates: a client must find what another one just wrote.
_DISK_CACHES: dict[str, GroupCommitStore] = {}
_DISK_CACHES_LOCK = threading.Lock()

# Stands in for the response format while the rest of the key is serialized. Sorted
# keys put ``extra_create_args`` before ``messages``, so its first occurrence is ours.
_FORMAT_SLOT = "\x00assembly-response-format\x00"
COMMIT_DELAY_S = 0.1
COMMIT_BATCH = 1024
_FORMAT_SLOT_JSON = json.dumps(_FORMAT_SLOT)


def cached(
    client: ChatCompletionClient, cache_dir: Path, model: str, literals: Literals | None = None
) -> ChatCompletionClient:
    """`client` behind the response cache of `model` in `cache_dir`; `literals`, when
    the client below shares them, escape each message text once for both."""
    return ResponseCache(client, _store(Path(cache_dir) / _namespace(model)), literals)


class GroupCommitStore(CacheStore[CHAT_CACHE_VALUE_TYPE]):
    """A diskcache store whose writes are committed together, in batches."""

    def __init__(self, cache: Any) -> None:
        self.cache = cache
        self.pending: dict[str, CHAT_CACHE_VALUE_TYPE] = {}
        self.lock = threading.Lock()  # runs on several threads' loops may share a directory

    def get(self, key: str, default: CHAT_CACHE_VALUE_TYPE | None = None) -> CHAT_CACHE_VALUE_TYPE | None:
        with self.lock:
            value = self.pending.get(key)
        if value is not None:
            # A copy, as a read from disk would be: the cache marks what it hands out as cached.
            return value.model_copy() if isinstance(value, CreateResult) else list(value)
        return self.cache.get(key, default)  # type: ignore[no-any-return]

    def set(self, key: str, value: CHAT_CACHE_VALUE_TYPE) -> None:
        with self.lock:
            first = not self.pending
            self.pending[key] = value
            full = len(self.pending) >= COMMIT_BATCH
        if full:
            self.flush()
        elif first:
            try:
                asyncio.get_running_loop().call_later(COMMIT_DELAY_S, self.flush)
            except RuntimeError:  # no event loop: nothing to wait for
                self.flush()

    def flush(self) -> None:
        with self.lock:
            pending, self.pending = self.pending, {}
        if pending:
            with self.cache.transact():
                for key, value in pending.items():
                    self.cache.set(key, value)


class ResponseCache(ChatCompletionCache):
    """autogen's `ChatCompletionCache` with the same keys, computed without re-serializing the schema."""

    def __init__(self, client: ChatCompletionClient, store: GroupCommitStore, literals: Literals | None = None) -> None:
        super().__init__(client, store)
        self.group_store = store
        self.literals = literals if literals is not None else Literals()

    def _check_cache(
        self,
        messages: Sequence[LLMMessage],
        tools: Sequence[Tool | ToolSchema],
        json_output: bool | type[BaseModel] | None,
        extra_create_args: Mapping[str, Any],
    ) -> tuple[CHAT_CACHE_VALUE_TYPE | None, str]:
        fmt = extra_create_args.get("response_format")
        if not isinstance(fmt, WireFormat) or (isinstance(json_output, type) and issubclass(json_output, BaseModel)):
            return super()._check_cache(messages, tools, json_output, extra_create_args)
        dumped = [message.model_dump() for message in messages]
        texts = take_texts(dumped)  # each escaped once (`json_text`), the rest dumped around them
        data = {
            "messages": dumped,
            "tools": [(tool.schema if isinstance(tool, Tool) else tool) for tool in tools],
            "json_output": json_output if isinstance(json_output, bool) else None,
            "extra_create_args": {**extra_create_args, "response_format": _FORMAT_SLOT},
        }
        # The format's slot comes first (``extra_create_args`` sorts before ``messages``)
        # and is filled before the texts are spliced in, so no text can be taken for it.
        skeleton = json.dumps(data, sort_keys=True).replace(_FORMAT_SLOT_JSON, fmt.sorted_encoded, 1)
        text = splice(skeleton, texts, self.literals)
        key = hashlib.sha256(text.encode()).hexdigest()
        return self.store.get(key), key  # diskcache hands back the objects it was given

    async def close(self) -> None:
        self.group_store.flush()
        await super().close()


def _store(directory: Path) -> GroupCommitStore:
    import diskcache

    key = str(directory.resolve())
    with _DISK_CACHES_LOCK:
        store = _DISK_CACHES.get(key)
        if store is None:
            directory.mkdir(parents=True, exist_ok=True)
            # No eviction: an answer dropped to keep the cache under diskcache's default
            # 1 GiB would turn a rerun's replay into a live call, silently; and without
            # it, storing an answer takes half the SQLite statements.
            store = _DISK_CACHES[key] = GroupCommitStore(diskcache.Cache(key, eviction_policy="none"))
        return store


def _namespace(model: str) -> str:
    # A readable prefix plus a hash keeps odd characters out of paths.
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", model)[:60]
    return f"{readable}-{hashlib.sha256(model.encode()).hexdigest()[:10]}"
