"""Small builders shared by the core tests."""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from assembly.core.transcript import read_transcript
from assembly.launch import execute
from assembly.scenario.loading import build_scenario, load_scenario
from assembly.scenario.model import Scenario
from tests.conftest import SCENARIOS


def scenario(name: str = "citizens_assembly", **overrides: Any) -> Scenario:
    return load_scenario(SCENARIOS / f"{name}.yaml", overrides)


def tiny(n: int = 6, **overrides: Any) -> Scenario:
    """A small assembly with no faults and two options, for engine tests."""
    data: dict[str, Any] = {
        "name": "tiny",
        "question": "A or B?",
        "options": [
            {"id": "A", "text": "a", "attributes": {"x": 1.0}},
            {"id": "B", "text": "b", "attributes": {"x": -1.0}},
        ],
        "population": {"size": n, "roles": [{"name": "r", "share": 1.0, "values": {"x": 0.5}}]},
        "protocol": {"kind": "assembly", "max_rounds": 3, "turn_timeout_s": 5, "first_vote_round": 1},
        "members": {"sim": {"latency": {"median_s": 0.0}}},
    }
    return build_scenario(data, overrides)


def run(sc: Scenario, out: Path, **kwargs: Any) -> tuple[dict[str, Any], list[Any]]:
    summary = asyncio.run(execute(sc, out, **kwargs))
    return summary, read_transcript(out).events


@contextmanager
def cyclic_garbage() -> Iterator[Counter[str]]:
    """Count, by type name, the objects the block leaves in unreachable reference
    cycles: what only the cycle collector can free. Collections during the block
    save what they find instead of freeing it, and one at the end finds the rest."""
    found: Counter[str] = Counter()
    gc.collect()
    flags = gc.get_debug()
    gc.set_debug(flags | gc.DEBUG_SAVEALL)
    try:
        yield found
        gc.collect()
        found.update(type(o).__name__ for o in gc.garbage)
    finally:
        gc.set_debug(flags)
        gc.garbage.clear()
