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
its summary table and figures (`report_sweep`). The page frame and inert text are in
`report_html`, the run's charts in `report_charts`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assembly import glossary, launch
from assembly.core.atomic import checked_target, write_atomic
from assembly.core.errors import UserError
from assembly.core.events import (
    AnyEvent,
    Disclosure,
    RunEnded,
    RunInterrupted,
    Seated,
    Turn,
)
from assembly.core.neutralize import neutralize
from assembly.core.presentation import Presentation
from assembly.core.redaction import redact
from assembly.core.transcript import (
    SUMMARY,
    TRANSCRIPT,
    Transcript,
    TranscriptDamaged,
    TranscriptError,
    read_transcript,
)
from assembly.inspection.console import capacity_line, fmt, liveness_line
from assembly.inspection.report_charts import convergence_chart, disclosure_chart, liveness_chart, matrix_image
from assembly.inspection.report_html import MAX_TABLE_ROWS, PALETTE, e, figure, numeric, page
from assembly.inspection.report_sweep import SWEEP_TABLES, is_sweep, sweep_report
from assembly.inspection.report_welfare import who_won
from assembly.protocols import protocol_class

REPORT_SUFFIXES = (".html", ".htm")  # the only files of a run or sweep a report may replace
MATRIX_MAX_MEMBERS = 400  # beyond this the position matrix is drawn as an image
# Plain words, not symbols: a missing glyph must not hide a liveness event.
FAIL_MARK = {"timeout": "t/o", "throttled": "thr", "malformed": "bad", "provider_error": "err", "skipped": "skip"}


class ReportError(UserError):
    """A path that holds neither a run nor a sweep."""


# ----------------------------------------------------------------------------- entry points


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
    except TranscriptDamaged as exc:
        # Figures recomputed from an edited transcript would be reported as the run's.
        raise ReportError(str(exc)) from None
    except TranscriptError as exc:
        raise ReportError(
            f"{exc} (a report needs a run folder with {TRANSCRIPT}, or a sweep folder with {' or '.join(SWEEP_TABLES)})"
        ) from None
    if not transcript.is_seated:
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


# ----------------------------------------------------------------------------- run report


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _fmt(v: Any) -> str:
    return fmt(v, digits=3, escape=e)


def run_report(transcript: Transcript) -> str:
    events = transcript.events
    started = transcript.started
    seated = transcript.seated
    summary = launch.summarize(transcript)
    per_round = summary["per_round"]
    sc = started.scenario
    options = [o.get("id") for o in sc.get("options", ())]
    colors = {str(o): PALETTE[i % len(PALETTE)] for i, o in enumerate(options)}
    end, interrupted = transcript.end, transcript.interrupted
    shown = protocol_class(started.protocol).presentation

    parts = [
        _run_header(transcript, seated, summary),
        _outcome(summary, end, interrupted, transcript),
        who_won(summary),
        _convergence(per_round, shown),
        _timeline(transcript, seated, per_round, shown),
        _matrix(events, seated, colors, shown),
        _liveness(events, per_round),
        _disclosures(transcript, seated, sc),
    ]
    return page(f"{sc.get('name', 'run')} · {started.run_id}", "\n".join(p for p in parts if p))


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
        e(protocol_class(s.protocol).presentation.seating(seated)),
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
        f'<p class="meta">{"".join(f"<span>{m}</span>" for m in meta)}</p>{parent}{_provenance(s.provenance)}'
        f"<details><summary>options and seating</summary><ul>{opts}</ul><p>Seated: {role_line}</p>"
        f'<p class="meta">{e(sc.get("description", ""))}</p></details></header>'
    )


def _provenance(record: dict[str, Any] | None) -> str:
    """Where the run came from (`run_started.provenance`): commit, host, Python, command."""
    if not record:
        return ""
    parts = []
    if record.get("git_commit"):
        dirty = " with uncommitted changes" if record.get("git_dirty") else ""
        parts.append(f"commit {e(str(record['git_commit'])[:12])}{dirty}")
    if record.get("host"):
        parts.append(f"host {e(record['host'])}" + (f", {e(record['cpus'])} CPUs" if record.get("cpus") else ""))
    if record.get("python"):
        parts.append(f"Python {e(record['python'])}")
    command = f"<br><code>{e(record['command'])}</code>" if record.get("command") else ""
    return f'<p class="meta" id="provenance">{"".join(f"<span>{p}</span>" for p in parts)}{command}</p>'


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
    rows.append(("liveness", e(liveness_line(t))))
    capacity = capacity_line(t)
    if capacity is not None:
        rows.append(("tool capacity", e(capacity)))
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
    rows.append(("transcript", _integrity_badge(transcript)))
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
        "throttled",
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
    head = "".join(
        f'<th class="num" title="{e(glossary.meaning(c))}">{e(c.replace("_", " "))}</th>' for c in ["round", *cols]
    )
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{_fmt(r.get(c))}</td>' for c in ["round", *cols]) + "</tr>"
        for r in per_round
    )
    caption = (
        "Action convergence (how close stated positions are) beside idea convergence (mean pairwise "
        "TF-IDF cosine similarity of the round's messages), where the protocol records them."
    )
    fig = (
        figure(chart, "convergence chart", caption, "convergence-chart")
        if chart
        else '<p class="note">No round completed yet.</p>'
    )
    return (
        f'<section id="convergence"><h2>Convergence over rounds</h2>{fig}'
        f'<div class="scroll"><table id="figures-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div></section>"
    )


