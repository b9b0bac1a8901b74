"""The protocol-agnostic vocabulary of a scenario: options, population, facts, topology.

These are the parts of a scenario that the engine, views and seating read, whatever
the protocol. Each protocol package adds its own config (a `ProtocolBase` subclass)
and its sim parameters; `assembly.scenario.model` assembles the full `Scenario`
from the protocol registry, so this module never names a protocol.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

MAX_MEMBERS = 20_000
MAX_ROUNDS = 1_000

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]


def _not_bool(value: Any) -> Any:
    # Pydantic reads true as 1; `seed: true` is a mistake, not seed 1.
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not true or false")
    return value


WholeNumber = Annotated[int, BeforeValidator(_not_bool)]
"""An int that refuses booleans (YAML's `true`/`false`)."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ----------------------------------------------------------------------------- content


class OptionSpec(Strict):
    id: Name
    text: Annotated[str, Field(min_length=1, max_length=2000)]
    # How the option scores on each value dimension; a member's valuation of the
    # option is the dot product with its value weights (see docs/sim_model.md).
    attributes: dict[Name, Annotated[float, Field(ge=-10, le=10)]] = Field(default_factory=dict)


class Quota(Strict):
    min: Annotated[int, Field(ge=0)] = 0
    max: Annotated[int, Field(ge=0)] | None = None


class RoleSpec(Strict):
    name: Name
    share: Annotated[float, Field(gt=0.0, le=1.0)]
    description: str = ""
    values: dict[Name, Annotated[float, Field(ge=-10, le=10)]] = Field(default_factory=dict)
    value_noise: Annotated[float, Field(ge=0.0, le=5.0)] = 0.1
    quota: Quota = Field(default_factory=Quota)
    policy: Literal["sim", "llm"] | None = None  # overrides members.policy for this role
    profile: Name | None = None  # model profile for LLM members of this role


class Population(Strict):
    size: Annotated[int, Field(ge=1, le=MAX_MEMBERS)]
    roles: Annotated[list[RoleSpec], Field(min_length=1)]


class Holders(Strict):
    """Who is dealt a fact: `count` members drawn from `roles` (all roles if empty)."""

    roles: list[Name] = Field(default_factory=list)
    count: Annotated[int, Field(ge=1)] | None = None  # None: every member of those roles


class FactSpec(Strict):
    id: Name
    text: Annotated[str, Field(min_length=1, max_length=2000)]
    effects: dict[Name, Annotated[float, Field(ge=-10, le=10)]] = Field(default_factory=dict)
    holders: Literal["all"] | Holders = "all"


class FacilitatorSpec(Strict):
    policy: Literal["sim", "llm"] = "sim"
    profile: Name | None = None
    name: str = "facilitator"


class TopologySpec(Strict):
    """Who hears whom during speech: everyone, table groups, or a small world.

    Facilitator syntheses and candidates are always plenary (heard by all).
    """

    kind: Literal["all_to_all", "tables", "small_world"] = "all_to_all"
    table_size: Annotated[int, Field(ge=2, le=1000)] = 6
    k: Annotated[int, Field(ge=2, le=100)] = 4  # small world: neighbours per member
    p: Unit = 0.1  # small world: rewiring probability


# ----------------------------------------------------------------------------- protocols


class ProtocolBase(Strict):
    max_rounds: Annotated[int, Field(ge=1, le=MAX_ROUNDS)] = 10
    turn_timeout_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 30.0
    round_timeout_s: Annotated[float, Field(gt=0.0, le=86400.0)] = 300.0
    budget_s: Annotated[float, Field(gt=0.0)] | None = None  # whole-run clock budget
    max_cost: Annotated[float, Field(ge=0.0)] | None = None  # USD
    view_window: Annotated[int, Field(ge=1, le=100)] = 3

    if TYPE_CHECKING:
        kind: str = ""  # each protocol's config declares its own `kind` literal (the union's tag)

    # Whether the protocol seats a facilitator (whose LLM seat then needs a profile).
    has_facilitator: ClassVar[bool] = False

    @classmethod
    def prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Fill fields of the whole scenario that this protocol derives (before validation)."""
        return data

    def check(self, scenario: ScenarioBase) -> None:
        """Cross-field checks this protocol needs; raise `cross(path, message)`."""


class GenerationSettings(Strict):
    """Sampling settings for one kind of LLM call."""

    temperature: Annotated[float, Field(ge=0.0, le=2.0)]
    max_tokens: Annotated[int, Field(ge=1, le=100_000)]


# ----------------------------------------------------------------------------- members


class SimLatency(Strict):
    """Seeded per-turn latency. `virtual` accounts it without sleeping (fast, exact);
    `real` sleeps it, to exercise the engine's real cancellation path."""

    mode: Literal["virtual", "real"] = "virtual"
    median_s: Annotated[float, Field(ge=0.0, le=3600)] = 1.0
    sigma: Annotated[float, Field(ge=0.0, le=5.0)] = 0.5  # lognormal shape


class SimFaults(Strict):
    timeout_rate: Unit = 0.0  # the turn hangs past any deadline
    malformed_rate: Unit = 0.0  # each attempt is unusable with this probability
    provider_error_rate: Unit = 0.0  # each attempt fails like a 5xx with this probability


class SimBase(Strict):
    """What every protocol's offline members share: seeded latency and faults.

    Each protocol adds its own parameters (`Protocol.sim_params`); the registry
    composes them into the scenario's `members.sim`."""

    max_retries: Annotated[int, Field(ge=0, le=10)] = 3
    latency: SimLatency = Field(default_factory=SimLatency)
    faults: SimFaults = Field(default_factory=SimFaults)


class ProfileShare(Strict):
    """A share of the LLM members that runs on one model profile (a mixed assembly)."""

    share: Annotated[float, Field(gt=0.0, le=1.0)]
    profile: Name


class LLMParams(Strict):
    """How LLM members are held to the output format (model access lives in configs/models.yaml)."""

    # Re-asks after an unusable answer (invalid JSON, schema or semantic violation);
    # after the last one the member abstains with status `malformed`. The consensus
    # game uses its own `protocol.generation.attempts` instead (the paper's setting).
    max_malformed_retries: Annotated[int, Field(ge=0, le=10)] = 3


class MembersBase(Strict):
    policy: Literal["sim", "llm"] = "sim"
    sim: SimBase = Field(default_factory=lambda: SimBase())
    profile: Name | None = None  # default model profile for LLM members
    # Mixed assemblies: LLM members without a role profile are dealt to these profiles
    # in proportion to `share` (largest remainder, seeded shuffle). Role profiles win.
    assign: Annotated[list[ProfileShare], Field(max_length=50)] = Field(default_factory=list)
    llm: LLMParams = Field(default_factory=LLMParams)


# ----------------------------------------------------------------------------- scenario


class ScenarioBase(Strict):
    """The protocol-agnostic scenario. `assembly.scenario.model.Scenario` narrows
    `protocol` and `members.sim` to the registered protocols' own configs."""

    name: Name
    description: str = ""
    question: Annotated[str, Field(min_length=1, max_length=4000)] = "Reach agreement."
    options: Annotated[list[OptionSpec], Field(max_length=50)] = Field(default_factory=list)
    population: Population
    facts: list[FactSpec] = Field(default_factory=list, max_length=1000)
    facilitator: FacilitatorSpec = Field(default_factory=FacilitatorSpec)
    topology: TopologySpec = Field(default_factory=TopologySpec)
    protocol: ProtocolBase = Field(default_factory=lambda: ProtocolBase())
    members: MembersBase = Field(default_factory=lambda: MembersBase())
    seed: Annotated[WholeNumber, Field(ge=0, le=2**63 - 1)] = 0

    @model_validator(mode="after")
    def _cross_references(self) -> ScenarioBase:
        option_ids = [o.id for o in self.options]
        unique("options", option_ids)
        role_names = [r.name for r in self.population.roles]
        unique("population.roles", role_names)
        unique("facts", [f.id for f in self.facts])
        for i, fact in enumerate(self.facts):
            for opt in fact.effects:
                known(f"facts.{i}.effects", opt, option_ids, "option")
            if isinstance(fact.holders, Holders):
                for role in fact.holders.roles:
                    known(f"facts.{i}.holders.roles", role, role_names, "role")
        mins = sum(r.quota.min for r in self.population.roles)
        if mins > self.population.size:
            raise cross(
                "population.roles",
                f"quota minimums add up to {mins}, more than population.size = {self.population.size}",
            )
        for i, r in enumerate(self.population.roles):
            if r.quota.max is not None and r.quota.max < r.quota.min:
                raise cross(f"population.roles.{i}.quota", "max is below min")
        if (
            sum(r.quota.max if r.quota.max is not None else self.population.size for r in self.population.roles)
            < self.population.size
        ):
            raise cross("population.roles", "quota maximums cannot seat population.size members")
        self.protocol.check(self)
        _check_profiles(self)
        return self


class CrossRefError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


def cross(path: str, message: str) -> CrossRefError:
    return CrossRefError(path, message)


def _check_profiles(sc: ScenarioBase) -> None:
    """Every LLM seat must be able to name a model profile.

    The CLI fills profiles from --model; a file that asks for LLM members without
    saying which model cannot run. Profile names are resolved against the models
    file only when members are built (a scenario does not depend on one machine's
    configs/models.yaml)."""
    members = sc.members
    fallback = bool(members.profile or members.assign)
    for i, role in enumerate(sc.population.roles):
        if (role.policy or members.policy) == "llm" and not (role.profile or fallback):
            if role.policy != "llm":
                raise cross("members.profile", "llm members need a model profile (or pass --model)")
            raise cross(
                f"population.roles.{i}.profile",
                f"role {role.name!r} has llm members but no model "
                "profile (set its profile, members.profile, or pass --model)",
            )
    fac = sc.facilitator
    if sc.protocol.has_facilitator and fac.policy == "llm" and not (fac.profile or members.profile):
        raise cross(
            "facilitator.profile", "an llm facilitator needs a model profile (or members.profile, or pass --model)"
        )


def unique(path: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise cross(path, f"duplicate id {i!r}")
        seen.add(i)


def known(path: str, name: str, known: list[str], what: str) -> None:
    if name not in known:
        hint = difflib.get_close_matches(name, known, n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else f" (known: {', '.join(known)})"
        raise cross(path, f"unknown {what} {name!r}{extra}")


def resolved(scenario: ScenarioBase) -> dict[str, Any]:
    """The scenario with every default filled in, as recorded in the transcript."""
    return scenario.model_dump(mode="json")


def run_key(scenario: ScenarioBase) -> str:
    """Hash of the resolved scenario (seed included): the identity of a run."""
    blob = json.dumps(resolved(scenario), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
