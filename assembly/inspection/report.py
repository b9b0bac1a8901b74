"""`assembly report`: one self-contained HTML page for a run or a sweep.

The page has no network dependencies and no scripts: CSS is inlined, charts are
matplotlib (Agg) PNGs embedded as base64, and a Content-Security-Policy forbids
loading anything else, so a report can be mailed, archived or opened offline and
looks the same. Every figure comes from the transcript through `metrics.summarize`
(the function that wrote summary.json); every piece of member text is passed
through `html.escape`, so a member cannot inject markup into the page.

For a run: outcome, who won and who lost (per role, utility and regret under the
decision and under each single-utility baseline; `report_welfare`), convergence over
rounds (dispersion, modal share, support and the idea similarity of messages), a
timeline of rounds, the member x round matrix of positions, liveness events, and the
disclosure of private facts over time.
For a sweep folder (results.csv / summary.csv and figures/, from `assembly sweep`):
its summary table and figures.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterable, Sequence
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from assembly import launch
from assembly.core import metrics
from assembly.core.atomic import checked_target, write_atomic
from assembly.core.errors import UserError
from assembly.core.events import Disclosure, RoundEnded, RoundStarted, RunEnded, RunInterrupted, Seated, Tally, Turn
from assembly.core.neutralize import neutralize
from assembly.core.presentation import Presentation, Series
from assembly.core.redaction import redact
from assembly.core.transcript import SUMMARY, TRANSCRIPT, Transcript, TranscriptError, read_transcript
from assembly.inspection.console import fmt
from assembly.inspection.report_welfare import who_won
from assembly.protocols import protocol_class

SWEEP_TABLES = ("summary.csv", "results.csv")
REPORT_SUFFIXES = (".html", ".htm")  # the only files of a run or sweep a report may replace
SWEEP_FIGURES = "figures"
MATRIX_MAX_MEMBERS = 400  # beyond this the position matrix is drawn as an image
MAX_TABLE_ROWS = 2000
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
# Qualitative palette (matplotlib tab10), readable with white text.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
# Plain words, not symbols: a missing glyph must not hide a liveness event.
FAIL_MARK = {"timeout": "t/o", "malformed": "bad", "provider_error": "err", "skipped": "skip"}


class ReportError(UserError):
    """A path that holds neither a run nor a sweep."""


def e(value: Any) -> str:
    """Member and scenario text, made inert for HTML (and shown, not obeyed: `neutralize`)."""
    return escape(neutralize(redact(str(value))), quote=True)


# ----------------------------------------------------------------------------- entry points


def is_sweep(path: Path) -> bool:
    return path.is_dir() and any((path / t).exists() for t in SWEEP_TABLES) and not (path / TRANSCRIPT).exists()


def build(path: Path | str) -> str:
    """The report for a run folder (or transcript file) or a sweep folder, as HTML."""
    p = Path(path)
    if not p.exists():
        raise ReportError(f"{p}: no such run or sweep folder")
    if is_sweep(p):
        return sweep_report(p)
    try:
        transcript = read_transcript(p)
        transcript.started  # noqa: B018 - raises when the header is missing
    except TranscriptError as exc:
        raise ReportError(
            f"{exc} (a report needs a run folder with {TRANSCRIPT}, or a sweep folder with {' or '.join(SWEEP_TABLES)})"
        ) from None
    if not any(isinstance(ev, Seated) for ev in transcript.events):
        raise ReportError(f"{transcript.path}: the run died before it was seated; nothing to report")
    return run_report(transcript)


def write(path: Path | str, out: Path | str) -> Path:
    """Write the report for `path` to `out`, atomically (`core.atomic`): never over a
    folder, a device or FIFO, or a file of the run or sweep it reports on (an older
    report aside). Keys are redacted and no raw control character is written."""
    source = Path(path)
    folder = source if source.is_dir() else source.parent
    checked_target(Path(out), protected=folder, replaceable=REPORT_SUFFIXES)  # refuse before the work
    html = neutralize(redact(build(source)), tokens=False)
    write_atomic(Path(out), html, protected=folder, replaceable=REPORT_SUFFIXES)
    return Path(out)


def _page(title: str, body: str, footer: str = "Every figure is recomputed from the run's transcript.") -> str:
    css = resources.files("assembly.inspection").joinpath("report_assets/report.css").read_text(encoding="utf-8")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{e(title)}</title>\n<style>\n{css}</style>\n</head>\n<body>\n<main>\n{body}\n"
        f"<footer>Generated by <code>assembly report</code>. {e(footer)}</footer>\n</main>\n</body>\n</html>\n"
    )


# ----------------------------------------------------------------------------- charts


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(src: str, alt: str, caption: str, fig_id: str) -> str:
    return f'<figure id="{fig_id}"><img src="{src}" alt="{e(alt)}"><figcaption>{e(caption)}</figcaption></figure>'


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display, no window: the report is built headless
    import matplotlib.pyplot as plt

    return plt


def _numeric(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def convergence_chart(per_round: Sequence[dict[str, Any]], lines: Sequence[Series]) -> str | None:
    """The protocol's convergence figures over rounds (its presentation's `chart_series`).
    Figures on another scale than shares (the consensus game's spread of values) get
    their own axis on the right."""
    series = [s for s in lines if any(_numeric(r.get(s.key)) for r in per_round)]
    if not series:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.6, 3.6))
    right = ax.twinx() if any(not s.share for s in series) else None
    colors = iter(PALETTE)
    handles = []
    for s in series:
        xs = [r["round"] for r in per_round if _numeric(r.get(s.key))]
        ys = [float(r[s.key]) for r in per_round if _numeric(r.get(s.key))]
        target = ax if s.share or right is None else right
        handles += target.plot(xs, ys, s.style, label=s.label, linewidth=1.8, markersize=5, color=next(colors))
    ax.set_xlabel("round")
    ax.set_xticks([r["round"] for r in per_round])
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("share / similarity")
    if right is not None:
        right.set_ylim(bottom=0)
        right.set_ylabel("value spread")
    ax.grid(alpha=0.3)
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.12 if right else 1.01, 1.0), frameon=False, fontsize=9
    )
    ax.set_title("Action and idea convergence by round", fontsize=11)
    return _png(fig)


def liveness_chart(per_round: Sequence[dict[str, Any]]) -> str | None:
    kinds = [
        ("turn_timeouts", "timeouts", "#cf222e"),
        ("malformed", "malformed", "#9a6700"),
        ("provider_errors", "provider errors", "#8250df"),
        ("abstentions", "abstentions", "#8c959f"),
    ]
    if not any(r.get(k) for r in per_round for k, _, _ in kinds):
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.6, 2.8))
    rounds = [r["round"] for r in per_round]
    width = 0.2
    for i, (k, label, color) in enumerate(kinds):
        ax.bar(
            [x + (i - 1.5) * width for x in rounds], [r.get(k, 0) for r in per_round], width, label=label, color=color
        )
    ax.set_xlabel("round")
    ax.set_ylabel("turns")
    ax.set_xticks(rounds)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=9)
    ax.set_title("Liveness events by round", fontsize=11)
    return _png(fig)


def disclosure_chart(rounds: Sequence[int], cumulative: dict[str, list[int]], dealt: dict[str, int]) -> str | None:
    if not rounds or not dealt:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.6, 2.8))
    styles = {"all": ("all facts", "#0b5cad"), "unshared": ("unshared facts (one holder)", "#cf222e")}
    for key, (label, color) in styles.items():
        if dealt.get(key):
            ax.plot(rounds, cumulative[key], "-o", color=color, label=f"{label}: disclosed")
            ax.axhline(dealt[key], color=color, linestyle=":", linewidth=1, label=f"{label}: dealt")
    from matplotlib.ticker import MaxNLocator

    ax.set_ylim(-0.3, max(dealt.values()) + 0.6)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("round")
    ax.set_ylabel("distinct facts")
    ax.set_xticks(list(rounds))
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=9)
    ax.set_title("Private facts brought into the deliberation (cumulative)", fontsize=11)
    return _png(fig)


def matrix_image(
    members: Sequence[str], rounds: Sequence[int], cells: dict[tuple[str, int], Any], colors: dict[str, str]
) -> str:
    """The position matrix as an image, for assemblies too large for a table."""
    import numpy as np
    from matplotlib.colors import ListedColormap

    plt = _pyplot()
    keys = list(colors)
    grid = np.full((len(members), len(rounds)), -1.0)
    for i, m in enumerate(members):
        for j, r in enumerate(rounds):
            v = cells.get((m, r))
            if isinstance(v, str) and v in colors:
                grid[i, j] = keys.index(v)
    cmap = ListedColormap(["#ffffff", *colors.values()])
    fig, ax = plt.subplots(figsize=(min(12, 2 + 0.5 * len(rounds)), 6))
    ax.imshow(grid + 1, aspect="auto", cmap=cmap, vmin=0, vmax=len(keys), interpolation="nearest")
    ax.set_xlabel("round")
    ax.set_ylabel("member (seat order)")
    ax.set_xticks(range(len(rounds)), [str(r) for r in rounds])
    return _png(fig)


# ----------------------------------------------------------------------------- run report


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _fmt(v: Any) -> str:
    return fmt(v, digits=3, escape=e)


def run_report(transcript: Transcript) -> str:
    events = transcript.events
    started = transcript.started
    seated = next(ev for ev in events if isinstance(ev, Seated))
    summary = launch.summarize(events)
    per_round = summary["per_round"]
    sc = started.scenario
    options = [o.get("id") for o in sc.get("options", ())]
    colors = {str(o): PALETTE[i % len(PALETTE)] for i, o in enumerate(options)}
    end = next((ev for ev in events if isinstance(ev, RunEnded)), None)
    interrupted = next((ev for ev in events if isinstance(ev, RunInterrupted)), None)
    shown = protocol_class(started.protocol).presentation

    parts = [
        _run_header(transcript, seated, summary),
        _outcome(summary, end, interrupted, transcript),
        who_won(summary),
        _convergence(per_round, shown),
        _timeline(events, seated, per_round, shown),
        _matrix(events, seated, colors, shown),
        _liveness(events, per_round),
        _disclosures(events, seated, sc),
    ]
    return _page(f"{sc.get('name', 'run')} · {started.run_id}", "\n".join(p for p in parts if p))


def _run_header(transcript: Transcript, seated: Seated, summary: dict[str, Any]) -> str:
    s = transcript.started
    sc = s.scenario
    roles: dict[str, int] = {}
    for m in seated.members:
        roles[m.role] = roles.get(m.role, 0) + 1
    meta = [
        f"run {e(s.run_id)}",
        f"protocol {e(s.protocol)}",
        f"seed {s.seed}",
        f"{len(seated.members)} members",
        f"{summary['rounds']} rounds",
        f"run key {e(s.run_key)}",
        f"assembly {e(s.versions.get('assembly', '?'))}",
    ]
    parent = ""
    if s.parent:
        parent = f'<p class="meta">continues {e(json.dumps(s.parent, sort_keys=True))}</p>'
    opts = "".join(
        f'<li><span class="pos">{e(o.get("id"))}</span>: {e(o.get("text", ""))}</li>' for o in sc.get("options", ())
    )
    role_line = ", ".join(f"{n} {e(r)}" for r, n in roles.items())
    return (
        f'<header class="page" id="run-header"><h1>{e(sc.get("name", "run"))}</h1>'
        f'<p class="question">{e(sc.get("question", ""))}</p>'
        f'<p class="meta">{"".join(f"<span>{m}</span>" for m in meta)}</p>{parent}'
        f"<details><summary>options and seating</summary><ul>{opts}</ul><p>Seated: {role_line}</p>"
        f'<p class="meta">{e(sc.get("description", ""))}</p></details></header>'
    )


def _outcome(
    summary: dict[str, Any], end: RunEnded | None, interrupted: RunInterrupted | None, transcript: Transcript
) -> str:
    cls: str
    if end is not None:
        cls, verdict = end.outcome, end.outcome.replace("_", " ")
    elif interrupted is not None:
        cls, verdict = "incomplete", f"interrupted in round {interrupted.round}"
    else:
        cls, verdict = "incomplete", "incomplete: no run_ended event (still running or killed)"
    rows = []
    if end is not None:
        if end.cause:
            rows.append(("cause", e(end.cause.replace("_", " "))))
        if end.decision is not None:
            rows.append(("decision", f'<span class="pos">{e(end.decision)}</span>'))
        rows.append(("reason", e(end.reason)))
    t = summary["totals"]
    rows.append(
        (
            "liveness",
            f"{t['turn_timeouts']} timeouts, {t['malformed']} malformed, "
            f"{t['provider_errors']} provider errors, {t['abstentions']} abstentions, "
            f"{t['retries']} retries",
        )
    )
    if t.get("calls"):
        rows.append(
            (
                "model calls",
                f"{t['calls']} ({t['cache_hits']} cached), {t['prompt_tokens']} in / "
                f"{t['completion_tokens']} out tokens, ${t['cost_usd']:.4f}",
            )
        )
    for k, v in summary.get("figures", {}).items():
        rows.append((e(k.replace("_", " ")), _fmt(v)))
    rows.append(("summary.json", _summary_check(transcript)))
    torn = ""
    if transcript.torn is not None:
        torn = (
            '<p class="fail">The transcript ends in a torn line (cut mid-write, e.g. the process was '
            "killed); it was ignored.</p>"
        )
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return (
        f'<section class="outcome {e(cls)}" id="outcome"><h2>Outcome</h2>'
        f'<div class="verdict">{e(verdict)}</div><dl class="facts">{dl}</dl>{torn}</section>'
    )


# Per-round figures every run has (liveness and usage), left out of the figures table.
_GENERAL_FIGURES = frozenset(
    {
        "round",
        "turn_timeouts",
        "malformed",
        "provider_errors",
        "abstentions",
        "retries",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
    }
)


def _convergence(per_round: Sequence[dict[str, Any]], shown: Presentation) -> str:
    chart = convergence_chart(per_round, shown.chart_series)
    cols = [k for k in shown.table_figures if any(k in r for r in per_round)]
    extra = sorted({k for r in per_round for k in r} - {*cols, *_GENERAL_FIGURES, *shown.hidden_figures})
    cols += extra
    head = "".join(f'<th class="num">{e(c.replace("_", " "))}</th>' for c in ["round", *cols])
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{_fmt(r.get(c))}</td>' for c in ["round", *cols]) + "</tr>"
        for r in per_round
    )
    caption = (
        "Action convergence (how close stated positions are) beside idea convergence (mean pairwise "
        "TF-IDF cosine similarity of the round's messages), where the protocol records them."
    )
    fig = (
        _figure(chart, "convergence chart", caption, "convergence-chart")
        if chart
        else '<p class="note">No round completed yet.</p>'
    )
    return (
        f'<section id="convergence"><h2>Convergence over rounds</h2>{fig}'
        f'<div class="scroll"><table id="figures-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div></section>"
    )


def _timeline(events: Sequence[Any], seated: Seated, per_round: Sequence[dict[str, Any]], shown: Presentation) -> str:
    rows = {r["round"]: r for r in per_round}
    seat_ids = {m.id for m in seated.members}
    by_round = metrics.events_by_round(events)
    items = []
    for r in sorted(by_round):
        evs = by_round[r]
        ended = next((x for x in evs if isinstance(x, RoundEnded)), None)
        start = next((x for x in evs if isinstance(x, RoundStarted)), None)
        tally = next((x for x in evs if isinstance(x, Tally)), None)
        turns = [x for x in evs if isinstance(x, Turn)]
        failed = [t for t in turns if t.status != "ok"]
        disclosures = [x for x in evs if isinstance(x, Disclosure)]
        badges = []
        if tally is not None:
            quorum = (
                '<span class="badge ok">quorum met</span>'
                if tally.quorum_met
                else '<span class="badge bad">quorum not met</span>'
            )
            lead = (
                f'<span class="badge">leading {e(tally.leading)} {tally.leading_support:.0%}</span>'
                if tally.leading
                else ""
            )
            won = f'<span class="badge ok">decided: {e(tally.winner)}</span>' if tally.decided else ""
            badges += [f'<span class="badge">vote {tally.counted}/{tally.seated}</span>', quorum, lead, won]
        else:
            badges.append('<span class="badge">no vote</span>')
        if failed:
            badges.append(f'<span class="badge bad">{_plural(len(failed), "failed turn")}</span>')
        if disclosures:
            badges.append(f'<span class="badge warn">{_plural(len(disclosures), "disclosure")}</span>')
        row = rows.get(r, {})
        for key, label in shown.badges:
            if row.get(key) is not None:
                badges.append(f'<span class="badge">{e(label)} {_badge_value(row[key])}</span>')
        framing = f'<p class="framing">{e(start.framing)}</p>' if start is not None and start.framing else ""
        msgs = [_turn_item(t, seat_ids, shown) for t in turns]
        msgs = [m for m in msgs if m]
        spoken = sum(
            1 for t in turns if t.member in seat_ids and t.phase in shown.contribution_phases and t.status == "ok"
        )
        summary = _plural(spoken, "contribution") + (f", {_plural(len(failed), 'failed turn')}" if failed else "")
        details = (
            (f'<details><summary>{summary}</summary><ul class="messages">{"".join(msgs)}</ul></details>')
            if msgs
            else ""
        )
        cls = "stop" if ended is not None and ended.stop else ("" if ended is not None else "incomplete")
        title = f"Round {r}" + ("" if ended is not None else " (incomplete)")
        items.append(f'<li class="{cls}" id="round-{r}"><h3>{title}</h3>{"".join(badges)}{framing}{details}</li>')
    if not items:
        return '<section id="timeline"><h2>Timeline</h2><p class="note">No rounds yet.</p></section>'
    return f'<section id="timeline"><h2>Timeline of rounds</h2><ol class="timeline">{"".join(items)}</ol></section>'


def _badge_value(v: Any) -> str:
    return f"{v:.3f}" if _numeric(v) else e(v)


def _turn_item(t: Turn, seat_ids: set[str], shown: Presentation) -> str:
    """One turn in a round's list of messages ("" for a member turn that states nothing)."""
    who = f'<span class="who">{e(t.member)}</span> <span class="meta">{e(t.phase)}</span>'
    action = t.action or {}
    if t.status != "ok":
        return f'<li>{who} <span class="fail">{e(t.status)}</span> {e(t.detail or "")}</li>'
    if t.member in seat_ids and t.phase in shown.contribution_phases:
        return f'<li>{who} <span class="pos">{e(shown.position(action))}</span> {e(shown.message(action))}</li>'
    if t.member not in seat_ids:  # the facilitator
        note = shown.note(action)
        meta = f' <span class="meta">{e(note)}</span>' if note else ""
        return f"<li>{who} {e(shown.message(action))}{meta}</li>"
    return ""


def _matrix(events: Sequence[Any], seated: Seated, colors: dict[str, str], shown: Presentation) -> str:
    first_phase: dict[int, str] = {}
    cells: dict[tuple[str, int], Any] = {}
    failed: dict[tuple[str, int], str] = {}
    tips: dict[tuple[str, int], str] = {}
    seat_ids = {m.id for m in seated.members}
    for ev in events:
        if not isinstance(ev, Turn) or ev.member not in seat_ids:
            continue
        phase = first_phase.setdefault(ev.round, ev.phase)
        if ev.phase != phase:
            continue  # the position is what a member states in the round's first phase
        key = (ev.member, ev.round)
        if ev.status == "ok":
            cells[key] = shown.position(ev.action or {})
            tips[key] = shown.message(ev.action or {})[:300]
        else:
            failed[key] = ev.status
    rounds = sorted(first_phase)
    if not rounds:
        return ""
    members = [m.id for m in seated.members]
    numeric = all(isinstance(v, int | float) for v in cells.values()) and cells
    legend = (
        ""
        if numeric
        else '<p class="legend">'
        + "".join(f'<span><i style="background:{c}"></i>{e(o)}</span>' for o, c in colors.items())
        + "</p>"
    )
    note = (
        '<p class="note">What each member stated in each round (hover a cell for its message). '
        '<span class="fail">t/o</span> timed out, <span class="fail">bad</span> malformed output, '
        '<span class="fail">err</span> provider error; blank: not asked.</p>'
    )
    if len(members) > MATRIX_MAX_MEMBERS and not numeric:
        img = matrix_image(members, rounds, cells, colors)
        return (
            f'<section id="positions"><h2>Positions: member × round</h2>{legend}'
            f"{_figure(img, 'position matrix', f'{len(members)} members; white: no position.', 'positions-image')}"
            "</section>"
        )
    lo = min((float(v) for v in cells.values()), default=0.0) if numeric else 0.0
    hi = max((float(v) for v in cells.values()), default=1.0) if numeric else 1.0
    head = "<th>member</th><th>role</th>" + "".join(f'<th class="num">{r}</th>' for r in rounds)
    body = []
    for m in seated.members:
        tds = []
        for r in rounds:
            key = (m.id, r)
            if key in failed:
                mark = FAIL_MARK.get(failed[key], "err")
                tds.append(f'<td class="cell missing" title="{e(failed[key])}">{mark}</td>')
            elif key not in cells:
                tds.append('<td class="cell absent"></td>')
            else:
                v = cells[key]
                color = _numeric_color(float(v), lo, hi) if numeric else colors.get(str(v), "#57606a")
                label = e(v) if numeric else e(("".join(ch for ch in str(v) if ch.isalnum()) or str(v))[:3])
                tds.append(
                    f'<td class="cell" style="background:{color}" title="{e(v)}: {e(tips.get(key, ""))}">{label}</td>'
                )
        body.append(f"<tr><td>{e(m.id)}</td><td>{e(m.role)}</td>{''.join(tds)}</tr>")
    return (
        f'<section id="positions"><h2>Positions: member × round</h2>{note}{legend}'
        f'<div class="scroll"><table class="matrix" id="position-matrix"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div></section>"
    )


def _numeric_color(v: float, lo: float, hi: float) -> str:
    from matplotlib import colormaps, colors

    x = 0.5 if hi <= lo else (v - lo) / (hi - lo)
    return str(colors.to_hex(colormaps["viridis"](0.1 + 0.8 * x)))


def _liveness(events: Sequence[Any], per_round: Sequence[dict[str, Any]]) -> str:
    chart = liveness_chart(per_round)
    failed = [ev for ev in events if isinstance(ev, Turn) and (ev.status != "ok" or len(ev.attempts) > 1)]
    rows = "".join(
        f'<tr><td class="num">{t.round}</td><td>{e(t.phase)}</td><td>{e(t.member)}</td>'
        f'<td class="{"fail" if t.status != "ok" else ""}">{e(t.status if t.status != "ok" else "ok after retry")}'
        f'</td><td class="num">{len(t.attempts)}</td>'
        f"<td>{e(t.detail or '')}</td></tr>"
        for t in failed[:MAX_TABLE_ROWS]
    )
    more = f'<p class="note">{len(failed) - MAX_TABLE_ROWS} more not shown.</p>' if len(failed) > MAX_TABLE_ROWS else ""
    interrupted = [ev for ev in events if isinstance(ev, RunInterrupted)]
    extra = "".join(f'<p class="fail">Run interrupted in round {ev.round}: {e(ev.reason)}</p>' for ev in interrupted)
    if not failed and not interrupted:
        return (
            '<section id="liveness"><h2>Liveness</h2><p>No liveness events: every turn answered on the '
            "first attempt.</p></section>"
        )
    fig = _figure(chart, "liveness chart", "Failed turns and abstentions per round.", "liveness-chart") if chart else ""
    table = (
        ""
        if not failed
        else '<div class="scroll"><table id="liveness-table"><thead><tr><th class="num">round</th><th>phase</th>'
        '<th>member</th><th>status</th><th class="num">attempts</th><th>detail</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>{more}"
    )
    return f'<section id="liveness"><h2>Liveness events</h2>{extra}{fig}{table}</section>'


def _disclosures(events: Sequence[Any], seated: Seated, scenario: dict[str, Any]) -> str:
    holders: dict[str, list[str]] = {}
    for m in seated.members:
        for f in m.facts:
            holders.setdefault(f, []).append(m.id)
    if not holders:
        return ""
    texts = {f.get("id"): f.get("text", "") for f in scenario.get("facts", ())}
    rounds = sorted({ev.round for ev in events if isinstance(ev, RoundEnded)})
    per: dict[tuple[str, int], int] = {}
    first: dict[str, tuple[int, str]] = {}
    for ev in events:
        if isinstance(ev, Disclosure):
            per[(ev.fact, ev.round)] = per.get((ev.fact, ev.round), 0) + 1
            first.setdefault(ev.fact, (ev.round, ev.member))
    seen: set[str] = set()
    cumulative: dict[str, list[int]] = {"all": [], "unshared": []}
    for r in rounds:
        seen |= {f for (f, rr) in per if rr == r}
        cumulative["all"].append(len(seen))
        cumulative["unshared"].append(sum(1 for f in seen if len(holders.get(f, ())) == 1))
    dealt = {"all": len(holders), "unshared": sum(1 for h in holders.values() if len(h) == 1)}
    chart = disclosure_chart(rounds, cumulative, dealt)
    head = '<th>fact</th><th>text</th><th class="num">holders</th><th>first disclosed</th>' + "".join(
        f'<th class="num">r{r}</th>' for r in rounds
    )
    body = []
    for f, hs in holders.items():
        when = first.get(f)
        first_cell = f"round {when[0]} by {e(when[1])}" if when else '<span class="fail">never</span>'
        counts = "".join(f'<td class="num">{per.get((f, r), "") or ""}</td>' for r in rounds)
        kind = ' <span class="badge warn">unshared</span>' if len(hs) == 1 else ""
        body.append(
            f'<tr><td class="pos">{e(f)}{kind}</td><td>{e(texts.get(f, ""))}</td>'
            f'<td class="num">{len(hs)}</td><td>{first_cell}</td>{counts}</tr>'
        )
    fig = (
        _figure(
            chart,
            "disclosure chart",
            "Distinct private facts disclosed so far, against how many were "
            "dealt; unshared facts are held by one member only.",
            "disclosure-chart",
        )
        if chart
        else ""
    )
    return (
        f'<section id="disclosures"><h2>Disclosure of private facts</h2>{fig}'
        '<p class="note">Cells count the members who disclosed the fact in that round.</p>'
        f'<div class="scroll"><table id="disclosure-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div></section>"
    )


# ----------------------------------------------------------------------------- sweep report


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return (rows[0], rows[1:]) if rows else ([], [])


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], table_id: str, total: int | None = None) -> str:
    numeric = [bool(rows) and all(_is_num(r[i]) or r[i] == "" for r in rows if i < len(r)) for i in range(len(head))]
    th = "".join(f'<th class="{"num" if numeric[i] else ""}">{e(h)}</th>' for i, h in enumerate(head))
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
    if not folder.is_dir():
        return
    pngs = sorted(folder.glob("*.png"))
    names = {p.stem for p in pngs}
    svgs = [s for s in sorted(folder.glob("*.svg")) if s.stem not in names]  # PNG preferred when both exist
    for f in sorted([*pngs, *svgs], key=lambda p: p.stem):
        mime = "image/png" if f.suffix == ".png" else "image/svg+xml"
        src = f"data:{mime};base64," + base64.b64encode(f.read_bytes()).decode("ascii")
        # An SVG as <img> runs no scripts and loads nothing, unlike inline SVG.
        yield _figure(src, f.stem, f.stem.replace("_", " "), f"figure-{_slug(f.stem)}")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-").lower() or "figure"