def _timeline(run: Transcript, seated: Seated, per_round: Sequence[dict[str, Any]], shown: Presentation) -> str:
    rows = {r["round"]: r for r in per_round}
    seat_ids = {m.id for m in seated.members}
    items = []
    for r in sorted(run.rounds):
        rnd = run.rounds[r]
        ended, start, tally = rnd.ended, rnd.started, next(iter(rnd.tallies), None)
        turns = rnd.turns
        failed = [t for t in turns if t.status != "ok"]
        disclosures = rnd.disclosures
        badges = []
        if tally is not None:
            badges += [_badge(b.text, b.tone) for b in shown.tally_badges(tally)]
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


def _badge(text: str, tone: str = "") -> str:
    return f'<span class="badge{" " + e(tone) if tone else ""}">{e(text)}</span>'


def _badge_value(v: Any) -> str:
    return f"{v:.3f}" if numeric(v) else e(v)


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


def _matrix(events: Sequence[AnyEvent], seated: Seated, colors: dict[str, str], shown: Presentation) -> str:
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
            f"{figure(img, 'position matrix', f'{len(members)} members; white: no position.', 'positions-image')}"
            "</section>"
        )
    lo = min((float(v) for v in cells.values()), default=0.0) if numeric else 0.0
    hi = max((float(v) for v in cells.values()), default=1.0) if numeric else 1.0
    head = "<th>member</th><th>role</th>" + "".join(f'<th class="num">{r}</th>' for r in rounds)
    body = []
    for m in seated.members:
        tds = [_matrix_cell((m.id, r), cells, failed, tips, colors, (lo, hi) if numeric else None) for r in rounds]
        mark = shown.member_mark(m)
        who = e(m.id) + (f' <span class="badge warn member-mark">{e(mark)}</span>' if mark else "")
        body.append(f"<tr><td>{who}</td><td>{e(m.role)}</td>{''.join(tds)}</tr>")
    return (
        f'<section id="positions"><h2>Positions: member × round</h2>{note}{legend}'
        f'<div class="scroll"><table class="matrix" id="position-matrix"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div></section>"
    )


def _matrix_cell(
    key: tuple[str, int],
    cells: dict[tuple[str, int], Any],
    failed: dict[tuple[str, int], str],
    tips: dict[tuple[str, int], str],
    colors: dict[str, str],
    scale: tuple[float, float] | None,
) -> str:
    """One member's position in one round: a failure mark, blank (not asked), or the
    position coloured by option (or on `scale`, the (lo, hi) of numeric positions)."""
    if key in failed:
        return f'<td class="cell missing" title="{e(failed[key])}">{FAIL_MARK.get(failed[key], "err")}</td>'
    if key not in cells:
        return '<td class="cell absent"></td>'
    v = cells[key]
    if scale is not None:
        color, label = _numeric_color(float(v), *scale), e(v)
    else:
        color, label = colors.get(str(v), "#57606a"), e(("".join(ch for ch in str(v) if ch.isalnum()) or str(v))[:3])
    return f'<td class="cell" style="background:{color}" title="{e(v)}: {e(tips.get(key, ""))}">{label}</td>'


def _numeric_color(v: float, lo: float, hi: float) -> str:
    from matplotlib import colormaps, colors

    x = 0.5 if hi <= lo else (v - lo) / (hi - lo)
    return str(colors.to_hex(colormaps["viridis"](0.1 + 0.8 * x)))


def _liveness(events: Sequence[AnyEvent], per_round: Sequence[dict[str, Any]]) -> str:
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
    fig = figure(chart, "liveness chart", "Failed turns and abstentions per round.", "liveness-chart") if chart else ""
    table = (
        ""
        if not failed
        else '<div class="scroll"><table id="liveness-table"><thead><tr><th class="num">round</th><th>phase</th>'
        '<th>member</th><th>status</th><th class="num">attempts</th><th>detail</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>{more}"
    )
    return f'<section id="liveness"><h2>Liveness events</h2>{extra}{fig}{table}</section>'


def _disclosures(run: Transcript, seated: Seated, scenario: dict[str, Any]) -> str:
    holders: dict[str, list[str]] = {}
    for m in seated.members:
        for f in m.facts:
            holders.setdefault(f, []).append(m.id)
    if not holders:
        return ""
    texts = {f.get("id"): f.get("text", "") for f in scenario.get("facts", ())}
    rounds = run.complete_rounds
    per: dict[tuple[str, int], int] = {}
    first: dict[str, tuple[int, str]] = {}
    for ev in run.events:
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
        figure(
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


def _integrity_badge(transcript: Transcript) -> str:
    """Whether the transcript proves its integrity (a damaged one is never reported)."""
    cls = "ok" if transcript.integrity == "verified" else "warn"
    return f'<span class="badge {cls}">{e(transcript.describe_integrity())}</span>'


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
    differences = list(diff(published, json.loads(json.dumps(launch.summarize(transcript)))))
    if not differences:
        return '<span class="badge ok">every figure matches the transcript</span>'
    return (
        f'<span class="badge bad">{len(differences)} figures differ from the transcript</span> '
        f'<span class="meta">{e(differences[0])}</span>'
    )
