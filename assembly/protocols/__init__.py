"""The protocol registry: scenario `protocol.kind` -> the package that implements it.

A protocol is a self-contained package (see `facilitated/` and `consensus_game/`):
its actions, config, sim policy, prompts, rules, figures and presentation. This
registry is its only hook into the rest of `assembly`: the scenario schema, the
views, the metrics, replay, report and sweeps all ask the registered class, never
name an action kind. Adding a protocol is one package plus one line here.
"""

from __future__ import annotations

from assembly.core.protocol import Protocol
from assembly.protocols.consensus_game import ConsensusGame
from assembly.protocols.facilitated import FacilitatedAssembly

PROTOCOLS: dict[str, type[Protocol]] = {
    FacilitatedAssembly.name: FacilitatedAssembly,
    ConsensusGame.name: ConsensusGame,
}
# The kind of a scenario that names none (its sim parameters sit flat in `members.sim`).
DEFAULT_PROTOCOL = FacilitatedAssembly.name


def protocol_class(kind: str) -> type[Protocol]:
    return PROTOCOLS[kind]