def sweep_report(folder: Path) -> str:
    manifest: dict[str, Any] = {}
    if (folder / "sweep.json").exists():
        try:
            manifest = json.loads((folder / "sweep.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            manifest = {}
    name = manifest.get("name") or folder.name
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
    parts = [
        f'<header class="page" id="sweep-header"><h1>Sweep: {e(name)}</h1>'
        f'<p class="meta">{"".join(f"<span>{m}</span>" for m in meta)}</p>'
        + (f'<dl class="facts">{"".join(plan)}</dl>' if plan else "")
        + "</header>"
    ]
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
        + ("".join(figures) if figures else '<p class="note">No figures in this sweep folder.</p>')
        + "</section>"
    )
    if (folder / "results.csv").exists():
        parts.append(
            '<section id="sweep-results"><h2>All runs</h2><details><summary>one row per run</summary>'
            f"{_csv_table(folder / 'results.csv', 'results-table')}</details></section>"
        )
    return _page(
        f"sweep {name}",
        "\n".join(parts),
        "Tables and figures are embedded from the sweep folder's summary.csv, results.csv and figures/.",
    )


def _summary_check(transcript: Transcript) -> str:
    """Whether the run's published summary.json agrees with its transcript."""
    path = transcript.path.parent / SUMMARY
    if not path.exists():
        return '<span class="badge warn">absent (run not finished)</span>'
    from assembly.inspection.replay import diff

    try:
        published = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return '<span class="badge bad">not valid JSON</span>'
    differences = list(diff(published, json.loads(json.dumps(launch.summarize(transcript.events)))))
    if not differences:
        return '<span class="badge ok">every figure matches the transcript</span>'
    return (
        f'<span class="badge bad">{len(differences)} figures differ from the transcript</span> '
        f'<span class="meta">{e(differences[0])}</span>'
    )
