"""The scenario file format: pydantic schema, YAML loading, overrides, clear errors.

A scenario is validated completely before anything runs. Every error names the file,
the dotted field path and, where the YAML has it, the line: researchers edit these
files by hand and should never have to read a traceback to find a typo.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from assembly.errors import ScenarioError
from assembly.rules import DecisionRuleSpec

MAX_FILE_BYTES = 5 * 1024 * 1024  # a scenario is a few KB; anything this big is a mistake
MAX_YAML_NODES = 200_000  # bounds alias bombs ("billion laughs") before they expand
MAX_MEMBERS = 20_000
MAX_ROUNDS = 1_000

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]


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


class StallSpec(Strict):
    """Stop as `stalled` when neither dispersion nor leading support moved for `rounds` rounds."""

    rounds: Annotated[int, Field(ge=1, le=100)] = 3
    tolerance: Annotated[float, Field(ge=0.0, le=1.0)] = 0.01


class ValiditySpec(Strict):
    """When a decision counts as valid: `any` decision, or one of `options`."""

    kind: Literal["any", "option_in"] = "any"
    options: list[Name] = Field(default_factory=list)


class ProtocolBase(Strict):
    max_rounds: Annotated[int, Field(ge=1, le=MAX_ROUNDS)] = 10
    turn_timeout_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 30.0
    round_timeout_s: Annotated[float, Field(gt=0.0, le=86400.0)] = 300.0
    budget_s: Annotated[float, Field(gt=0.0)] | None = None  # whole-run clock budget
    max_cost: Annotated[float, Field(ge=0.0)] | None = None  # USD
    view_window: Annotated[int, Field(ge=1, le=100)] = 3


class AssemblyProtocol(ProtocolBase):
    kind: Literal["assembly"] = "assembly"
    quorum: Unit = 0.5
    decision_rule: DecisionRuleSpec = Field(default_factory=lambda: _default_rule())
    stall: StallSpec | None = None
    validity: ValiditySpec = Field(default_factory=ValiditySpec)
    first_vote_round: Annotated[int, Field(ge=1)] = 2
    candidates: Annotated[int, Field(ge=1, le=20)] = 3


def _default_rule() -> Any:
    from assembly.rules import MajorityRule

    return MajorityRule()


class GenerationSettings(Strict):
    """Sampling settings for one kind of LLM call."""

    temperature: Annotated[float, Field(ge=0.0, le=2.0)]
    max_tokens: Annotated[int, Field(ge=1, le=100_000)]


class ConsensusGeneration(Strict):
    """LLM generation defaults of arXiv:2603.01213 (its authors' LLM_CONFIG), keyed by phase.

    The engine passes the phase's settings to members in `Request.params["generation"]`."""

    propose: GenerationSettings = Field(default_factory=lambda: GenerationSettings(temperature=0.5, max_tokens=300))
    stop_vote: GenerationSettings = Field(default_factory=lambda: GenerationSettings(temperature=0.3, max_tokens=200))
    attempts: Annotated[int, Field(ge=1, le=10)] = 3  # tries at valid JSON per call


class ConsensusGameProtocol(ProtocolBase):
    """The scalar consensus game of arXiv:2603.01213 (docs/consensus_game.md).

    `honest`, when set, fixes the group size: population.size = honest + byzantine
    (leave population.size out, or set it to null, e.g. `--set members=null`).
    """

    kind: Literal["consensus_game"] = "consensus_game"
    max_rounds: Annotated[int, Field(ge=1, le=MAX_ROUNDS)] = 50
    byzantine: Annotated[int, Field(ge=0, le=MAX_MEMBERS)] = 0
    honest: Annotated[int, Field(ge=1, le=MAX_MEMBERS)] | None = None
    awareness: Literal["may_exist", "none_exist"] = "may_exist"
    value_min: Annotated[int, Field(ge=-1_000_000, le=1_000_000)] = 0
    value_max: Annotated[int, Field(ge=-1_000_000, le=1_000_000)] = 50
    stop_threshold: str = "2/3"  # share of ALL agents voting stop that ends the game (exact fraction)
    history_window: Annotated[int, Field(ge=1, le=50)] = 3  # rounds of history an LLM agent is shown
    notes_window: Annotated[int, Field(ge=0, le=50)] = 5  # own strategy notes an LLM agent is shown
    justification_chars: Annotated[int, Field(ge=1, le=2000)] = 200  # others' justifications are cut here
    # Own actions kept in a view: proposal + stop vote per round, so 10 keeps 5 rounds of notes.
    view_window: Annotated[int, Field(ge=1, le=100)] = 10
    generation: ConsensusGeneration = Field(default_factory=ConsensusGeneration)

    @model_validator(mode="before")
    @classmethod
    def _threshold_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("stop_threshold"), int | float):
            data = {**data, "stop_threshold": str(data["stop_threshold"])}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ConsensusGameProtocol:
        try:
            threshold = Fraction(self.stop_threshold.strip())
        except (ValueError, ZeroDivisionError):
            raise _cross(
                "protocol.stop_threshold", f"{self.stop_threshold!r} is not a fraction such as 2/3 or 0.75"
            ) from None
        if not 0 < threshold <= 1:
            raise _cross("protocol.stop_threshold", "must be above 0 and at most 1")
        if self.value_max <= self.value_min:
            raise _cross("protocol.value_max", f"must be above value_min = {self.value_min}")
        if self.view_window < max(self.history_window + 1, 2 * self.notes_window):
            raise _cross(
                "protocol.view_window",
                "must be at least history_window + 1 and 2 x notes_window "
                "(a view keeps a proposal and a stop vote per round)",
            )
        return self

    @property
    def threshold(self) -> Fraction:
        return Fraction(self.stop_threshold.strip())


