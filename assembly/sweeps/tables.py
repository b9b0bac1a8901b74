"""Finished runs as pandas tables, for notebooks and for the sweep's results.csv.

`load_runs(path)` finds the run folders under `path` (a run folder, a sweep folder,
or any folder of runs; see `find_runs`) and returns one row per run;
`load_rounds(path)` returns one row per (run, round). Rows come from each run's
`summary.json`; a run without one (killed, or still going) is summarized from its
transcript, which `metrics` turns into the same figures, so an interrupted sweep is
still analysable. Per-turn, per-vote and per-member tables read the transcripts
(`sweeps.tidy`).

Every row carries the run folder's name (`run`), its `path` and the `sweep` that
lists it, so runs of two sweeps never share a name unnoticed. When a run belongs to
a sweep, the sweep's manifest (`sweep.json`) adds the grid cell and the value of
each grid factor to its rows; only runs the manifest lists are read, unless
`all=True`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from assembly.core.transcript import SUMMARY, TRANSCRIPT, TranscriptError, read_transcript

MANIFEST = "sweep.json"

# Columns every run row has, in this order (protocol figures follow).
RUN_COLUMNS = (
    "run",
    "run_key",
    "scenario",
    "protocol",
    "seed",
    "members",
    "status",
    "outcome",
    "cause",
    "decision",
    "rounds",
    "turn_timeouts",
    "throttled",
    "malformed",
    "provider_errors",
    "abstentions",
    "retries",
    "calls",
    "cache_hits",
    "prompt_tokens",
    "completion_tokens",
    "tokens",
    "cost_usd",
    "wall_s",
    "clock_s",
)


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    """The run's summary: summary.json, else computed from the transcript, else None."""
    path = run_dir / SUMMARY
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                return data
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass  # written atomically, so this is damage; fall back to the transcript
    if not (run_dir / TRANSCRIPT).exists():
        return None
    from assembly import launch

    try:
        return launch.summarize(read_transcript(run_dir))
    except TranscriptError:  # unreadable, or no run_started/seated yet
        return None


def run_row(summary: dict[str, Any], run: str) -> dict[str, Any]:
    """Flatten a summary into one table row (per-round data is left to `rounds_rows`)."""
    totals = summary.get("totals", {})
    timing = summary.get("timing", {})
    row: dict[str, Any] = {"run": run}
    for key in RUN_COLUMNS[1 : RUN_COLUMNS.index("rounds") + 1]:  # the summary's own top-level fields
        row[key] = summary.get(key)
    for key in (
        "turn_timeouts",
        "throttled",
        "malformed",
        "provider_errors",
        "abstentions",
        "retries",
        "calls",
        "cache_hits",
        "prompt_tokens",
        "completion_tokens",
    ):
        row[key] = totals.get(key, 0)
    row["tokens"] = row["prompt_tokens"] + row["completion_tokens"]
    row["cost_usd"] = totals.get("cost_usd", 0.0)
    row["wall_s"] = timing.get("wall_s")
    row["clock_s"] = timing.get("clock_s")
    for key, value in (summary.get("figures") or {}).items():
        if key not in row:
            row[key] = _scalar(value)
    row.update(welfare_columns(summary))
    return row


def welfare_columns(summary: dict[str, Any]) -> dict[str, Any]:
    """A run's welfare section as flat columns (none for a protocol without one):
    `welfare_<outcome>_option` and `welfare_<outcome>_<figure>` for every way of
    choosing, flags as 1.0/0.0, null where the assembly decided nothing, and
    `welfare_fidelity`, the mean of the per-round representation fidelity."""
    welfare = summary.get("welfare")
    if not isinstance(welfare, dict):
        return {}
    out: dict[str, Any] = {}
    for name, scored in welfare.get("outcomes", {}).items():
        out[f"welfare_{name}_option"] = scored.get("option")
        for fig in ("utilitarian", "nash", "egalitarian", "worst_role"):
            out[f"welfare_{name}_{fig}"] = scored.get(fig)
        for flag in ("condorcet_winner", "in_veto_core"):
            value = scored.get(flag)
            out[f"welfare_{name}_{flag}"] = None if value is None else float(value)
    rounds = [r["fidelity"] for r in summary.get("per_round", ()) if r.get("fidelity") is not None]
    out["welfare_fidelity"] = round(sum(rounds) / len(rounds), 6) if rounds else None
    return out


