"""Model clients shared by the members of one run: one set of connections per profile, closed with the last member.

A member per seat must not mean a connection pool per seat: hundreds of members of
one run share their profile's clients (sharded as the transport asks), which are
built before the run starts, so the seconds their first use costs are never spent
inside a timed turn, and closed when the last member using them closes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from autogen_core.models import ChatCompletionClient

from assembly.llm.clients import make_client, prepare
from assembly.llm.profiles import ModelProfile
from assembly.llm.setup import ModelSetupError
from assembly.llm.transport import shards


class RunClients:
    """Model clients per profile for the members of one run (on one event loop, since
    HTTP clients are bound to the loop that uses them)."""

    def __init__(self, cache_dir: Path, on_closed: Callable[[], None]) -> None:
        self.cache_dir = cache_dir
        self.on_closed = on_closed
        self.clients: dict[str, list[ChatCompletionClient]] = {}
        self.handed_out: dict[str, int] = {}
        self.users = 0

    def client(self, profile: ModelProfile) -> ChatCompletionClient:
        """A client for a new member on `profile` (shards are dealt round robin); the
        member must call `release` when it closes."""
        built = self.clients.get(profile.name)
        if built is None:
            count, pool_size = shards(profile)
            try:
                built = [make_client(profile, self.cache_dir, pool_size=pool_size) for _ in range(count)]
            except KeyError as exc:  # the profile's key variable is not set
                raise ModelSetupError(str(exc.args[0]) if exc.args else str(exc)) from None
            prepare(profile)
            self.clients[profile.name] = built
        n = self.handed_out.get(profile.name, 0)
        self.handed_out[profile.name] = n + 1
        self.users += 1
        return built[n % len(built)]

    async def release(self) -> None:
        self.users -= 1
        if self.users > 0:
            return
        self.on_closed()
        clients = [c for built in self.clients.values() for c in built]
        self.clients = {}
        for client in clients:
            # Best effort: the run's results are already written.
            with contextlib.suppress(Exception):
                await client.close()
