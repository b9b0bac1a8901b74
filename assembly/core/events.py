"""Typed transcript events.

A run is the sequence of these events and nothing else: the engine writes them, the
protocols and view builder fold over them, and every metric is computed from them.
Whatever depends on wall-clock time lives under a `timing` field, so two runs of the
same scenario and seed can be compared byte for byte after dropping it
(see `transcript.canonical`).

Bump SCHEMA_VERSION when an event changes shape; `transcript.read_transcript`
accepts every version listed in READABLE_VERSIONS and names the one it needs
otherwise. Version 2 added each line's `seq` and `chain` (written by the writer, not
part of any event: see `integrity`) and dropped `round_ended.figures`, which was
always empty; both version 1 forms still read.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 2
READABLE_VERSIONS = frozenset({1, 2})
# The first version whose lines carry `seq` and `chain`.
CHAINED_SINCE = 2

# `timeout`: the member's own deadline passed (its model or server was too slow: liveness
# loss). `throttled`: the round's time ran out while the member waited for the tool's
# capacity (a profile's max_concurrent/rpm): a limit of the tool, not of the member.
TurnStatus = Literal["ok", "timeout", "throttled", "malformed", "provider_error", "skipped"]
Outcome = Literal["valid_decision", "invalid_decision", "no_decision"]
Cause = Literal["round_limit", "quorum_not_met", "stalled", "budget"]


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Attempt(BaseModel):
    """One try at one member turn: a model call, or a sim draw standing in for one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempt: int
    outcome: Literal["ok", "malformed", "provider_error"]
    error_kind: str | None = None
    detail: str | None = None
    model: str = "sim"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cache_hit: bool = False
    timing: dict[str, float] | None = None


class SeatedMember(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    role: str
    policy: str
    profile: str | None = None
    values: dict[str, float] = Field(default_factory=dict)
    facts: list[str] = Field(default_factory=list)
    # Protocol-specific private state dealt at seating (e.g. the consensus game's
    # initial value and whether the agent is Byzantine). Never shown to others.
    private: dict[str, Any] = Field(default_factory=dict)


class RunStarted(Event):
    type: Literal["run_started"] = "run_started"
    schema_version: int = SCHEMA_VERSION
    run_id: str
    run_key: str
    scenario: dict[str, Any]
    seed: int
    protocol: str
    versions: dict[str, str]
    # The model profiles LLM seats use, by name, as resolved when the run started
    # (never keys: a profile only names the environment variable holding one), so a
    # rerun can rebuild the same clients. None for runs without LLM members.
    models: dict[str, Any] | None = None
    # Set when this run continues another one (fork or resume): where it came from.
    parent: dict[str, Any] | None = None
    # Where the run came from: git commit, command line (secrets scrubbed), host, CPU
    # count, Python version (`core.provenance`). Machine-dependent, so ignored when
    # transcripts are compared, like `timing`.
    provenance: dict[str, Any] | None = None
    timing: dict[str, Any] | None = None


class Seated(Event):
    type: Literal["seated"] = "seated"
    members: list[SeatedMember]
    facilitator: SeatedMember | None = None
    # The hearing graph as distinct audiences (closed neighbourhoods, as indices into
    # `members`) and each member's audience; recorded so replay never has to rebuild
    # the topology from the seed, and compact for all-to-all (one audience).
    audiences: list[list[int]]
    audience_of: list[int]

    @property
    def seats(self) -> list[SeatedMember]:
        """Every seat: the members, then the facilitator if there is one."""
        return [*self.members, *([self.facilitator] if self.facilitator else [])]


class RoundStarted(Event):
    type: Literal["round_started"] = "round_started"
    round: int
    framing: str = ""


class Turn(Event):
    """The result of asking one member for one action in one phase."""

    type: Literal["turn"] = "turn"
    round: int
    phase: str
    member: str
    status: TurnStatus
    action: dict[str, Any] | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    detail: str | None = None
    # Simulated latency (sim members in virtual time): deterministic, so not timing.
    # Measured latency of real calls is `timing.wall_s`.
    latency_s: float | None = None
    timing: dict[str, float] | None = None


class Disclosure(Event):
    type: Literal["disclosure"] = "disclosure"
    round: int
    member: str
    fact: str
    audience: int


class Tally(Event):
    """A counted vote (assembly ballots, or consensus-game stop votes)."""

    type: Literal["tally"] = "tally"
    round: int
    rule: str
    candidates: list[str]
    counted: int
    seated: int
    quorum_met: bool
    decided: bool
    winner: str | None = None
    leading: str | None = None
    leading_support: float = 0.0
    support: dict[str, float] = Field(default_factory=dict)
    detail: str = ""


class RoundEnded(Event):
    type: Literal["round_ended"] = "round_ended"
    round: int
    stop: bool = False
    timing: dict[str, float] | None = None

    @model_validator(mode="before")
    @classmethod
    def _without_schema_1_figures(cls, data: Any) -> Any:
        # Schema 1 wrote `"figures":{}` here, never filled: figures live in summary.json.
        if isinstance(data, dict) and "figures" in data:
            return {k: v for k, v in data.items() if k != "figures"}
        return data


class RunEnded(Event):
    type: Literal["run_ended"] = "run_ended"
    outcome: Outcome
    cause: Cause | None = None
    decision: Any = None
    reason: str = ""
    detail: dict[str, Any] = Field(default_factory=dict)
    timing: dict[str, float] | None = None


class RunInterrupted(Event):
    type: Literal["run_interrupted"] = "run_interrupted"
    round: int
    reason: str
    timing: dict[str, float] | None = None


AnyEvent = Annotated[
    RunStarted | Seated | RoundStarted | Turn | Disclosure | Tally | RoundEnded | RunEnded | RunInterrupted,
    Field(discriminator="type"),
]
