"""Launch one run: the composition root between a scenario and the core engine.

It resolves the scenario's protocol from the registry, seats the assembly, builds
each seat's member (the protocol's sim policy, or an LLM member from the run's
model setup, passed in explicitly), and hands them to `core.run.execute`. The CLI,
the Python API, sweeps and rerun all start runs through here, so there is one way
to build a run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from assembly.core import metrics
from assembly.core import run as core_run
from assembly.core.engine import Listener
from assembly.core.events import RunStarted, Seated, SeatedMember
from assembly.core.member import Member
from assembly.core.protocol import MemberFactory, Protocol
from assembly.core.transcript import TRANSCRIPT, read_transcript
from assembly.protocols import protocol_class
from assembly.scenario.model import Scenario

__all__ = ["build_members", "execute", "summarize", "write_summary"]


def build_members(
    seated: Seated, protocol: Protocol, scenario: Scenario, run_dir: Path, factory: MemberFactory | None = None
) -> dict[str, Member]:
    """A member for every seat: the protocol's sim policy, or `factory`'s (LLM) member.

    The factory carries the run's model setup (`assembly.llm.member.factory_for(setup)`);
    nothing here picks one, so a run's models are always the ones its caller chose."""
    seats = list(seated.members) + ([seated.facilitator] if seated.facilitator else [])
    members: dict[str, Member] = {}
    for seat in seats:
        if seat.policy == "sim":
            members[seat.id] = protocol.sim_member(seat)
        elif factory is None:
            raise ValueError(f"seat {seat.id} is an {seat.policy} member: pass the run's member factory (factory=)")
        else:
            members[seat.id] = factory(seat, protocol, scenario, run_dir)
    return members


async def execute(
    scenario: Scenario,
    run_dir: Path,
    *,
    listeners: Sequence[Listener] = (),
    factory: MemberFactory | None = None,
    overrides: dict[str, Callable[[SeatedMember], Member]] | None = None,
    durable: bool = True,
) -> dict[str, Any]:
    """Run a scenario into `run_dir` and return its summary.

    `overrides` replaces the member at given seat ids (tests use it to seat scripted
    members); everything else is built from the scenario.
    """
    protocol = protocol_class(scenario.protocol.kind)(scenario)
    seated = protocol.seat()
    members = build_members(seated, protocol, scenario, run_dir, factory)
    for seat_id, make in (overrides or {}).items():
        seat = next(s for s in [*seated.members, seated.facilitator] if s is not None and s.id == seat_id)
        members[seat_id] = make(seat)
    return await core_run.execute(scenario, run_dir, protocol, seated, members, listeners=listeners, durable=durable)


def summarize(events: Sequence[Any]) -> dict[str, Any]:
    """Every figure of a run, from its events (the protocol named in `run_started`)."""
    started = next(e for e in events if isinstance(e, RunStarted))
    return metrics.summarize(list(events), protocol_class(started.protocol))


def write_summary(run_dir: Path, events: Sequence[Any] | None = None) -> dict[str, Any]:
    """Write summary.json for a run folder from its transcript (or the events given)."""
    if events is None:
        events = read_transcript(run_dir / TRANSCRIPT).events
    started = next(e for e in events if isinstance(e, RunStarted))
    return core_run.write_summary(run_dir, protocol_class(started.protocol), events)