ProtocolSpec = Annotated[AssemblyProtocol | ConsensusGameProtocol, Field(discriminator="kind")]


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


class ConsensusSimParams(Strict):
    """Offline agents of the consensus game (docs/consensus_game.md)."""

    aggregate: Literal["median", "trimmed_mean"] = "median"
    # Share of values dropped at each end before aggregating; None: 1/3 when Byzantine agents
    # may exist (the largest tolerated fraction), 0 when all agents are said to be honest.
    trim: Annotated[float, Field(ge=0.0, lt=0.5)] | None = None
    inertia: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.5  # share of the gap to the target NOT closed
    noise_sd: Annotated[float, Field(ge=0.0, le=100.0)] = 0.0  # Gaussian noise on each step, before rounding
    byzantine_strategy: Literal["zigzag"] = "zigzag"


class SimParams(Strict):
    """Parameters of the opinion-dynamics baseline (docs/sim_model.md)."""

    susceptibility: Unit = 0.6  # Friedkin–Johnsen lambda: weight on others vs own anchor
    confidence_bound: Annotated[float, Field(gt=0.0)] | None = 0.35  # Hegselmann–Krause epsilon
    valuation_scale: Annotated[float, Field(gt=0.0, le=100.0)] = 3.0  # logistic slope: valuation -> support
    speech_noise: Annotated[float, Field(ge=0.0, le=1.0)] = 0.02
    disclosure_rate: Unit = 0.3  # Stasser–Titus: per-round chance to mention each private fact
    shared_bias: Annotated[float, Field(ge=1.0, le=100.0)] = 2.0  # boost for facts already in the record
    abstain_below: Unit = 0.0  # abstain when no candidate has at least this support
    approval_threshold: Unit = 0.6
    max_retries: Annotated[int, Field(ge=0, le=10)] = 3
    latency: SimLatency = Field(default_factory=SimLatency)
    faults: SimFaults = Field(default_factory=SimFaults)
    consensus: ConsensusSimParams = Field(default_factory=ConsensusSimParams)


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


class MembersSpec(Strict):
    policy: Literal["sim", "llm"] = "sim"
    sim: SimParams = Field(default_factory=SimParams)
    profile: Name | None = None  # default model profile for LLM members
    # Mixed assemblies: LLM members without a role profile are dealt to these profiles
    # in proportion to `share` (largest remainder, seeded shuffle). Role profiles win.
    assign: Annotated[list[ProfileShare], Field(max_length=50)] = Field(default_factory=list)
    llm: LLMParams = Field(default_factory=LLMParams)


# ----------------------------------------------------------------------------- scenario


