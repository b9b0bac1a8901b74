"""Protocols by scenario `protocol.kind`."""

from __future__ import annotations

from assembly.protocol import Protocol
from assembly.protocols.facilitated import FacilitatedAssembly

PROTOCOLS: dict[str, type[Protocol]] = {
    FacilitatedAssembly.name: FacilitatedAssembly,
}


def protocol_class(kind: str) -> type[Protocol]:
    return PROTOCOLS[kind]
