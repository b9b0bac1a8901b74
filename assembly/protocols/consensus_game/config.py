"""The consensus game's scenario settings: protocol config, generation defaults, sim parameters."""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from assembly.core.spec import MAX_MEMBERS, MAX_ROUNDS, GenerationSettings, ProtocolBase, ScenarioBase, Strict, cross


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

    @classmethod
    def prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Fill population.size from protocol.honest + protocol.byzantine when it is left out."""
        proto, pop = data.get("protocol"), data.get("population")
        if not (isinstance(proto, dict) and isinstance(pop, dict)):
            return data
        honest, byzantine = proto.get("honest"), proto.get("byzantine", 0)
        if isinstance(honest, int) and isinstance(byzantine, int) and pop.get("size") is None:
            data = {**data, "population": {**pop, "size": honest + byzantine}}
        return data

    def check(self, scenario: ScenarioBase) -> None:
        size, topology = scenario.population.size, scenario.topology.kind
        if topology != "all_to_all":
            raise cross("topology.kind", "the consensus game is played on an all-to-all network")
        if self.honest is not None and self.honest + self.byzantine != size:
            raise cross(
                "population.size",
                f"protocol.honest + protocol.byzantine = {self.honest} + "
                f"{self.byzantine} agents, but population.size is {size}; give only one of them "
                "(e.g. --set members=null)",
            )
        if 3 * self.byzantine > size:
            raise cross(
                "protocol.byzantine",
                f"{self.byzantine} Byzantine agents among {size} is "
                f"f = {self.byzantine}/{size} > 1/3; the game allows at most {size // 3} here",
            )

    @model_validator(mode="after")
    def _consistent(self) -> ConsensusGameProtocol:
        try:
            threshold = Fraction(self.stop_threshold.strip())
        except (ValueError, ZeroDivisionError):
            raise cross(
                "protocol.stop_threshold", f"{self.stop_threshold!r} is not a fraction such as 2/3 or 0.75"
            ) from None
        if not 0 < threshold <= 1:
            raise cross("protocol.stop_threshold", "must be above 0 and at most 1")
        if self.value_max <= self.value_min:
            raise cross("protocol.value_max", f"must be above value_min = {self.value_min}")
        if self.view_window < max(self.history_window + 1, 2 * self.notes_window):
            raise cross(
                "protocol.view_window",
                "must be at least history_window + 1 and 2 x notes_window "
                "(a view keeps a proposal and a stop vote per round)",
            )
        return self

    @property
    def threshold(self) -> Fraction:
        return Fraction(self.stop_threshold.strip())


class ConsensusSimParams(Strict):
    """Offline agents of the consensus game (docs/consensus_game.md)."""

    aggregate: Literal["median", "trimmed_mean"] = "median"
    # Share of values dropped at each end before aggregating; None: 1/3 when Byzantine agents
    # may exist (the largest tolerated fraction), 0 when all agents are said to be honest.
    trim: Annotated[float, Field(ge=0.0, lt=0.5)] | None = None
    inertia: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.5  # share of the gap to the target NOT closed
    noise_sd: Annotated[float, Field(ge=0.0, le=100.0)] = 0.0  # Gaussian noise on each step, before rounding
    byzantine_strategy: Literal["zigzag"] = "zigzag"