def rounds_rows(summary: dict[str, Any], run: str) -> list[dict[str, Any]]:
    base = {
        "run": run,
        "run_key": summary.get("run_key"),
        "seed": summary.get("seed"),
        "members": summary.get("members"),
        "outcome": summary.get("outcome"),
    }
    return [{**base, **{k: _scalar(v) for k, v in r.items() if k not in base}} for r in summary.get("per_round", [])]


def _scalar(value: Any) -> Any:
    """Table cells hold scalars; structured figures are kept as compact JSON."""
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return value


def grid_value(value: Any) -> Any:
    """A grid factor's value as a table cell (dicts and lists become JSON text)."""
    return _scalar(value)


def run_dirs(path: Path) -> Iterator[Path]:
    """Run folders at or under `path`, sorted (a run folder holds a transcript)."""
    if (path / TRANSCRIPT).exists():
        yield path
        return
    for transcript in sorted(path.rglob(TRANSCRIPT)):
        yield transcript.parent


@dataclass(frozen=True)
class RunRef:
    """A run folder found under a path, with the sweep that lists it (if any)."""

    dir: Path
    sweep: str | None = None
    cells: dict[str, Any] | None = None  # {"cell": label, <grid key>: value} from the manifest

    def columns(self) -> dict[str, Any]:
        """The columns every table row of this run starts with (after its grid cells)."""
        return {"run": self.dir.name, "path": str(self.dir), "sweep": self.sweep}


@dataclass
class _Manifest:
    folder: Path  # the sweep folder, resolved
    name: str | None
    runs: dict[Path, dict[str, Any]]  # run folder (resolved) -> cells


def _manifests(path: Path) -> list[_Manifest]:
    """Sweep manifests at, under, or (for a run folder) just above `path`."""
    candidates = [path / MANIFEST, *sorted(path.rglob(MANIFEST))] if path.is_dir() else []
    if (path / TRANSCRIPT).exists():
        candidates += [p / MANIFEST for p in path.parents[:2]]
    out = []
    for manifest in dict.fromkeys(candidates):
        if not manifest.is_file():
            continue
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        runs = {}
        for run in data.get("runs", []):
            cols = {"cell": run.get("cell"), **{k: grid_value(v) for k, v in run.get("grid", {}).items()}}
            runs[(manifest.parent / run["dir"]).resolve()] = cols
        out.append(_Manifest(manifest.parent.resolve(), data.get("name"), runs))
    return out


def find_runs(path: str | Path, *, all: bool = False) -> list[RunRef]:
    """The runs at or under `path`, each with its sweep and grid cell.

    A sweep folder's manifest (`sweep.json`) says which runs belong to the sweep as
    planned now; folders left over from an earlier grid (or a copied-in run) are not
    part of it and are left out, unless `all=True`, which returns every run folder
    (runs a manifest does not list then have no cell). Run folders outside any sweep
    folder are always returned.
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder")
    manifests = _manifests(root)
    out = []
    for run_dir in run_dirs(root):
        resolved = run_dir.resolve()
        listed = next((m for m in manifests if resolved in m.runs), None)
        if listed is not None:
            out.append(RunRef(run_dir, listed.name, listed.runs[resolved]))
            continue
        owner = next((m for m in manifests if resolved.is_relative_to(m.folder)), None)
        if owner is None or all:
            out.append(RunRef(run_dir, owner.name if owner else None))
    return out


def with_run_columns(row: dict[str, Any], ref: RunRef) -> dict[str, Any]:
    # Grid factors go first and win name clashes: the user asked for that factor by
    # that name (`members` is the group size either way); then run, path and sweep.
    cells = ref.cells or {}
    lead = {**cells, **ref.columns()}
    return {**lead, **{k: v for k, v in row.items() if k not in lead}}


def load_runs(path: str | Path, *, all: bool = False) -> pd.DataFrame:
    """One row per run under `path` (see `find_runs`), with its path, sweep and grid cell."""
    rows = []
    for ref in find_runs(path, all=all):
        summary = read_summary(ref.dir)
        if summary is None:
            continue
        rows.append(with_run_columns(run_row(summary, ref.dir.name), ref))
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["run", "path", "sweep", *RUN_COLUMNS[1:]])


def load_rounds(path: str | Path, *, all: bool = False) -> pd.DataFrame:
    """One row per (run, round) under `path`, with the run's path, sweep and grid cell."""
    rows: list[dict[str, Any]] = []
    for ref in find_runs(path, all=all):
        summary = read_summary(ref.dir)
        if summary is None:
            continue
        rows.extend(with_run_columns(r, ref) for r in rounds_rows(summary, ref.dir.name))
    columns = ["run", "path", "sweep", "run_key", "seed", "members", "round"]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)
