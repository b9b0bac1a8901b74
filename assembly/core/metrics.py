"""Every reported figure, as a pure function of the transcript.

The live run and `assembly replay --check` call the same `summarize` on the same
events, so what a run reported and what its transcript supports cannot disagree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from assembly.core.actions import Action, by_kind
from assembly.core.events import AnyEvent, Turn, TurnStatus
from assembly.core.protocol import Protocol
from assembly.core.run_welfare import run_welfare
from assembly.core.transcript import Transcript

FAILED: tuple[TurnStatus, ...] = ("timeout", "malformed", "provider_error", "skipped")


def liveness(turns: list[Turn], actions: Mapping[str, type[Action]]) -> dict[str, int]:
    """Liveness events of some turns. Every failed turn counts as an abstention, as
    does an explicit one: an action its class (`actions`, by kind) says abstains.

    `throttled` turns (the round's time ran out while the member waited for the
    tool's capacity) are counted apart and are neither a timeout nor an abstention:
    they measure the tool, not the members, and counting them as abstentions would
    make abstention rates grow with group size for the tool's sake. The protocols
    still see no action from a throttled member (its ballot is not counted)."""
    status = Counter(t.status for t in turns)
    failed = sum(status[s] for s in FAILED)
    said = sum(1 for t in turns if t.action and t.status not in FAILED and _abstains(t.action, actions))
    return {
        "turn_timeouts": status["timeout"],
        "throttled": status["throttled"],
        "malformed": status["malformed"],
        "provider_errors": status["provider_error"],
        "abstentions": failed + said,
        "retries": sum(len(t.attempts) - 1 for t in turns if len(t.attempts) > 1),
    }


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


def summarize(events: Sequence[AnyEvent] | Transcript, protocol: type[Protocol]) -> dict[str, Any]:
    """Every figure of a run, from its transcript (or the events a live run wrote)."""
    run = events if isinstance(events, Transcript) else Transcript.of(events)
    started, seated = run.started, run.seated
    actions = by_kind(protocol.actions)
    # Every turn belongs to its round, so the run's liveness totals are the sums of
    # every round's, complete or not: each turn is classified once.
    turns_of = {r: rnd.turns for r, rnd in run.rounds.items()}
    live = {r: liveness(turns, actions) for r, turns in turns_of.items()}
    per_round = []
    for r in run.complete_rounds:
        rnd, turns = run.rounds[r], turns_of[r]
        row: dict[str, Any] = {"round": r, **live[r]}
        row.update(protocol.round_figures(rnd.events, started, seated, run.events[: rnd.started_at or 0]))
        row.update({k: v for k, v in usage(turns).items() if k in ("prompt_tokens", "completion_tokens", "cost_usd")})
        per_round.append(row)
    stated = protocol.stated_preferences(run.events)
    plural = run_welfare(run.events, stated) if stated is not None else None
    if plural is not None:  # how faithfully stated support follows assigned utilities
        for row in per_round:
            row["fidelity"] = plural.fidelity_by_round.get(row["round"])
    end, interrupted = run.end, run.interrupted
    all_turns = [e for e in run.events if isinstance(e, Turn)]
    totals: dict[str, Any] = {**liveness([], actions), **usage(all_turns)}
    for counts in live.values():
        for k, n in counts.items():
            totals[k] += n
    ended = [e for e in (run.rounds[r].ended for r in run.complete_rounds) if e is not None]
    wall = sum(float((e.timing or {}).get("wall_s", 0.0)) for e in ended)
    clock = sum(float((e.timing or {}).get("clock_s", 0.0)) for e in ended)
    summary: dict[str, Any] = {
        # The schema of the transcript summarized (a summary's own keys have not
        # changed), so that checking a run written by an older version compares alike.
        "schema_version": started.schema_version,
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
        "figures": protocol.run_figures(run.events),
        "timing": {"wall_s": round(wall, 6), "clock_s": round(clock, 6)},
    }
    if plural is not None:
        summary["welfare"] = plural.section
    return summary
