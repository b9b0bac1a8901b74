"""Every random draw in a run comes from here.

Streams are derived from the run's seed and a key path (member id, round, phase,
purpose) by hashing, never from a shared generator, so a result cannot depend on
which asyncio task happened to run first, and resuming at round r draws exactly what
an uninterrupted run would have drawn.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(seed: int, *keys: object) -> int:
    """A 64-bit integer determined by the seed and the key path alone."""
    text = "\x1f".join([str(int(seed)), *map(str, keys)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def rng(seed: int, *keys: object) -> np.random.Generator:
    """An independent numpy Generator for one (seed, key path)."""
    return np.random.Generator(np.random.PCG64(derive_seed(seed, *keys)))