class Scenario(Strict):
    name: Name
    description: str = ""
    question: Annotated[str, Field(min_length=1, max_length=4000)] = "Reach agreement."
    options: Annotated[list[OptionSpec], Field(max_length=50)] = Field(default_factory=list)
    population: Population
    facts: list[FactSpec] = Field(default_factory=list, max_length=1000)
    facilitator: FacilitatorSpec = Field(default_factory=FacilitatorSpec)
    topology: TopologySpec = Field(default_factory=TopologySpec)
    protocol: ProtocolSpec = Field(default_factory=AssemblyProtocol)
    members: MembersSpec = Field(default_factory=MembersSpec)
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0

    @model_validator(mode="before")
    @classmethod
    def _derive_size(cls, data: Any) -> Any:
        return _consensus_size(data)

    @model_validator(mode="after")
    def _cross_references(self) -> Scenario:
        option_ids = [o.id for o in self.options]
        _unique("options", option_ids)
        role_names = [r.name for r in self.population.roles]
        _unique("population.roles", role_names)
        _unique("facts", [f.id for f in self.facts])
        for i, fact in enumerate(self.facts):
            for opt in fact.effects:
                _known(f"facts.{i}.effects", opt, option_ids, "option")
            if isinstance(fact.holders, Holders):
                for role in fact.holders.roles:
                    _known(f"facts.{i}.holders.roles", role, role_names, "role")
        mins = sum(r.quota.min for r in self.population.roles)
        if mins > self.population.size:
            raise _cross(
                "population.roles",
                f"quota minimums add up to {mins}, more than population.size = {self.population.size}",
            )
        for i, r in enumerate(self.population.roles):
            if r.quota.max is not None and r.quota.max < r.quota.min:
                raise _cross(f"population.roles.{i}.quota", "max is below min")
        if (
            sum(r.quota.max if r.quota.max is not None else self.population.size for r in self.population.roles)
            < self.population.size
        ):
            raise _cross("population.roles", "quota maximums cannot seat population.size members")
        proto = self.protocol
        if isinstance(proto, AssemblyProtocol):
            if len(option_ids) < 2:
                raise _cross("options", "the assembly protocol needs at least two options")
            for opt in proto.validity.options:
                _known("protocol.validity.options", opt, option_ids, "option")
            if proto.validity.kind == "option_in" and not proto.validity.options:
                raise _cross("protocol.validity.options", "option_in needs at least one option")
        if isinstance(proto, ConsensusGameProtocol):
            _check_consensus(proto, self.population.size, self.topology.kind)
        _check_profiles(self)
        return self

    @property
    def member_count(self) -> int:
        return self.population.size


class _CrossRefError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


def _cross(path: str, message: str) -> _CrossRefError:
    return _CrossRefError(path, message)


def _check_profiles(sc: Scenario) -> None:
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
                raise _cross("members.profile", "llm members need a model profile (or pass --model)")
            raise _cross(
                f"population.roles.{i}.profile",
                f"role {role.name!r} has llm members but no model "
                "profile (set its profile, members.profile, or pass --model)",
            )
    fac = sc.facilitator
    if isinstance(sc.protocol, AssemblyProtocol) and fac.policy == "llm" and not (fac.profile or members.profile):
        raise _cross(
            "facilitator.profile", "an llm facilitator needs a model profile (or members.profile, or pass --model)"
        )


def _consensus_size(data: Any) -> Any:
    """Fill population.size from protocol.honest + protocol.byzantine when it is left out."""
    if not isinstance(data, dict):
        return data
    proto, pop = data.get("protocol"), data.get("population")
    if not (isinstance(proto, dict) and proto.get("kind") == "consensus_game" and isinstance(pop, dict)):
        return data
    honest, byzantine = proto.get("honest"), proto.get("byzantine", 0)
    if isinstance(honest, int) and isinstance(byzantine, int) and pop.get("size") is None:
        data = {**data, "population": {**pop, "size": honest + byzantine}}
    return data


def _check_consensus(proto: ConsensusGameProtocol, size: int, topology: str) -> None:
    if topology != "all_to_all":
        raise _cross("topology.kind", "the consensus game is played on an all-to-all network")
    if proto.honest is not None and proto.honest + proto.byzantine != size:
        raise _cross(
            "population.size",
            f"protocol.honest + protocol.byzantine = {proto.honest} + "
            f"{proto.byzantine} agents, but population.size is {size}; give only one of them "
            "(e.g. --set members=null)",
        )
    if 3 * proto.byzantine > size:
        raise _cross(
            "protocol.byzantine",
            f"{proto.byzantine} Byzantine agents among {size} is "
            f"f = {proto.byzantine}/{size} > 1/3; the game allows at most {size // 3} here",
        )


