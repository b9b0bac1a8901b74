"""Tidy tables from run transcripts: one row per turn, per vote, per seated member.

`tables.load_runs` and `load_rounds` read each run's summary; these go one level
down, to the events, for analyses the summaries do not anticipate (latency by
role, who voted how, whether members holding a fact disclosed it). Each is a long
("tidy") table for pandas and seaborn: one observation per row, one variable per
column, and the run's grid cell, `run`, `path` and `sweep` on every row, so a
sweep's rows group by its grid factors directly.

The tables know no protocol. An action's fields become `action_<field>` columns
(lists and mappings as compact JSON), so the assembly's `action_position` and the
consensus game's `action_value` sit side by side; a vote is a turn of the phase
whose answers the round's tally counted (the last phase before the `tally` event).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from assembly.core.events import Disclosure, RunEnded, Seated, SeatedMember, Tally, Turn
from assembly.core.transcript import TranscriptError, read_transcript
from assembly.sweeps.tables import RunRef, find_runs, with_run_columns

TURN_COLUMNS = (
    "run",
    "path",
    "sweep",
    "round",
    "phase",
    "member",
    "role",
    "policy",
    "profile",
    "status",
    "attempts",
    "retries",
    "calls",
    "cache_hits",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_s",
    "wall_s",
    "detail",
)
VOTE_COLUMNS = ("run", "path", "sweep", "round", "phase", "member", "role", "status", "vote", "abstained")
MEMBER_COLUMNS = ("run", "path", "sweep", "member", "role", "policy", "profile", "facilitator", "facts")


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return value


def _transcripts(path: str | Path, all: bool) -> Iterator[tuple[RunRef, list[Any]]]:
    for ref in find_runs(path, all=all):
        try:
            events = read_transcript(ref.dir).events
        except TranscriptError:
            continue  # damaged or unreadable: load_runs reports such runs by their summary
        if any(isinstance(e, Seated) for e in events):
            yield ref, events


def _seats(events: list[Any]) -> dict[str, SeatedMember]:
    seated = next(e for e in events if isinstance(e, Seated))
    seats = list(seated.members) + ([seated.facilitator] if seated.facilitator else [])
    return {s.id: s for s in seats}


def turn_row(turn: Turn, seat: SeatedMember | None) -> dict[str, Any]:
    calls = [a for a in turn.attempts if a.model != "sim"]
    row: dict[str, Any] = {
        "round": turn.round,
        "phase": turn.phase,
        "member": turn.member,
        "role": seat.role if seat else None,
        "policy": seat.policy if seat else None,
        "profile": seat.profile if seat else None,
        "status": turn.status,
        "attempts": len(turn.attempts),
        "retries": max(0, len(turn.attempts) - 1),
        "calls": len(calls),
        "cache_hits": sum(a.cache_hit for a in calls),
        "prompt_tokens": sum(a.prompt_tokens for a in calls),
        "completion_tokens": sum(a.completion_tokens for a in calls),
        "cost_usd": round(sum(a.cost_usd for a in calls), 8),
        "latency_s": turn.latency_s,
        "wall_s": (turn.timing or {}).get("wall_s"),
        "detail": turn.detail,
    }
    for key, value in (turn.action or {}).items():
        row[f"action_{key}"] = _cell(value)
    return row


def load_turns(path: str | Path, *, all: bool = False) -> pd.DataFrame:
    """One row per member-turn: who was asked what in which round, the status, attempts,
    model usage and timing, and the action's fields as `action_<field>` columns."""
    rows: list[dict[str, Any]] = []
    for ref, events in _transcripts(path, all):
        seats = _seats(events)
        rows.extend(with_run_columns(turn_row(e, seats.get(e.member)), ref) for e in events if isinstance(e, Turn))
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(TURN_COLUMNS))


def _vote_of(turn: Turn) -> tuple[Any, bool]:
    """(what the member voted for, whether it abstained). A failed turn abstains; a
    ballot that names nothing valid was still cast (it backs nobody), as the rules count it."""
    action = turn.action or {}
    if turn.status != "ok":
        return None, True
    ranking = action.get("ranking") or []
    vote = action.get("choice") or action.get("vote") or (ranking[0] if ranking else None)
    if vote is None and action.get("approve"):
        vote = _cell(action["approve"])
    abstained = action.get("abstain") is True or vote == "abstain"
    return (None if abstained else vote), abstained


