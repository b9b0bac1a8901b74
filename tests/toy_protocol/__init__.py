"""A third protocol, written outside `assembly`: a show of hands.

Each round every member raises a hand (yes), keeps it down (no) or abstains, with a
short reason its audience hears; the run stops when a share `agree_share` of all
members agrees. It exists to prove that a protocol is a package and the registry is
its only hook: it is registered with one line,

    ASSEMBLY_PROTOCOLS=show_of_hands=tests.toy_protocol:ShowOfHands

and runs, replays, reports and sweeps without any change to `assembly`
(tests/test_toy_protocol.py). It imports only `assembly.core`.

- `protocol`: seating, the round, the tally, the ending, the figures;
- `actions`, `config`: a hand; the `protocol:` settings (with its sim knobs);
- `sim`: offline members who lean one way and conform to what they hear;
- `presentation`: how hands read in replay, report and the terminal;
- `show_of_hands.yaml`: a scenario.
"""

from __future__ import annotations

from tests.toy_protocol.protocol import ShowOfHands

__all__ = ["ShowOfHands"]
