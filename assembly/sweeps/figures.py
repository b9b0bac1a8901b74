"""A sweep folder's figures, redrawn only when what they show has changed.

Drawing every figure takes seconds to tens of seconds (matplotlib, PNG and SVG), and
`--resume` of a finished sweep used to redraw them all for nothing. The figures
are a function of their inputs: the results and cells tables, the per-round rows,
the grid, the reference, the title, and the code that draws them. A SHA-256 of all
of that is stored beside the figures in `figures/figures.json`, with the list of
figures in the order they are meant to be read (and their captions, which the
sweep report shows). When the stored hash matches and every file is present,
nothing is drawn.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from assembly.sweeps.plots import Drawn
    from assembly.sweeps.sweep import PlannedRun, Sweep

MANIFEST = "figures.json"
# Modules whose code draws the figures: a change to them redraws.
_DRAWING_CODE = ("plots.py", "convergence_plot.py", "figures.py")


def rounds_of(summaries: Sequence[tuple[PlannedRun, dict[str, Any]]]) -> pd.DataFrame:
    """One row per (run, round) with the run's cell, for the convergence figure."""
    from assembly.sweeps import tables
    from assembly.sweeps.convergence_plot import rounds_frame

    rows: list[dict[str, object]] = []
    for run, summary in summaries:
        rows.extend({"cell": run.cell, **r} for r in tables.rounds_rows(summary, Path(run.dir).name))
    return rounds_frame(rows)


def inputs_hash(results: pd.DataFrame, cells: pd.DataFrame, rounds: pd.DataFrame, settings: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    for frame in (results, cells, rounds):
        digest.update(frame.to_csv(index=False).encode())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    here = Path(__file__).parent
    for name in _DRAWING_CODE:
        digest.update((here / name).read_bytes())
    digest.update(metadata.version("matplotlib").encode())
    return digest.hexdigest()


def draw_if_changed(
    sweep: Sweep,
    folder: Path,
    results: pd.DataFrame,
    cells: pd.DataFrame,
    summaries: Sequence[tuple[PlannedRun, dict[str, Any]]],
    say: Callable[[str], None],
) -> Drawn:
    """Draw the sweep's figures into `folder`, or keep them if their inputs are unchanged."""
    from assembly.sweeps.plots import draw_sweep

    say("collecting per-round figures")
    rounds = rounds_of(summaries)
    settings = {"grid": sweep.grid_keys, "reference": sweep.spec.reference, "title": sweep.spec.name}
    digest = inputs_hash(results, cells, rounds, settings)
    kept = _unchanged(folder, digest)
    if kept is not None:
        return kept
    stale = _recorded(folder)
    drawn: Drawn = draw_sweep(
        results,
        cells,
        folder,
        grid_keys=sweep.grid_keys,
        reference=sweep.spec.reference,
        title=sweep.spec.name,
        rounds=rounds,
        on_figure=lambda stem, i, n: say(f"drawing figure {i}/{n}: {stem}"),
    )
    # A figure drawn last time but empty now (e.g. no model calls any more) must not linger.
    for record in stale.get("figures", []):
        if record.get("stem") not in {f["stem"] for f in drawn.figures}:
            for ext in ("png", "svg"):
                (folder / f"{record['stem']}.{ext}").unlink(missing_ok=True)
    if drawn.figures:
        record = {"inputs_sha256": digest, "figures": drawn.figures, "notes": drawn.notes}
        tmp = folder / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        tmp.replace(folder / MANIFEST)
    return drawn


def _recorded(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _unchanged(folder: Path, digest: str) -> Drawn | None:
    """The recorded figures, if they were drawn from these very inputs and are all there."""
    from assembly.sweeps.plots import Drawn

    data = _recorded(folder)
    if data.get("inputs_sha256") != digest:
        return None
    figures = [f for f in data.get("figures", []) if isinstance(f, dict) and "stem" in f]
    paths = [folder / f"{f['stem']}.{ext}" for f in figures for ext in ("png", "svg")]
    if not figures or not all(p.exists() for p in paths):
        return None
    return Drawn(paths=paths, notes=list(data.get("notes", [])), figures=figures, kept=True)


def ordered(folder: Path) -> list[dict[str, str]]:
    """The figures of a sweep folder in reading order, with titles and captions
    (for the report); empty when the folder has no figures.json (an older sweep)."""
    return [f for f in _recorded(folder).get("figures", []) if isinstance(f, dict) and "stem" in f]