def vote_rows(events: list[Any]) -> Iterator[dict[str, Any]]:
    """The votes of every tallied round: the turns of the phase just before each tally."""
    seats = _seats(events)
    phase_turns: list[Turn] = []
    for e in events:
        if isinstance(e, Turn):
            if phase_turns and (phase_turns[-1].phase != e.phase or phase_turns[-1].round != e.round):
                phase_turns = []
            phase_turns.append(e)
        elif isinstance(e, Tally):
            for t in phase_turns:
                vote, abstained = _vote_of(t)
                seat = seats.get(t.member)
                row = {
                    "round": t.round,
                    "phase": t.phase,
                    "member": t.member,
                    "role": seat.role if seat else None,
                    "status": t.status,
                    "vote": vote,
                    "abstained": abstained,
                    "tally_rule": e.rule,
                    "tally_decided": e.decided,
                    "tally_winner": e.winner,
                    "tally_leading": e.leading,
                    "tally_leading_support": e.leading_support,
                    "tally_quorum_met": e.quorum_met,
                }
                for key, value in (t.action or {}).items():
                    row[f"action_{key}"] = _cell(value)
                yield row
            phase_turns = []


def load_votes(path: str | Path, *, all: bool = False) -> pd.DataFrame:
    """One row per vote cast (or failed) in a tallied round, with the round's tally:
    `vote` is the option (assembly) or stop/continue (consensus game)."""
    rows: list[dict[str, Any]] = []
    for ref, events in _transcripts(path, all):
        rows.extend(with_run_columns(row, ref) for row in vote_rows(events))
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(VOTE_COLUMNS))


def member_rows(events: list[Any]) -> Iterator[dict[str, Any]]:
    seated = next(e for e in events if isinstance(e, Seated))
    end = next((e for e in events if isinstance(e, RunEnded)), None)
    turns = [e for e in events if isinstance(e, Turn)]
    disclosed: dict[str, set[str]] = {}
    for e in events:
        if isinstance(e, Disclosure):
            disclosed.setdefault(e.member, set()).add(e.fact)
    facilitator = [seated.facilitator] if seated.facilitator else []
    for seat in [*seated.members, *facilitator]:
        mine = [t for t in turns if t.member == seat.id]
        stated = [
            t.action for t in mine if t.status == "ok" and t.action and ("position" in t.action or "value" in t.action)
        ]
        last = stated[-1] if stated else {}
        row: dict[str, Any] = {
            "member": seat.id,
            "role": seat.role,
            "policy": seat.policy,
            "profile": seat.profile,
            "facilitator": seat in facilitator,
            "facts": len(seat.facts),
            "facts_held": _cell(seat.facts),
            "facts_disclosed": len(disclosed.get(seat.id, ())),
            "turns": len(mine),
            "failed_turns": sum(t.status != "ok" for t in mine),
            "final_position": last.get("position", last.get("value")),
            "outcome": end.outcome if end else None,
            "decision": _cell(end.decision) if end else None,
        }
        row.update({f"value_{k}": v for k, v in seat.values.items()})
        row.update({f"private_{k}": _cell(v) for k, v in seat.private.items()})
        yield row


def load_members(path: str | Path, *, all: bool = False) -> pd.DataFrame:
    """One row per seated member (and the facilitator): role, policy and model, value
    weights (`value_<dimension>`), facts held and disclosed, protocol-private state
    (`private_<field>`, e.g. the consensus game's `private_byzantine`), turns taken
    and failed, final position, and the run's outcome."""
    rows: list[dict[str, Any]] = []
    for ref, events in _transcripts(path, all):
        rows.extend(with_run_columns(row, ref) for row in member_rows(events))
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(MEMBER_COLUMNS))


__all__ = ["load_members", "load_turns", "load_votes", "member_rows", "turn_row", "vote_rows"]
