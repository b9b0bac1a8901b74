"""Every figure `assembly` reports, defined once.

The terminal's legend (`inspection.console`), the HTML report (column tooltips)
and the CSV column docs (docs/sweeps.md) all take their words from here, and
`docs/figures.md` is this table written out (`python -m assembly.glossary >
docs/figures.md`; a test checks the file is current). A figure that is reported but
missing here fails `tests/test_glossary.py`, so a new figure cannot ship undefined.

Each entry: the name as it appears in summary.json, results.csv, summary.csv and
the pandas tables; where it appears; a short label (terminal legends, chart
axes); and its definition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str
    where: str
    short: str  # column header in the terminal
    meaning: str
    label: str = ""  # a few words for legends and axes; default: the name in words

    @property
    def words(self) -> str:
        return self.label or self.name.replace("_", " ")


# Where a figure appears.
ROUND = "per round"  # summary.json per_round, load_rounds, the terminal's round table
RUN = "per run"  # summary.json, results.csv, load_runs
CELL = "per cell"  # summary.csv (one row per grid cell)
SWEEP_FIGURE = "sweep figure"  # figures/*.png

_ENTRIES = (
    # --- a run's identity
    Figure("run", RUN, "run", "The run folder's name."),
    Figure("run_key", RUN, "run key", "Hash of the resolved scenario, seed included: the run's identity."),
    Figure("scenario", RUN, "scenario", "The scenario's `name`."),
    Figure("protocol", RUN, "protocol", "The protocol (`assembly` or `consensus_game`)."),
    Figure("seed", RUN, "seed", "The run's seed."),
    Figure("round", ROUND, "rd", "The round (from 1)."),
    # --- a run's outcome
    Figure("outcome", RUN, "outcome", "`valid_decision`, `invalid_decision` or `no_decision` (exactly one per run)."),
    Figure(
        "cause",
        RUN,
        "cause",
        "Why a run ended without a decision: `round_limit`, `quorum_not_met`, `stalled` or `budget` "
        "(the reason says whether the time budget, `budget_s`, or the cost budget, `max_cost`, ran out). "
        "Empty for decisions.",
    ),
    Figure("decision", RUN, "decision", "The option (assembly) or value (consensus game) decided; empty without one."),
    Figure("reason", RUN, "reason", "The run's end in words, with the numbers that decided it."),
    Figure(
        "status",
        RUN,
        "status",
        "`complete`, `interrupted` or `incomplete` (no `run_ended` event yet); `failed` in results.csv "
        "for a run that raised.",
    ),
    Figure("rounds", RUN, "rounds", "Rounds completed."),
    Figure("members", RUN, "members", "Seated members (group size), the facilitator not included."),
    # --- liveness, per round and per run
    Figure(
        "throttled",
        ROUND,
        "thr",
        "Turns still held by the tool when the round's time ran out: queued behind its own limits (a profile's "
        "`max_concurrent`/`rpm`), or with the member's deadline moved out by the tool's busy event loop "
        "(`timing.loop_lag_s`): the tool's capacity, never a member's liveness loss, so neither a timeout nor an "
        "abstention. A member's deadline starts only when its request is admitted, and the loop's lag is not "
        "charged to it.",
        label="throttled turns",
    ),
    Figure(
        "turn_timeouts",
        f"{ROUND}, {RUN}",
        "t/o",
        "Turns cancelled at their deadline (`turn_timeout_s`, capped by what is left of `round_timeout_s`).",
        label="timeouts",
    ),
    Figure("malformed", f"{ROUND}, {RUN}", "malf", "Turns whose answer never validated, after the allowed re-asks."),
    Figure(
        "provider_errors",
        f"{ROUND}, {RUN}",
        "err",
        "Turns whose model calls failed (429, 5xx, connection) after the profile's retries.",
        label="provider errors",
    ),
    Figure(
        "abstentions",
        f"{ROUND}, {RUN}",
        "abst",
        "Turns that contributed no position or vote: every failed turn (timeout, malformed, provider error) "
        "plus explicit abstentions (a ballot's `abstain`, a stop vote of `abstain`).",
    ),
    Figure(
        "retries",
        f"{ROUND}, {RUN}",
        "retries",
        "Extra attempts within turns: re-asks after malformed answers and retried provider errors. For `sim` "
        "members these are the seeded simulated faults of `members.sim.faults` (`malformed_rate`, "
        "`provider_error_rate`); a turn that succeeds on a retry counts here and not as a failure.",
    ),
    # --- model usage
    Figure(
        "calls",
        RUN,
        "calls",
        "Model calls (HTTP attempts) by LLM members, cached answers included; 0 for `sim` members.",
    ),
    Figure("cache_hits", RUN, "cached", "Calls answered from the response cache (no model was called)."),
    Figure("prompt_tokens", f"{ROUND}, {RUN}", "in tok", "Prompt tokens of all calls."),
    Figure("completion_tokens", f"{ROUND}, {RUN}", "out tok", "Completion tokens of all calls."),
    Figure("tokens", RUN, "tokens", "`prompt_tokens` + `completion_tokens`."),
    Figure(
        "cost_usd",
        f"{ROUND}, {RUN}",
        "cost",
        "Cost of the calls in USD: the profile's price, else litellm's price map, else 0 (a model with no "
        "known price, such as a local server, costs nothing).",
    ),
    Figure("wall_s", RUN, "wall s", "Measured duration of the run's rounds, seconds."),
    Figure(
        "clock_s",
        RUN,
        "clock s",
        "Accounted duration: simulated seconds for `sim` members in virtual time, measured otherwise.",
    ),
    # --- the assembly's per-round figures
    Figure("speakers", ROUND, "spoke", "Members whose speech this round was valid."),
    Figure(
        "dispersion",
        ROUND,
        "disp",
        "Dispersion of support: for each option, the population standard deviation of the speakers' "
        "support scores (0 to 1); then the mean over options. 0 = everyone scores alike; 0.5 = maximally split.",
        label="dispersion of support",
    ),
    Figure(
        "modal_share",
        ROUND,
        "modal",
        "Share of speakers whose favoured option is the most common one.",
        label="share on the modal position",
    ),
    Figure(
        "idea_similarity",
        ROUND,
        "idea",
        "Mean pairwise TF-IDF cosine similarity of the round's speeches (idea convergence, beside the "
        "action convergence of `dispersion`).",
        label="TF-IDF similarity of speeches",
    ),
    Figure(
        "disclosures",
        ROUND,
        "discl",
        "Disclosure events this round: one per member per private fact disclosed, so a fact two members "
        "disclose counts twice. Distinct facts over the run are `facts_disclosed`.",
        label="disclosure events",
    ),
    Figure("voted", ROUND, "voted", "Whether the round held a vote (from `first_vote_round`)."),
    Figure(
        "ballots_counted", ROUND, "votes", "Ballots counted: valid, non-abstaining ballots.", label="ballots counted"
    ),
    Figure("quorum_met", ROUND, "quorum", "Whether counted ballots reached `quorum` (a fraction of seated members)."),
    Figure(
        "leading", ROUND, "leading", "The candidate with the most support under the decision rule (empty on a tie)."
    ),
    Figure(
        "support",
        ROUND,
        "supp",
        "The leading candidate's share of support under the rule's base (`cast` or `seated`).",
        label="leading support",
    ),
    # --- the assembly's per-run figures
    Figure("facts_dealt", RUN, "facts dealt", "Distinct private facts dealt to members."),
    Figure(
        "facts_disclosed",
        RUN,
        "facts disclosed",
        "Distinct private facts disclosed by at least one member during the run.",
        label="distinct facts disclosed",
    ),
    Figure("unshared_facts", RUN, "unshared facts", "Facts dealt to exactly one member (the hidden-profile facts)."),
    Figure("unshared_facts_disclosed", RUN, "unshared disclosed", "Unshared facts their one holder disclosed."),
    Figure(
        "dissent_share",
        RUN,
        "dissent",
        "Share of seated members whose last stated position (last valid speech) differs from the decision; "
        "members who never spoke count as not dissenting. Only for runs that decided.",
        label="share dissenting from the decision",
    ),
    Figure(
        "fidelity",
        ROUND,
        "fid",
        "Representation fidelity: mean over speakers of the Spearman correlation between a member's stated "
        "support scores and its assigned full-information utilities (README, Plural welfare).",
        label="Spearman of stated vs assigned",
    ),
    Figure(
        "welfare_<way>_<figure>",
        RUN,
        "welfare",
        "A run's welfare figures flattened (results.csv): for each way of choosing (`assembly`, `utilitarian`, "
        "`borda`, `maximin`, `plurality_round1`), its `option` and figures (`utilitarian`, `nash`, `egalitarian`, "
        "`worst_role`, `condorcet_winner`, `in_veto_core`, per-role utility and regret); per cell (summary.csv) "
        "their means with 95% t intervals, `decided_*`, rates, and `welfare_gap_<baseline>_<figure>_*`, the "
        "paired difference decision − baseline with seed-clustered intervals (docs/sweeps.md).",
    ),
    # --- the consensus game
    Figure("proposals", ROUND, "props", "Valid proposals (integers in range) this round."),
    Figure(
        "stop_votes",
        ROUND,
        "stops",
        "Stop votes this round; the game stops at `stop_threshold` (2/3) of all agents.",
        label="stop votes",
    ),
    Figure(
        "honest_mean",
        ROUND,
        "h.mean",
        "Mean of honest agents' current values after this round.",
        label="honest mean value",
    ),
    Figure("honest_median", ROUND, "h.median", "Median of honest agents' current values."),
    Figure(
        "honest_sd",
        ROUND,
        "h.sd",
        "Sample standard deviation (n - 1) of honest agents' current values, as in the paper's code.",
        label="honest sd",
    ),
    Figure(
        "honest_modal_share",
        ROUND,
        "h.modal",
        "Share of honest agents holding the most common value.",
        label="honest share on the modal value",
    ),
    Figure(
        "honest_unanimous_initial",
        ROUND,
        "h.unan",
        "Whether all honest agents hold one value that is an honest initial value.",
    ),
    Figure("honest_unknown", ROUND, "h.unknown", "Honest agents with no value yet (no valid proposal so far)."),
    Figure("honest", RUN, "honest", "Honest agents seated."),
    Figure("byzantine", RUN, "byzantine", "Byzantine agents seated."),
    Figure(
        "awareness",
        RUN,
        "awareness",
        "What honest agents are told about Byzantine agents: `may_exist` or `none_exist`.",
    ),
    Figure(
        "sub_reason", RUN, "sub reason", "`valid`, `honest_disagreed`, `non_initial_value` (stopped), or `timeout`."
    ),
    Figure(
        "first_consensus_round",
        RUN,
        "1st consensus",
        "First round after which all honest agents held one honest initial value.",
    ),
    Figure("rounds_to_termination", RUN, "rounds to stop", "Rounds until the stop vote passed; empty for timeouts."),
    Figure("honest_agree_at_end", RUN, "agree at end", "Whether all honest agents held one value at the end."),
    Figure("final_value", RUN, "final value", "That value, when they agreed."),
    Figure("final_is_initial", RUN, "final initial", "Whether the agreed value is one of the honest initial values."),
    Figure("initial_median", RUN, "initial median", "Median of honest initial values."),
    Figure(
        "final_is_median", RUN, "final median", "Whether the agreed value is a median of the honest initial values."
    ),
    Figure("final_distance_from_median", RUN, "dist. median", "|agreed value - median of honest initial values|."),
    # --- sweep tables
    Figure(
        "cell",
        f"{RUN}, {CELL}",
        "cell",
        "The grid cell: its grid factors and values, e.g. `members=8,protocol.awareness=none_exist`.",
    ),
    Figure("n", CELL, "n", "Completed runs in the cell; every rate's denominator."),
    Figure("failed", CELL, "failed", "Runs that raised (recorded with their error, left out of every rate)."),
    Figure(
        "decided", CELL, "decided", "Runs that reached a decision (valid or not); the sample of rounds to decision."
    ),
    Figure(
        "<outcome>_k, _rate, _lo, _hi",
        CELL,
        "rate",
        "For each outcome, for deciding at all (`decided_...`), and each no-decision cause "
        "(`cause_<cause>_...`): the count, the share of `n`, and "
        "its 95% Wilson score interval (scipy `binomtest(...).proportion_ci(method='wilson')`).",
    ),
    Figure(
        "rounds_mean, _lo, _hi",
        CELL,
        "rounds mean",
        "Mean rounds to decision over decided runs, with a 95% Student t interval.",
    ),
    Figure(
        "rounds_median, _lo, _hi",
        CELL,
        "rounds median",
        "Median rounds to decision over decided runs, with the distribution-free order-statistic interval "
        "(empty below six runs).",
    ),
    Figure(
        "<figure>_mean, _lo, _hi",
        CELL,
        "mean",
        "Mean per completed run of `tokens`, `cost_usd`, `turn_timeouts`, `abstentions` and `wall_s`, with a "
        "95% Student t interval.",
    ),
    Figure("cost_usd_total", CELL, "spend", "Total spend of the cell's runs."),
    Figure("path", RUN, "path", "The run folder (load_runs and the other tables)."),
    Figure(
        "sweep", RUN, "sweep", "The sweep that lists the run (from its `sweep.json`), empty for a run outside a sweep."
    ),
    Figure("error", RUN, "error", "For a failed run, the exception (the traceback is in the run folder's error.txt)."),
    # --- sweep figures, in the order the report shows them
    Figure(
        "outcome_rates",
        SWEEP_FIGURE,
        "outcome rates",
        "Rate of each outcome against the x axis (group size when gridded), 95% Wilson intervals.",
    ),
    Figure(
        "reference_comparison",
        SWEEP_FIGURE,
        "vs the paper",
        "This sweep's outcome rates beside a paper's reported ones (`reference:`).",
    ),
    Figure(
        "liveness",
        SWEEP_FIGURE,
        "liveness loss",
        "Left: share of runs ending without a decision, per cause, 95% Wilson intervals. Right: failed turns "
        "and abstentions per member-round. Panels with nothing to show are left out.",
    ),
    Figure(
        "convergence",
        SWEEP_FIGURE,
        "convergence by round",
        "Mean per-round `dispersion` (assembly) or `honest_sd` (consensus game) for each cell, 95% t bands, over "
        "the runs still going in that round.",
    ),
    Figure(
        "rounds_to_decision",
        SWEEP_FIGURE,
        "rounds to decision",
        "Every decided run, with mean (t interval) and median (order-statistic interval).",
    ),
    Figure(
        "liveness_fairness",
        SWEEP_FIGURE,
        "liveness–fairness frontier",
        "One point per cell: x the share of runs that decide (95% Wilson), y the worst role's utility (left) and "
        "the mean utility (right) under the decision, over deciding runs (95% t); the baselines as lines. "
        "Drawn for protocols with welfare (README, Plural welfare).",
    ),
    Figure(
        "tokens_cost",
        SWEEP_FIGURE,
        "tokens and cost",
        "Mean tokens and cost per run with t intervals; drawn only for sweeps that called a model, and the "
        "cost panel only when a call was priced.",
    ),
)

GLOSSARY: dict[str, Figure] = {f.name: f for f in _ENTRIES}
DOC = "docs/figures.md"

# Column families of summary.csv, defined by one entry each.
_FAMILIES = (
    (
        re.compile(r"^(valid_decision|invalid_decision|no_decision|decided|cause_[a-z_]+?)_(k|rate|lo|hi)$"),
        "<outcome>_k, _rate, _lo, _hi",
    ),
    (re.compile(r"^rounds_mean(_lo|_hi)?$"), "rounds_mean, _lo, _hi"),
    (re.compile(r"^rounds_median(_lo|_hi)?$"), "rounds_median, _lo, _hi"),
    (re.compile(r"^welfare_\w+$"), "welfare_<way>_<figure>"),
    (re.compile(r"^[a-z_]+_mean(_lo|_hi)?$"), "<figure>_mean, _lo, _hi"),
)


def entry(name: str) -> Figure | None:
    """The glossary entry defining a figure or column name (families included)."""
    if name in GLOSSARY:
        return GLOSSARY[name]
    for pattern, family in _FAMILIES:
        if pattern.match(name):
            return GLOSSARY[family]
    return None


def short(name: str) -> str:
    """The short label of a figure (its name with spaces, if undefined)."""
    found = entry(name)
    return found.short if found else name.replace("_", " ")


def words(name: str) -> str:
    """A few words naming a figure, for legends."""
    found = entry(name)
    return found.words if found else name.replace("_", " ")


def meaning(name: str) -> str:
    found = entry(name)
    return found.meaning if found else ""


def render() -> str:
    """docs/figures.md."""
    lines = [
        "# Figures",
        "",
        "Every figure `assembly` reports, defined once. The terminal legend, the HTML report and the CSV",
        "columns (summary.json, results.csv, summary.csv, and the pandas tables of `assembly.load_*`) use",
        "these names. Generated from `assembly/glossary.py` (`python -m assembly.glossary > docs/figures.md`).",
        "",
        "| name | where | short | meaning |",
        "|---|---|---|---|",
    ]
    for f in _ENTRIES:
        lines.append(f"| `{f.name}` | {f.where} | {f.short} | {f.meaning.replace('|', chr(92) + '|')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
