"""The protocol registry: scenario `protocol.kind` -> the package that implements it.

A protocol is a self-contained package (see `facilitated/` and `consensus_game/`):
its actions, config, sim policy, prompts, rules, figures and presentation. This
registry is its only hook into the rest of `assembly`: the scenario schema, the
views, the metrics, replay, report and sweeps all ask the registered class, never
name an action kind.

Built-in protocols are listed here. A protocol from outside this repository is
registered without editing `assembly`, by either
- an entry point of group `assembly.protocols` in its distribution
  (`show_of_hands = "toy.protocol:ShowOfHands"`), or
- the environment variable `ASSEMBLY_PROTOCOLS=kind=package.module:Class,...`.
The registry is complete once this module is imported (the scenario schema is built
from it at import), and a bad entry fails here with one `ProtocolRegistryError`.
"""

from __future__ import annotations

from assembly.core.errors import ProtocolRegistryError, UserError
from assembly.core.protocol import Protocol
from assembly.protocols.consensus_game import ConsensusGame
from assembly.protocols.facilitated import FacilitatedAssembly
from assembly.protocols.plugins import ENTRY_POINT_GROUP, ENV_VAR, third_party

BUILT_IN: tuple[type[Protocol], ...] = (FacilitatedAssembly, ConsensusGame)
PROTOCOLS: dict[str, type[Protocol]] = third_party({p.name: p for p in BUILT_IN})
# The kind of a scenario that names none (its sim parameters sit flat in `members.sim`).
DEFAULT_PROTOCOL = FacilitatedAssembly.name

__all__ = ["DEFAULT_PROTOCOL", "ENTRY_POINT_GROUP", "ENV_VAR", "PROTOCOLS", "protocol_class", "reference_points"]


def protocol_class(kind: str) -> type[Protocol]:
    try:
        return PROTOCOLS[kind]
    except KeyError:
        raise ProtocolRegistryError(
            f"unknown protocol {kind!r} (registered: {', '.join(PROTOCOLS)}); a protocol from another "
            f"package is registered with {ENV_VAR}=kind=package.module:Class or an {ENTRY_POINT_GROUP!r} "
            "entry point"
        ) from None


def reference_points(ref: str) -> list[dict[str, object]]:
    """Published results `paper/figure` from whichever protocol ships that paper."""
    paper, sep, _ = ref.partition("/")
    papers = {name: p for p in PROTOCOLS.values() for name in p.reference_names()}
    if not sep:
        raise UserError(f"reference {ref!r} should look like 'paper/figure' (papers: {', '.join(sorted(papers))})")
    if paper not in papers:
        raise UserError(f"no reference data named {paper!r} (available: {', '.join(sorted(papers))})")
    return papers[paper].reference_points(ref)
