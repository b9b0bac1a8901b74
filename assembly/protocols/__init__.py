"""Protocols by scenario `protocol.kind`."""

from __future__ import annotations

from assembly.protocol import Protocol
from assembly.protocols.consensus_game import ConsensusGame
from assembly.protocols.facilitated import FacilitatedAssembly

PROTOCOLS: dict[str, type[Protocol]] = {
    FacilitatedAssembly.name: FacilitatedAssembly,
    ConsensusGame.name: ConsensusGame,
}


def protocol_class(kind: str) -> type[Protocol]:
    return PROTOCOLS[kind]
