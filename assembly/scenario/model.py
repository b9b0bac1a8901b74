"""The full scenario schema, assembled from the protocol registry.

`core.spec.ScenarioBase` knows no protocol. Here `protocol` becomes the union of the
registered protocols' configs (tagged by `kind`), and `members.sim` gains each
protocol's sim parameters, so adding a protocol never touches this file.

`members.sim` keeps the shape scenario files already use: the default protocol's
parameters sit flat beside the shared latency and fault model, and every other
protocol's under its own key (`members.sim.consensus`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field, create_model, model_validator

from assembly.core.spec import MembersBase, ProtocolBase, ScenarioBase, SimBase
from assembly.protocols import DEFAULT_PROTOCOL, PROTOCOLS

if TYPE_CHECKING:
    ProtocolSpec = ProtocolBase
    SimParams = SimBase
else:
    ProtocolSpec = Annotated[Union[tuple(p.config for p in PROTOCOLS.values())], Field(discriminator="kind")]  # noqa: UP007
    # Bases are listed last-first: pydantic orders inherited fields by reversed MRO,
    # so the flat protocol parameters come first and the shared fault model after them.
    SimParams = create_model(
        "SimParams",
        __base__=(SimBase, *(p.sim_params for p in PROTOCOLS.values() if p.sim_key is None and p.sim_params)),
        __doc__="Parameters of every protocol's offline members (docs/sim_model.md, docs/consensus_game.md).",
        **{
            p.sim_key: (p.sim_params, Field(default_factory=p.sim_params))
            for p in PROTOCOLS.values()
            if p.sim_key is not None and p.sim_params
        },
    )


class MembersSpec(MembersBase):
    sim: SimParams = Field(default_factory=SimParams)


class Scenario(ScenarioBase):
    protocol: ProtocolSpec = Field(default_factory=PROTOCOLS[DEFAULT_PROTOCOL].config)
    members: MembersSpec = Field(default_factory=MembersSpec)

    @model_validator(mode="before")
    @classmethod
    def _prepare(cls, data: Any) -> Any:
        """Let the chosen protocol derive fields of the whole scenario (e.g. its size)."""
        if not isinstance(data, dict):
            return data
        proto = data.get("protocol")
        kind = proto.get("kind", DEFAULT_PROTOCOL) if isinstance(proto, dict) else DEFAULT_PROTOCOL
        entry = PROTOCOLS.get(kind) if isinstance(kind, str) else None
        return entry.config.prepare(data) if entry is not None else data
