"""The scalar consensus game of arXiv:2603.01213 (docs/consensus_game.md).

- `protocol`: propose, then vote stop or continue; the stop rule and outcome;
- `actions`, `config`: proposals and stop votes; its scenario settings;
- `state`: the board of values folded from the transcript;
- `sim`: the approximate-agreement baseline and Byzantine agents;
- `prompts`: the paper's prompts, in our words;
- `reference`: the paper's reported rates, as data.
"""

from __future__ import annotations

from assembly.protocols.consensus_game.protocol import ConsensusGame

__all__ = ["ConsensusGame"]
