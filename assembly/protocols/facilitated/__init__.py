"""The facilitated citizens' assembly: speak, synthesize, vote (the default protocol).

- `protocol`: the round (`play_round`), its stop rule, seating, outcome and figures;
- `actions`: speeches, the facilitator's synthesis, ballots;
- `config`: its scenario settings and the sim model's parameters;
- `sim`: the offline opinion-dynamics member (docs/sim_model.md);
- `rules`: quorum and decision rules, with exact fractions;
- `prompts`: what an LLM member or facilitator is told, and the output schemas;
- `idea_similarity`: TF-IDF similarity of the members' messages.
"""

from __future__ import annotations

from assembly.protocols.facilitated.protocol import FacilitatedAssembly

__all__ = ["FacilitatedAssembly"]
