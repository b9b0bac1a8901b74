"""The show of hands' `protocol:` settings, including its offline members' knobs.

The sim knobs sit here rather than under `members.sim.<key>` (`Protocol.sim_key`):
those parameters join every scenario's resolved form, so registering a protocol
with them would change the run key of every other protocol's scenarios.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from assembly.core.spec import ProtocolBase, Unit


class ShowOfHandsConfig(ProtocolBase):
    kind: Literal["show_of_hands"] = "show_of_hands"
    max_rounds: Annotated[int, Field(ge=1, le=100)] = 6
    # The run stops when this share of ALL seated members shows the same hand.
    agree_share: Annotated[float, Field(gt=0.5, le=1.0)] = 0.75
    # Offline members: how far a member moves from its own lean toward the share of
    # hands it saw up last round, and how close to undecided it abstains.
    conformity: Unit = 0.6
    abstain_band: Annotated[float, Field(ge=0.0, le=0.5)] = 0.03
