"""The facilitated assembly's scenario settings: protocol config and sim parameters."""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from assembly.core.run_welfare import has_preferences
from assembly.core.spec import Name, ProtocolBase, ScenarioBase, Strict, Unit, cross, known
from assembly.protocols.facilitated.rules import MINORITY_RULES, DecisionRuleSpec, Share


class StallSpec(Strict):
    """Stop as `stalled` when neither dispersion nor leading support moved for `rounds` rounds."""

    rounds: Annotated[int, Field(ge=1, le=100)] = 3
    tolerance: Annotated[float, Field(ge=0.0, le=1.0)] = 0.01


class ValiditySpec(Strict):
    """When a decision counts as valid: `any` decision, or one of `options`."""

    kind: Literal["any", "option_in"] = "any"
    options: list[Name] = Field(default_factory=list)


class AssemblyProtocol(ProtocolBase):
    kind: Literal["assembly"] = "assembly"
    # Exact, like the rules' thresholds: "2/3" is accepted, and 0.6 of 10 is 6, not 5.999...
    quorum: Annotated[Share, Field(ge=0, le=1)] = Fraction(1, 2)
    decision_rule: DecisionRuleSpec = Field(default_factory=lambda: _default_rule())
    stall: StallSpec | None = None
    validity: ValiditySpec = Field(default_factory=ValiditySpec)
    first_vote_round: Annotated[int, Field(ge=1)] = 2
    candidates: Annotated[int, Field(ge=1, le=20)] = 3

    has_facilitator: ClassVar[bool] = True

    def check(self, scenario: ScenarioBase) -> None:
        option_ids = [o.id for o in scenario.options]
        if len(option_ids) < 2:
            raise cross("options", "the assembly protocol needs at least two options")
        for opt in self.validity.options:
            known("protocol.validity.options", opt, option_ids, "option")
        if self.validity.kind == "option_in" and not self.validity.options:
            raise cross("protocol.validity.options", "option_in needs at least one option")
        self._check_rule(scenario)

    def _check_rule(self, scenario: ScenarioBase) -> None:
        """A rule that protects minorities is judged by the welfare figures, which need
        members with preferences: refuse it where every member is indifferent."""
        kind = self.decision_rule.kind
        if kind not in MINORITY_RULES:
            return
        attributes = {o.id: o.attributes for o in scenario.options}
        # A dimension a role lists is weighed by its seated members if its weight or
        # its seating noise is non-zero.
        weights = [{d: w or r.value_noise for d, w in r.values.items()} for r in scenario.population.roles]
        if not has_preferences(attributes, weights, {f.id: f.effects for f in scenario.facts}):
            raise cross(
                "protocol.decision_rule.kind",
                f"{kind} is a rule that protects minorities, judged by utilities from members' values, but this "
                "scenario has no value dimensions: no role weighs a dimension that an option is rated on "
                "(population.roles.*.values, options.*.attributes) and no fact has effects, so every member "
                "is indifferent between the options",
            )


def _default_rule() -> Any:
    from assembly.protocols.facilitated.rules import MajorityRule

    return MajorityRule()


class OpinionDynamics(Strict):
    """Parameters of the opinion-dynamics baseline (docs/sim_model.md).

    Flat under `members.sim`, beside the shared latency and fault model."""

    susceptibility: Unit = 0.6  # Friedkin–Johnsen lambda: weight on others vs own anchor
    confidence_bound: Annotated[float, Field(gt=0.0)] | None = 0.35  # Hegselmann–Krause epsilon
    valuation_scale: Annotated[float, Field(gt=0.0, le=100.0)] = 3.0  # logistic slope: valuation -> support
    speech_noise: Annotated[float, Field(ge=0.0, le=1.0)] = 0.02
    disclosure_rate: Unit = 0.3  # Stasser–Titus: per-round chance to mention each private fact
    shared_bias: Annotated[float, Field(ge=1.0, le=100.0)] = 2.0  # boost for facts already in the record
    abstain_below: Unit = 0.0  # abstain when no candidate has at least this support
    approval_threshold: Unit = 0.6
