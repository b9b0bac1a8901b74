"""The report of a sweep folder (from `assembly sweep`): its plan, the summary table
with intervals folded into one column per figure, the figures in the research
question's order, and every run."""

from __future__ import annotations

import base64
import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from assembly import glossary
from assembly.core.transcript import TRANSCRIPT
from assembly.inspection.report_html import MAX_TABLE_ROWS, e, figure, page

SWEEP_TABLES = ("summary.csv", "results.csv")
SWEEP_FIGURES = "figures"


def is_sweep(path: Path) -> bool:
    return path.is_dir() and any((path / t).exists() for t in SWEEP_TABLES) and not (path / TRANSCRIPT).exists()


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return (rows[0], rows[1:]) if rows else ([], [])


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], table_id: str, total: int | None = None) -> str:
    numeric = [bool(rows) and all(_is_num(r[i]) or r[i] == "" for r in rows if i < len(r)) for i in range(len(head))]
    th = "".join(
        f'<th class="{"num" if numeric[i] else ""}" title="{e(glossary.meaning(h))}">{e(h)}</th>'
        for i, h in enumerate(head)
    )
    trs = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"num" if i < len(numeric) and numeric[i] else ""}">{e(_short(c))}</td>'
            for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows[:MAX_TABLE_ROWS]
    )
    shown = min(len(rows), MAX_TABLE_ROWS)
    more = (
        f'<p class="note">{(total or len(rows)) - shown} more rows not shown.</p>'
        if (total or len(rows)) > shown
        else ""
    )
    return (
        f'<div class="scroll"><table id="{table_id}"><thead><tr>{th}</tr></thead><tbody>{trs}</tbody>'
        f"</table></div>{more}"
    )


def _csv_table(path: Path, table_id: str) -> str:
    head, rows = _read_csv(path)
    if not head:
        return '<p class="note">empty table</p>'
    return _table(head, rows, table_id)


# Column groups written by the sweep: an estimate with its 95% interval.
_INTERVALS = (("_rate", "_lo", "_hi"), ("_mean", "_mean_lo", "_mean_hi"), ("_median", "_median_lo", "_median_hi"))


def condensed(head: Sequence[str], rows: Sequence[Sequence[str]]) -> tuple[list[str], list[list[str]]]:
    """Fold `x_rate, x_lo, x_hi` (and means, medians) into one `x` column "0.90 [0.70, 0.97]".

    Counts `x_k` that sit beside a rate are dropped (the rate and n say it), and
    groups that are zero throughout (e.g. tokens in a sim sweep) are left out."""
    index = {h: i for i, h in enumerate(head)}
    out_head: list[str] = []
    makers: list[Any] = []
    used: set[str] = set()
    for h in head:
        if h in used:
            continue
        for est, lo, hi in _INTERVALS:
            if h.endswith(est) and h[: -len(est)] + lo in index and h[: -len(est)] + hi in index:
                base = h[: -len(est)]
                cols = [index[h], index[base + lo], index[base + hi]]
                used.update({h, base + lo, base + hi, base + "_k"})
                if all(_is_zero(r[c]) for r in rows for c in cols if c < len(r)):
                    break
                label = base + ("" if est == "_rate" else est)
                out_head.append(label)
                makers.append(lambda r, c=cols: _interval(r, c))
                break
        else:
            if h.endswith("_k") and h[:-2] + "_rate" in index:
                continue
            if h.endswith("_lo") or h.endswith("_hi"):
                continue
            used.add(h)
            out_head.append(h)
            makers.append(lambda r, c=index[h]: r[c] if c < len(r) else "")
    return out_head, [[make(r) for make in makers] for r in rows]


def _interval(row: Sequence[str], cols: Sequence[int]) -> str:
    est, lo, hi = (row[c] if c < len(row) else "" for c in cols)
    if not _is_num(est):
        return est
    if not (_is_num(lo) and _is_num(hi)):
        return f"{float(est):.3g}"
    return f"{float(est):.3g} [{float(lo):.3g}, {float(hi):.3g}]"


def _is_zero(text: str) -> bool:
    return _is_num(text) and float(text) == 0.0


