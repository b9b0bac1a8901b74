"""Seeded latency and faults for offline members, so liveness loss can be studied without a model.

Every sim policy wraps its computed action in this model: per attempt, a lognormal
latency and a chance of a provider error or malformed output, with retries; and per
turn, a chance to hang past any deadline. Draws come from (seed, member, round,
phase), so a run is reproducible whatever order turns finish in.
"""

from __future__ import annotations

import asyncio
import math
import random
from abc import ABC, abstractmethod
from typing import Literal

from assembly.core.actions import Action
from assembly.core.events import Attempt
from assembly.core.member import Request, TurnResult
from assembly.core.seeding import stream
from assembly.core.spec import SimBase
from assembly.core.view import View

_OK = Attempt(attempt=1, outcome="ok")


class SeededFaults:
    """Seeded latency and faults shared by every sim policy."""

    def __init__(self, params: SimBase, seed: int) -> None:
        self.params = params
        self.seed = seed

    @property
    def instant(self) -> bool:
        """Whether every turn's outcome is known at once: in virtual time, or with
        neither latency nor faults to wait for (`now` then never returns None)."""
        p = self.params
        return p.latency.mode != "real" or self._fault_free

    @property
    def _fault_free(self) -> bool:
        p = self.params
        return p.latency.median_s == 0 and not (
            p.faults.timeout_rate or p.faults.malformed_rate or p.faults.provider_error_rate
        )

    def now(self, member_id: str, request: Request, make: Action | None) -> TurnResult | None:
        """The turn's outcome at once (virtual time, or nothing to wait for); None in
        real time, where `run` waits the drawn latency out."""
        if self._fault_free:
            # Nothing to draw: skip seeding a stream (a third of a fault-free turn).
            return TurnResult(action=make, attempts=[_OK], sim_latency_s=0.0)
        if self.params.latency.mode == "real":
            return None
        result, latency, hang = self._draw(member_id, request, make)
        result.sim_latency_s = math.inf if hang else latency
        return result

    async def run(self, member_id: str, request: Request, make: Action | None) -> TurnResult:
        """Wrap a computed action in the seeded fault model, sleeping in real mode."""
        found = self.now(member_id, request, make)
        if found is not None:
            return found
        result, latency, hang = self._draw(member_id, request, make)
        if hang or latency >= request.deadline_s:
            await asyncio.sleep(max(request.deadline_s * 10, 3600.0))  # cut off by the engine
        await asyncio.sleep(latency)
        return result

    def _draw(self, member_id: str, request: Request, make: Action | None) -> tuple[TurnResult, float, bool]:
        """The seeded outcome (without its latency), the latency and whether it hangs."""
        p = self.params
        r = stream(self.seed, "fault", member_id, request.round, request.phase)
        hang = bool(r.random() < p.faults.timeout_rate)
        attempts: list[Attempt] = []
        latency = 0.0
        status: Literal["ok", "malformed", "provider_error"] = "ok"
        for n in range(1, p.max_retries + 2):
            latency += _lognormal(r, p.latency.median_s, p.latency.sigma)
            u = r.random()
            if u < p.faults.provider_error_rate:
                attempts.append(
                    Attempt(
                        attempt=n,
                        outcome="provider_error",
                        error_kind="server_error",
                        detail="simulated provider error",
                    )
                )
                status = "provider_error"
            elif u < p.faults.provider_error_rate + p.faults.malformed_rate:
                attempts.append(Attempt(attempt=n, outcome="malformed", detail="simulated malformed output"))
                status = "malformed"
            else:
                attempts.append(Attempt(attempt=n, outcome="ok"))
                status = "ok"
                break
        action = make if status == "ok" else None
        return TurnResult(action=action, status=status, attempts=attempts), latency, hang


def _lognormal(r: random.Random, median: float, sigma: float) -> float:
    if median <= 0:
        return 0.0
    return median * math.exp(sigma * r.gauss(0.0, 1.0))


class SeededSimMember(ABC):
    """The member side every sim policy shares: an action computed from the view
    (`action`), wrapped in the seeded fault model. It answers at once where nothing
    needs waiting for (`act_now`, see `core.member.InstantMember`), and through `act`,
    sleeping, in real time."""

    id: str
    faults: SeededFaults

    @abstractmethod
    def action(self, view: View, request: Request) -> Action:
        """What the policy does this turn, before faults."""

    async def act(self, view: View, request: Request) -> TurnResult:
        return await self.faults.run(self.id, request, self.action(view, request))

    def act_now(self, view: View, request: Request) -> TurnResult | None:
        if not self.faults.instant:
            return None
        return self.faults.now(self.id, request, self.action(view, request))
