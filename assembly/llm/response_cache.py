"""The response cache: answers kept on disk so that a rerun replays a run without calling a model.

It is autogen-ext's `ChatCompletionCache` over a `diskcache` directory, whose key is
a SHA-256 over the messages (with each message's ``source``), tools, the
``json_output`` schema and all create args, which carry temperature, max_tokens,
``response_format`` and the ``assembly_salt``. The key leaves out the model, so each
model gets its own subdirectory. Failed calls are not cached; malformed answers are
(a rerun replays them, and the re-ask that followed, exactly).
"""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path
from typing import Any

from autogen_core.models import ChatCompletionClient

# One diskcache.Cache (one SQLite connection pool) per directory per process,
# however many clients a sweep creates.
_DISK_CACHES: dict[str, Any] = {}
_DISK_CACHES_LOCK = threading.Lock()


def cached(client: ChatCompletionClient, cache_dir: Path, model: str) -> ChatCompletionClient:
    """`client` behind the response cache of `model` in `cache_dir`."""
    from autogen_ext.cache_store.diskcache import DiskCacheStore
    from autogen_ext.models.cache import CHAT_CACHE_VALUE_TYPE, ChatCompletionCache

    store = DiskCacheStore[CHAT_CACHE_VALUE_TYPE](_disk_cache(Path(cache_dir) / _namespace(model)))
    return ChatCompletionCache(client, store)


def _disk_cache(directory: Path) -> Any:
    import diskcache

    key = str(directory.resolve())
    with _DISK_CACHES_LOCK:
        cache = _DISK_CACHES.get(key)
        if cache is None:
            directory.mkdir(parents=True, exist_ok=True)
            cache = _DISK_CACHES[key] = diskcache.Cache(key)
        return cache


def _namespace(model: str) -> str:
    # A readable prefix plus a hash keeps odd characters out of paths.
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", model)[:60]
    return f"{readable}-{hashlib.sha256(model.encode()).hexdigest()[:10]}"