def _is_num(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _short(text: str) -> str:
    if _is_num(text) and "." in text and "e" not in text.lower() and " " not in text:
        whole, _, frac = text.partition(".")
        return f"{whole}.{frac[:4]}"
    return text


def _embedded_figures(folder: Path) -> Iterable[str]:
    """The sweep's figures in the order `figures/figures.json` gives (the research
    question's: outcomes, causes, convergence, cost) with their captions; figures it
    does not list (an older sweep) follow by name."""
    from assembly.sweeps.figures import ordered

    if not folder.is_dir():
        return
    pngs = sorted(folder.glob("*.png"))
    names = {p.stem for p in pngs}
    svgs = [s for s in sorted(folder.glob("*.svg")) if s.stem not in names]  # PNG preferred when both exist
    files = {f.stem: f for f in [*pngs, *svgs]}
    listed = [r for r in ordered(folder) if r["stem"] in files]
    records = listed + [{"stem": stem} for stem in sorted(files) if stem not in {r["stem"] for r in listed}]
    for record in records:
        f = files[record["stem"]]
        mime = "image/png" if f.suffix == ".png" else "image/svg+xml"
        src = f"data:{mime};base64," + base64.b64encode(f.read_bytes()).decode("ascii")
        title = record.get("title") or f.stem.replace("_", " ")
        # The caption is drawn in the image itself (figures are also used on their
        # own); the page gives it as the image's alternative text, and the title below.
        alt = f"{title}: {record['caption']}" if record.get("caption") else title
        # An SVG as <img> runs no scripts and loads nothing, unlike inline SVG.
        yield figure(src, alt, title, f"figure-{_slug(f.stem)}")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-").lower() or "figure"


def _manifest(folder: Path) -> dict[str, Any]:
    """The sweep's `sweep.json`, or {} when it is absent or unreadable (an older sweep)."""
    if not (folder / "sweep.json").exists():
        return {}
    try:
        manifest = json.loads((folder / "sweep.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _sweep_header(folder: Path, manifest: dict[str, Any], name: str) -> str:
    meta = [f"folder {e(folder)}"]
    for key in ("sweep_file", "scenario_file"):
        if isinstance(manifest.get(key), str):
            meta.append(f"{key.replace('_', ' ')} {e(manifest[key])}")
    if isinstance(manifest.get("runs"), list):
        meta.append(f"{len(manifest['runs'])} runs")
    if isinstance(manifest.get("seeds"), list):
        meta.append(f"{len(manifest['seeds'])} seeds per cell")
    plan = []
    for key in ("grid", "set"):
        if isinstance(manifest.get(key), dict) and manifest[key]:
            plan.append(
                f"<dt>{key}</dt><dd>"
                + "; ".join(f'<span class="pos">{e(k)}</span> = {e(json.dumps(v))}' for k, v in manifest[key].items())
                + "</dd>"
            )
    return (
        f'<header class="page" id="sweep-header"><h1>Sweep: {e(name)}</h1>'
        f'<p class="meta">{"".join(f"<span>{m}</span>" for m in meta)}</p>'
        + (f'<dl class="facts">{"".join(plan)}</dl>' if plan else "")
        + "</header>"
    )


def sweep_report(folder: Path) -> str:
    manifest = _manifest(folder)
    name = manifest.get("name") or folder.name
    parts = [_sweep_header(folder, manifest, name)]
    if (folder / "summary.csv").exists():
        head, rows = _read_csv(folder / "summary.csv")
        short_head, short_rows = condensed(head, rows)
        parts.append(
            '<section id="sweep-summary"><h2>Summary by cell</h2>'
            '<p class="note">One row per grid cell: rates and means with their 95% intervals in '
            "brackets (Wilson intervals for rates); n is the number of runs. Columns that are zero "
            "throughout are left out here; the full table follows.</p>"
            f"{_table(short_head, short_rows, 'summary-table')}"
            f"<details><summary>full summary.csv ({len(head)} columns)</summary>"
            f"{_table(head, rows, 'summary-full-table')}</details></section>"
        )
    figures = list(_embedded_figures(folder / SWEEP_FIGURES))
    parts.append(
        '<section id="sweep-figures"><h2>Figures</h2>'
        f'<p class="note">Every figure and column is defined in {e(glossary.DOC)}.</p>'
        + ("".join(figures) if figures else '<p class="note">No figures in this sweep folder.</p>')
        + "</section>"
    )
    if (folder / "results.csv").exists():
        parts.append(
            '<section id="sweep-results"><h2>All runs</h2><details><summary>one row per run</summary>'
            f"{_csv_table(folder / 'results.csv', 'results-table')}</details></section>"
        )
    return page(
        f"sweep {name}",
        "\n".join(parts),
        "Tables and figures are embedded from the sweep folder's summary.csv, results.csv and figures/.",
    )