def _unique(path: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise _cross(path, f"duplicate id {i!r}")
        seen.add(i)


def _known(path: str, name: str, known: list[str], what: str) -> None:
    if name not in known:
        hint = difflib.get_close_matches(name, known, n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else f" (known: {', '.join(known)})"
        raise _cross(path, f"unknown {what} {name!r}{extra}")


# ----------------------------------------------------------------------------- loading


# CLI flag shorthands, shared with sweep grids: `members: 48` means population.size.
ALIASES = {
    "members": "population.size",
    "rounds": "protocol.max_rounds",
    "turn_timeout": "protocol.turn_timeout_s",
}


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read, override and validate a scenario file; raise ScenarioError on any problem."""
    p = Path(path)
    text = read_text_bounded(p)
    data, lines = parse_yaml(text, str(p))
    return build_scenario(data, overrides or {}, file=str(p), lines=lines)


def read_text_bounded(p: Path) -> str:
    if not p.exists():
        raise ScenarioError("no such file", file=str(p))
    if p.is_dir():
        raise ScenarioError("is a directory, not a scenario file", file=str(p))
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ScenarioError(
            f"file is {size / 1e6:.1f} MB; scenarios are limited to {MAX_FILE_BYTES // (1024 * 1024)} MB", file=str(p)
        )
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=str(p)) from None


def parse_yaml(text: str, file: str) -> tuple[dict[str, Any], dict[tuple[Any, ...], int]]:
    """Parse YAML into a mapping plus a (path -> line) index for error messages."""
    if len(text.encode("utf-8", errors="replace")) > MAX_FILE_BYTES:
        raise ScenarioError("scenario text is too large", file=file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(f"YAML syntax error: {problem}", file=file, line=line) from None
    if node is None:
        raise ScenarioError("file is empty; a scenario is a YAML mapping", file=file)
    if not isinstance(node, yaml.MappingNode):
        kind = {"SequenceNode": "a list", "ScalarNode": "a single value"}.get(type(node).__name__, "not a mapping")
        raise ScenarioError(
            f"a scenario is a YAML mapping of fields, but this file is {kind}", file=file, line=node.start_mark.line + 1
        )
    _check_size(node, file)
    lines: dict[tuple[Any, ...], int] = {}
    _index_lines(node, (), lines)
    try:
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:  # e.g. unhashable keys, caught only on construction
        mark = getattr(exc, "problem_mark", None)
        raise ScenarioError(
            f"YAML error: {getattr(exc, 'problem', exc)}", file=file, line=mark.line + 1 if mark else None
        ) from None
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ScenarioError("top-level keys must be strings", file=file)
    return data, lines


def _check_size(root: yaml.Node, file: str) -> None:
    """Count nodes as they would expand, so aliases cannot multiply the work."""
    memo: dict[int, int] = {}

    def size(n: yaml.Node, depth: int) -> int:
        if depth > 64:
            raise ScenarioError("YAML nesting is deeper than 64 levels", file=file, line=n.start_mark.line + 1)
        if id(n) in memo:
            return memo[id(n)]
        total = 1
        if isinstance(n, yaml.MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in n.value)
        elif isinstance(n, yaml.SequenceNode):
            total += sum(size(v, depth + 1) for v in n.value)
        if total > MAX_YAML_NODES:
            raise ScenarioError(
                f"YAML expands to more than {MAX_YAML_NODES} nodes (alias bomb or "
                "data that does not belong in a scenario)",
                file=file,
            )
        memo[id(n)] = total
        return total

    size(root, 0)


def _index_lines(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = (*path, key.value)
            out.setdefault(sub, key.start_mark.line + 1)
            _index_lines(value, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            sub = (*path, i)
            out.setdefault(sub, value.start_mark.line + 1)
            _index_lines(value, sub, out)


def parse_override(text: str) -> tuple[str, Any]:
    """`dotted.path=value` with the value read as a YAML scalar or flow collection."""
    if "=" not in text:
        raise ScenarioError(f"override {text!r} is not of the form dotted.path=value", path=text)
    key, _, raw = text.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ScenarioError(f"override {text!r} has an empty field name", path=key or text)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw  # not YAML: take it as the literal string
    return key, value


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted paths in a copy of `data`; list items are addressed by index."""
    out = json.loads(json.dumps(data, default=str))
    for dotted, value in overrides.items():
        path = ALIASES.get(dotted, dotted).split(".")
        cur: Any = out
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if isinstance(cur, list):
                if not part.isdigit() or int(part) >= len(cur):
                    raise ScenarioError(
                        f"no list item {part!r} (the list has {len(cur)} items)", path=".".join(path[: i + 1])
                    )
                idx = int(part)
                if last:
                    cur[idx] = value
                else:
                    cur = cur[idx]
            elif isinstance(cur, dict):
                if last:
                    cur[part] = value
                else:
                    if part not in cur or cur[part] is None:
                        cur[part] = {}
                    cur = cur[part]
            else:
                raise ScenarioError("cannot set a field inside a plain value", path=".".join(path[: i + 1]))
    return out


def build_scenario(
    data: dict[str, Any],
    overrides: dict[str, Any],
    *,
    file: str | None = None,
    lines: dict[tuple[Any, ...], int] | None = None,
) -> Scenario:
    try:
        merged = apply_overrides(data, overrides) if overrides else data
    except ScenarioError as exc:
        raise ScenarioError(exc.reason + " (from a command-line override)", file=file, path=exc.path) from None
    try:
        return Scenario.model_validate(merged)
    except ValidationError as exc:
        raise _explain(exc, merged, file, lines or {}, overrides) from None


def _explain(
    exc: ValidationError,
    data: dict[str, Any],
    file: str | None,
    lines: dict[tuple[Any, ...], int],
    overrides: dict[str, Any],
) -> ScenarioError:
    err = exc.errors(include_url=False)[0]
    cross = _find_cross(exc)
    if cross is not None:
        path = tuple(int(p) if p.isdigit() else p for p in cross.path.split("."))
        return ScenarioError(str(cross), file=file, path=cross.path, line=_line_for(path, lines))
    loc = _data_path(err["loc"], data)
    dotted = ".".join(str(p) for p in loc)
    overridden = any(ALIASES.get(k, k) == dotted or dotted.startswith(ALIASES.get(k, k) + ".") for k in overrides)
    line = None if overridden else _line_for(loc, lines)
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        if key in _field_vocabulary():
            msg = f"key {key!r} does not belong here (is it meant for another kind or section?)"
        else:
            hint = difflib.get_close_matches(key, sorted(_field_vocabulary()), n=1)
            msg = f"unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    elif err["type"] == "missing":
        msg = "required field is missing"
    elif "input" in err and not isinstance(err["input"], dict | list):
        msg = f"{msg} (got {err['input']!r})"
    if overridden:
        msg += " (from a command-line override)"
    return ScenarioError(msg, file=file, path=dotted or None, line=line)


def _find_cross(exc: ValidationError) -> _CrossRefError | None:
    for e in exc.errors(include_url=False):
        ctx = e.get("ctx") or {}
        if isinstance(ctx.get("error"), _CrossRefError):
            return ctx["error"]  # type: ignore[no-any-return]
    return None


def _data_path(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """Drop pydantic's union-tag entries so the path matches what the user wrote."""
    out: list[Any] = []
    cur = data
    for part in loc:
        in_dict = isinstance(cur, dict) and part in cur
        in_list = isinstance(cur, list) and isinstance(part, int) and part < len(cur)
        if in_dict or in_list:
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, dict) and isinstance(part, str) and part in _field_vocabulary():
            out.append(part)  # a missing or unknown field: still the user's own name
            cur = None
    return tuple(out)


def _line_for(path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    for n in range(len(path), 0, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


_VOCAB: set[str] = set()


def _field_vocabulary() -> set[str]:
    if not _VOCAB:
        seen: set[type] = set()

        def walk(model: type[BaseModel]) -> None:
            if model in seen:
                return
            seen.add(model)
            for name, f in model.model_fields.items():
                _VOCAB.add(name)
                for t in _models_in(f.annotation):
                    walk(t)

        walk(Scenario)
    return _VOCAB


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        out.extend(_models_in(arg))
    return out


def resolved(scenario: Scenario) -> dict[str, Any]:
    """The scenario with every default filled in, as recorded in the transcript."""
    return scenario.model_dump(mode="json")


def run_key(scenario: Scenario) -> str:
    """Hash of the resolved scenario (seed included): the identity of a run."""
    blob = json.dumps(resolved(scenario), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
