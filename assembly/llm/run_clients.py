"""Model clients shared by the members of one run: one client per profile, closed with the last member.

A member per seat must not mean a connection pool per seat: hundreds of members of
one run share their profile's client, which is built before the run starts, so the
time its first use costs is never spent inside a timed turn, and closed when the
last member using it closes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from autogen_core.models import ChatCompletionClient

from assembly.llm.clients import make_client, prepare
from assembly.llm.profiles import ModelProfile
from assembly.llm.setup import ModelSetupError


class RunClients:
    """Model clients per profile for the members of one run (on one event loop, since
    HTTP clients are bound to the loop that uses them)."""

    def __init__(self, cache_dir: Path, on_closed: Callable[[], None]) -> None:
        self.cache_dir = cache_dir
        self.on_closed = on_closed
        self.clients: dict[str, ChatCompletionClient] = {}
        self.users = 0

    def client(self, profile: ModelProfile) -> ChatCompletionClient:
        """The client for a new member on `profile`; the member must call `release` when it closes."""
        built = self.clients.get(profile.name)
        if built is None:
            try:
                built = make_client(profile, self.cache_dir)
            except KeyError as exc:  # the profile's key variable is not set
                raise ModelSetupError(str(exc.args[0]) if exc.args else str(exc)) from None
            prepare(profile)
            self.clients[profile.name] = built
        self.users += 1
        return built

    async def release(self) -> None:
        self.users -= 1
        if self.users > 0:
            return
        self.on_closed()
        clients = list(self.clients.values())
        self.clients = {}
        for client in clients:
            # Best effort: the run's results are already written.
            with contextlib.suppress(Exception):
                await client.close()
