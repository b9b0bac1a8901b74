"""What a rerun takes from the source transcript rather than from its members: the
world's side of each turn that no response cache can hold (a call cancelled at the
deadline, a provider error), so that a rerun reproduces it without calling a model.
Used by `reexecute.rerun`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from assembly.core.engine import Engine, Seat
from assembly.core.events import (
    AnyEvent,
    Attempt,
    Turn,
)
from assembly.core.member import Member, Request, TurnResult
from assembly.core.view import View


class _RecordedTimeout(TurnResult):
    """Marks a turn that the engine cut in the source run (see `RerunEngine`): its
    recorded event (a `timeout`, or `throttled`) is written again as it was."""

    __slots__ = ("event",)

    def __init__(self, event: Turn) -> None:
        super().__init__(action=None)
        self.event = event


TurnKey = tuple[int, str]  # (round, phase)


@dataclass
class Recorded:
    """What a source run's members met that no cache can replay, by turn.

    A response cache holds what a model answered; it cannot hold a call the engine
    cancelled at the deadline, or a provider error (a 429, a 5xx, a dropped
    connection), because neither produced an answer. Those are facts about the
    world during the source run, so a rerun takes them from the transcript:

    - `timed_out`: the engine cancelled the turn (a `timeout`, or `throttled` while
      queued for the tool's capacity); it ends the same way again at once, without
      calling anyone (sim members in virtual time reproduce their own timeouts and
      are not listed);
    - `failed`: an LLM turn that ended in a provider error; its recorded outcome is
      replayed as it was;
    - `errors`: an LLM turn that succeeded after provider errors; the answers come
      from the cache as usual, and the recorded failed attempts are put back where
      they happened in its attempt list.
    """

    timed_out: dict[TurnKey, Turn] = field(default_factory=dict)
    failed: dict[TurnKey, Turn] = field(default_factory=dict)
    errors: dict[TurnKey, list[Attempt]] = field(default_factory=dict)

    @classmethod
    def of(cls, events: Sequence[AnyEvent], llm_seats: set[str]) -> dict[str, Recorded]:
        out: dict[str, Recorded] = {}
        for e in events:
            if not isinstance(e, Turn):
                continue
            key = (e.round, e.phase)
            if e.status in ("timeout", "throttled") and e.latency_s is None:
                out.setdefault(e.member, cls()).timed_out[key] = e
            elif e.member in llm_seats and e.status == "provider_error":
                out.setdefault(e.member, cls()).failed[key] = e
            elif e.member in llm_seats and any(a.outcome == "provider_error" for a in e.attempts):
                out.setdefault(e.member, cls()).errors[key] = list(e.attempts)
        return out


class ReplayWorld:
    """Wraps a member so that it meets the recorded timeouts and provider errors."""

    def __init__(self, inner: Member, recorded: Recorded) -> None:
        self.id = inner.id
        self.inner = inner
        self.recorded = recorded

    async def act(self, view: View, request: Request) -> TurnResult:
        key = (request.round, request.phase)
        cut = self.recorded.timed_out.get(key)
        if cut is not None:
            return _RecordedTimeout(cut)
        failed = self.recorded.failed.get(key)
        if failed is not None:
            return TurnResult(
                action=None, status="provider_error", attempts=list(failed.attempts), detail=failed.detail
            )
        result = await self.inner.act(view, request)
        source = self.recorded.errors.get(key)
        if source is not None:
            result.attempts = _with_recorded_errors(source, result.attempts)
        return result

    async def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            await close()


def _with_recorded_errors(source: Sequence[Attempt], rerun: Sequence[Attempt]) -> list[Attempt]:
    """The source's attempt list with each answered attempt taken from the rerun.

    If the rerun's answered attempts do not line up one for one with the source's,
    the rerun's own list is kept, so the comparison shows the difference."""
    answered = iter(rerun)
    out: list[Attempt] = []
    for a in source:
        if a.outcome == "provider_error":
            out.append(a)
            continue
        b = next(answered, None)
        if b is None:
            return list(rerun)
        out.append(b.model_copy(update={"attempt": a.attempt}))
    return out if next(answered, None) is None else list(rerun)


class RerunEngine(Engine):
    def _turn(self, phase: str, seat: Seat, deadline: float) -> Turn:
        task = seat.task
        if seat.cut is None and task.done() and not task.cancelled() and task.exception() is None:
            result = task.result()[0]
            if isinstance(result, _RecordedTimeout):
                # Exactly the event the engine wrote when it cut the member in the source run.
                source = result.event
                if source.status == "throttled":
                    return source.model_copy(update={"round": self.round, "phase": phase})
                return self.timeout_turn(phase, seat.member, deadline)
        return super()._turn(phase, seat, deadline)
