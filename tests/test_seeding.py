"""Seeded streams: a stream family with a hashed prefix draws exactly what `stream` draws,
and `gaussians` exactly what `Random.gauss` does."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from assembly.core.seeding import gaussians, stream, streams

keys = st.lists(st.one_of(st.integers(-5, 10**6), st.text(max_size=12)), max_size=4)


@given(seed=st.integers(0, 2**63 - 1), prefix=keys, rest=keys)
def test_stream_family_matches_stream(seed: int, prefix: list[object], rest: list[object]) -> None:
    family = streams(seed, *prefix)
    got, want = family(*rest), stream(seed, *prefix, *rest)
    assert [got.random() for _ in range(3)] == [want.random() for _ in range(3)]


@given(
    seed=st.integers(0, 2**63 - 1),
    warmup=st.integers(0, 3),  # gauss calls before: a pending second value, or none
    n=st.integers(0, 9),
    mu=st.floats(-5, 5) | st.just(0.0),
    sigma=st.floats(0, 3) | st.just(0.02),
)
def test_gaussians_are_random_gauss(seed: int, warmup: int, n: int, mu: float, sigma: float) -> None:
    ours, cpython = random.Random(seed), random.Random(seed)
    for _ in range(warmup):
        ours.gauss()
        cpython.gauss()
    assert gaussians(ours, n, mu, sigma) == [cpython.gauss(mu, sigma) for _ in range(n)]
    # The stream goes on exactly as it would: the next gauss and the next uniform draw.
    assert ours.gauss(0.5, 2.0) == cpython.gauss(0.5, 2.0)
    assert ours.random() == cpython.random()
