"""The cyclic garbage collector, tuned while a run goes.

A run allocates millions of short-lived objects (views, actions, events, HTTP
answers). With the default gen-0 threshold of 700, the collector spent about 40% of
a 2,048-member round rescanning them (bench/profile_overhead.py), and about 15% of
an LLM member's model call (bench/client_cpu.py). Reference counting still frees
them at once; only cycle detection runs less often. Freezing what exists when the
run starts (imports, the scenario, the members) takes it out of every full
collection during the run; it is unfrozen at the end, so nothing stays pinned.

While a phase's members are being started, no collection runs at all
(`collection_deferred`): with model calls, every member's request must be on the
wire before the first answer comes back, and a gen-0 collection in that burst
(about 19 ms at N = 256, bench/round_wall.py) delays every request started after
it, so the whole round. Deferred, it runs as soon as the burst is over, while
the requests are in flight.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

RUN_GEN0_THRESHOLD = 20_000


@contextlib.contextmanager
def collector_tuned_for_a_run() -> Iterator[None]:
    """Raise the gen-0 threshold and freeze the existing heap for the block.

    Runs may overlap in one event loop (a local sweep, `assembly.asweep`): a block
    entered while another run's tuning is in force leaves the collector alone, and
    the first one restores it. The collector's own state says so, which keeps this
    free of module state."""
    before = gc.get_threshold()
    if before[0] == RUN_GEN0_THRESHOLD:
        yield
        return
    gc.freeze()
    gc.set_threshold(RUN_GEN0_THRESHOLD, before[1], before[2])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


@contextlib.contextmanager
def collection_deferred() -> Iterator[None]:
    """No automatic collection inside the block; the first allocation after it
    collects if one is due, as it would have.

    Reference counting still frees everything acyclic at once, so the block only
    postpones cycle detection. Blocks that overlap (runs sharing a loop or a
    process) leave the collector to whichever one disabled it, and a collector
    disabled by someone else stays disabled."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
