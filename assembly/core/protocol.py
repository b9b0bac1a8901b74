"""The protocol interface: what a round is, what members are asked, when a run ends.

The engine is protocol-agnostic: it hands a protocol a `RoundContext` whose `ask`
runs members concurrently under deadlines and whose `emit` appends events. A
protocol keeps its state only by folding events in `apply`, so that resuming or
replaying a transcript rebuilds exactly the state a live run had.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar
from typing import Protocol as TypingProtocol

from pydantic import BaseModel

from assembly.core.actions import Action
from assembly.core.errors import UserError
from assembly.core.events import Event, RunEnded, RunStarted, Seated, SeatedMember, Turn
from assembly.core.faults import SeededFaults
from assembly.core.member import Member, Request
from assembly.core.presentation import Presentation
from assembly.core.prompt import Prompt
from assembly.core.run_welfare import StatedPreferences
from assembly.core.spec import ProtocolBase, ScenarioBase
from assembly.core.view import View, ViewBuilder


class RoundContext(TypingProtocol):
    round: int
    views: ViewBuilder

    async def ask(
        self, phase: str, member_ids: Sequence[str], action: type[Action], params: dict[str, object] | None = None
    ) -> list[Turn]:
        """Ask members concurrently, each under the turn deadline; events are emitted."""
        ...

    def emit(self, *events: Event) -> None: ...


class Protocol(ABC):
    """A protocol, implemented as one package and registered by its `name`.

    Besides the round itself it declares, as class attributes, everything the
    general modules ask of it: its action classes (which declare their audience,
    see `core.actions`), its config schema, its sim parameters and how its actions
    and figures are presented (`core.presentation`)."""

    name: ClassVar[str]  # the scenario's `protocol.kind`
    config: ClassVar[type[ProtocolBase]]  # its `protocol:` settings
    # Every action class its members may be asked for (views and metrics read their
    # declarations; an action of another kind is private and never an abstention).
    actions: ClassVar[tuple[type[Action], ...]] = ()
    presentation: ClassVar[Presentation] = Presentation()
    # Its offline members' parameters in `members.sim`: flat (sim_key None, only the
    # default protocol) or under `members.sim.<sim_key>`.
    sim_params: ClassVar[type[BaseModel] | None] = None
    sim_key: ClassVar[str | None] = None

    def __init__(self, scenario: ScenarioBase) -> None:
        self.scenario = scenario

    @abstractmethod
    def seat(self) -> Seated:
        """Deal seats, roles, private facts and protocol-private state (seeded)."""

    def apply(self, event: Any) -> None:  # noqa: B027 - folding is optional
        """Fold one event into protocol state (live and on replay/resume alike)."""

    @abstractmethod
    async def play_round(self, ctx: RoundContext) -> RunEnded | None:
        """Run one round; return the run's end if the protocol stops here."""

    @abstractmethod
    def conclude(self, cause: str) -> RunEnded:
        """End the run for an engine-level reason (`round_limit` or `budget`)."""

    @abstractmethod
    def sim_member(self, seated: SeatedMember) -> Member:
        """The offline policy for this protocol's members."""

    def own_sim_params(self) -> Any:
        """This protocol's part of the scenario's `members.sim` (an instance of `sim_params`)."""
        sim = self.scenario.members.sim
        return getattr(sim, self.sim_key) if self.sim_key else sim

    def seeded_faults(self) -> SeededFaults:
        """The shared latency and fault model every sim member of this run draws from."""
        return SeededFaults(self.scenario.members.sim, self.scenario.seed)

    def prompt(self, view: View, request: Request) -> Prompt:
        """Render a member's view into messages for an LLM member."""
        raise NotImplementedError(f"protocol {self.name!r} has no LLM prompt renderer")

    def output_model(self, view: View, request: Request) -> type[Action]:
        """The pydantic type an LLM member must return for this request.

        Protocols narrow `request.action` here (e.g. option ids as an enum) so that
        constrained decoding and validation reject impossible answers."""
        return request.action

    @classmethod
    def round_figures(
        cls, round_events: list[Any], started: RunStarted, seated: Seated, history: Sequence[Any] = ()
    ) -> dict[str, Any]:
        """Protocol-specific per-round figures, a pure function of the transcript:
        this round's events, and `history`, every event before the round started
        (for state carried across rounds, such as a value kept by an abstainer)."""
        return {}

    @classmethod
    def run_figures(cls, events: list[Any]) -> dict[str, Any]:
        """Protocol-specific per-run figures, a pure function of the transcript."""
        return {}

    @classmethod
    def reference_names(cls) -> list[str]:
        """Names of the published results this protocol ships (papers), for `reference_points`."""
        return []

    @classmethod
    def reference_points(cls, ref: str) -> list[dict[str, Any]]:
        """Published results `paper/figure` (a sweep's `reference:`) to draw beside a sweep's.

        Points carry `valid`, `invalid` and `timeout` shares of runs plus the fields
        they were measured at; raise `UserError` for an unknown figure."""
        raise UserError(f"protocol {cls.name!r} ships no published results (asked for {ref!r})")

    @classmethod
    def stated_preferences(cls, events: list[Any]) -> StatedPreferences | None:
        """What members said about the scenario's options (decision, positions, support
        scores), read from this protocol's actions, for the welfare figures
        (`core.run_welfare`). None, the default, declares that this protocol's runs do
        not choose among the scenario's options, so they have no welfare section."""
        return None


# Builds the member for a seat whose policy is not `sim` (the LLM layer's, or a
# test's scripted one), given the run folder for its response cache.
MemberFactory = Callable[[SeatedMember, Protocol, ScenarioBase, Path], Member]
