"""Every reported figure, as a pure function of the transcript.

The live run and `assembly replay --check` call the same `summarize` on the same
events, so what a run reported and what its transcript supports cannot disagree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from assembly.core.actions import Action, by_kind
from assembly.core.events import (
    SCHEMA_VERSION,
    RoundEnded,
    RoundStarted,
    RunEnded,
    RunInterrupted,
    RunStarted,
    Seated,
    Turn,
)
from assembly.core.protocol import Protocol
from assembly.core.run_welfare import run_welfare

FAILED = ("timeout", "malformed", "provider_error", "skipped")


def liveness(turns: list[Turn], actions: Mapping[str, type[Action]]) -> dict[str, int]:
    """Liveness events of some turns. Every failed turn counts as an abstention, as
    does an explicit one: an action its class (`actions`, by kind) says abstains."""
    counts = {"turn_timeouts": 0, "malformed": 0, "provider_errors": 0, "abstentions": 0, "retries": 0}
    for t in turns:
        if t.status == "timeout":
            counts["turn_timeouts"] += 1
        elif t.status == "malformed":
            counts["malformed"] += 1
        elif t.status == "provider_error":
            counts["provider_errors"] += 1
        if t.status in FAILED or (t.action and _abstains(t.action, actions)):
            counts["abstentions"] += 1
        counts["retries"] += max(0, len(t.attempts) - 1)
    return counts


def _abstains(action: dict[str, Any], actions: Mapping[str, type[Action]]) -> bool:
    cls = actions.get(action.get("kind", ""))
    return cls is not None and cls.is_abstention(action)


def usage(turns: list[Turn]) -> dict[str, float]:
    out = {"calls": 0, "cache_hits": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
    for t in turns:
        for a in t.attempts:
            if a.model == "sim":
                continue
            out["calls"] += 1
            out["cache_hits"] += int(a.cache_hit)
            out["prompt_tokens"] += a.prompt_tokens
            out["completion_tokens"] += a.completion_tokens
            out["cost_usd"] += a.cost_usd
    out["cost_usd"] = round(out["cost_usd"], 8)
    return out


def events_by_round(events: Iterable[Any]) -> dict[int, list[Any]]:
    """Each round's events (those carrying a `round`), in transcript order.

    A `run_interrupted` event names the round it cut, but belongs to no round."""
    out: dict[int, list[Any]] = defaultdict(list)
    for e in events:
        r = getattr(e, "round", None)
        if r is not None and not isinstance(e, RunInterrupted):
            out[r].append(e)
    return dict(out)


def summarize(events: list[Any], protocol: type[Protocol]) -> dict[str, Any]:
    started = next(e for e in events if isinstance(e, RunStarted))
    seated = next(e for e in events if isinstance(e, Seated))
    proto = protocol
    actions = by_kind(proto.actions)
    by_round = events_by_round(events)
    ended_rounds: dict[int, RoundEnded] = {}
    starts: dict[int, int] = {}  # round -> index of its round_started event
    for i, e in enumerate(events):
        if isinstance(e, RoundStarted):
            starts.setdefault(e.round, i)
        if isinstance(e, RoundEnded):
            ended_rounds[e.round] = e
    per_round = []
    for r in sorted(ended_rounds):
        evs = by_round[r]
        turns = [e for e in evs if isinstance(e, Turn)]
        row: dict[str, Any] = {"round": r, **liveness(turns, actions)}
        row.update(proto.round_figures(evs, started, seated, events[: starts.get(r, 0)]))
        row.update({k: v for k, v in usage(turns).items() if k in ("prompt_tokens", "completion_tokens", "cost_usd")})
        per_round.append(row)
    stated = proto.stated_preferences(events)
    plural = run_welfare(events, stated) if stated is not None else None
    if plural is not None:  # how faithfully stated support follows assigned utilities
        for row in per_round:
            row["fidelity"] = plural.fidelity_by_round.get(row["round"])
    end = next((e for e in events if isinstance(e, RunEnded)), None)
    interrupted = next((e for e in events if isinstance(e, RunInterrupted)), None)
    all_turns = [e for e in events if isinstance(e, Turn)]
    totals: dict[str, Any] = {**liveness(all_turns, actions), **usage(all_turns)}
    wall = sum(float((e.timing or {}).get("wall_s", 0.0)) for e in ended_rounds.values())
    clock = sum(float((e.timing or {}).get("clock_s", 0.0)) for e in ended_rounds.values())
    summary: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": started.run_id,
        "run_key": started.run_key,
        "scenario": started.scenario.get("name"),
        "protocol": started.protocol,
        "status": "complete" if end else ("interrupted" if interrupted else "incomplete"),
        "outcome": end.outcome if end else None,
        "cause": end.cause if end else None,
        "decision": end.decision if end else None,
        "reason": end.reason if end else None,
        "rounds": len(per_round),
        "members": len(seated.members),
        "seed": started.seed,
        "per_round": per_round,
        "totals": totals,
        "figures": proto.run_figures(events),
        "timing": {"wall_s": round(wall, 6), "clock_s": round(clock, 6)},
    }
    if plural is not None:
        summary["welfare"] = plural.section
    return summary
