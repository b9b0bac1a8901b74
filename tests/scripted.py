"""A scripted member: predetermined answers per (round, phase), for protocol and reliability tests.

`ScriptedMember` implements the `Member` interface. Its script maps `(round, phase)`
to a `Step`; a key with round `None` applies to every round of that phase, and
`default` covers the rest. A step (or a bare `Action`, or a callable of the view and
request returning one) says what to answer and how:

- `action`: the answer (an `Action`, or `fn(view, request) -> Action` for answers that
  depend on what the member sees);
- `status`: "ok", or "malformed" / "provider_error" to return a recorded failure;
- `delay_s`: sleep this long first (real time, so the engine's deadline applies);
- `hang`: never answer (until the engine cancels the turn);
- `raise_`: raise this exception instead of answering;
- `sim_latency_s`: report this virtual latency (the engine treats it beyond the
  deadline as a timeout, without sleeping).

Every call is recorded in `calls` as (view, request), so tests can check exactly
what a member was shown, and `cancelled` counts turns the engine cut off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

from assembly.core.actions import Action
from assembly.core.member import Request, TurnResult
from assembly.core.view import View

Answer: TypeAlias = Action | Callable[[View, Request], Action]


@dataclass(frozen=True)
class Step:
    action: Answer | None = None
    status: Literal["ok", "malformed", "provider_error"] = "ok"
    delay_s: float = 0.0
    hang: bool = False
    raise_: BaseException | None = None
    sim_latency_s: float | None = None


Script: TypeAlias = Mapping[tuple[int | None, str], "Step | Answer"]


class ScriptedMember:
    def __init__(self, member_id: str, script: Script | None = None, default: Step | Answer | None = None) -> None:
        self.id = member_id
        self.script = dict(script or {})
        self.default = default
        self.calls: list[tuple[View, Request]] = []
        self.cancelled = 0

    def step_for(self, request: Request) -> Step:
        found = self.script.get((request.round, request.phase), self.script.get((None, request.phase), self.default))
        if found is None:
            raise LookupError(f"{self.id}: no scripted answer for round {request.round}, {request.phase}")
        return found if isinstance(found, Step) else Step(action=found)

    async def act(self, view: View, request: Request) -> TurnResult:
        self.calls.append((view, request))
        step = self.step_for(request)
        try:
            if step.hang:
                await asyncio.Event().wait()  # only cancellation ends this
            if step.delay_s:
                await asyncio.sleep(step.delay_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if step.raise_ is not None:
            raise step.raise_
        if step.status != "ok":
            return TurnResult(
                action=None, status=step.status, detail=f"scripted {step.status}", sim_latency_s=step.sim_latency_s
            )
        action = step.action(view, request) if callable(step.action) else step.action
        if action is None:
            raise LookupError(f"{self.id}: scripted ok step without an action")
        return TurnResult(action=action, sim_latency_s=step.sim_latency_s)

    def views(self, phase: str | None = None) -> list[View]:
        return [v for v, r in self.calls if phase is None or r.phase == phase]
