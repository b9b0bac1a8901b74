"""Seeded streams: a stream family with a hashed prefix draws exactly what `stream` draws."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from assembly.core.seeding import stream, streams

keys = st.lists(st.one_of(st.integers(-5, 10**6), st.text(max_size=12)), max_size=4)


@given(seed=st.integers(0, 2**63 - 1), prefix=keys, rest=keys)
def test_stream_family_matches_stream(seed: int, prefix: list[object], rest: list[object]) -> None:
    family = streams(seed, *prefix)
    got, want = family(*rest), stream(seed, *prefix, *rest)
    assert [got.random() for _ in range(3)] == [want.random() for _ in range(3)]
