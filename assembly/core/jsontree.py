"""Stripping and comparing JSON trees: dicts, lists and scalars, as `json.loads` gives them.

Events dumped to plain data, summaries and scenarios are all JSON trees. Two things
are done to them in several places, and are done here once:

- `without_keys` drops fields at every depth before a comparison (the clock and
  provenance fields of `transcript.canonical`, the cache flags a rerun ignores);
- `changes` says where two trees differ, with one spelling of "where"
  (`per_round[1].dispersion`): `replay --check` lists every difference between
  summary.json and the transcript, `rerun` names the first between two runs.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any, Final


class _Missing:
    """The side of a `Change` that has no value at that path (a key only the other has)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


@dataclass(frozen=True)
class Change:
    """One place where two trees differ: `old` and `new` are the values there, or MISSING."""

    path: str
    old: Any
    new: Any


def without_keys(value: Any, keys: Collection[str]) -> Any:
    """`value` with every dict entry whose key is in `keys` removed, at any depth (a copy)."""
    if isinstance(value, dict):
        return {k: without_keys(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [without_keys(v, keys) for v in value]
    return value


def changes(old: Any, new: Any, *, strict_types: bool = False, path: str = "") -> Iterator[Change]:
    """Every place where `new` differs from `old`, in document order.

    Dicts are compared key by key (`old`'s keys in order, then the keys only `new`
    has); lists of the same length item by item; anything else (scalars, lists of
    different lengths, a dict against a list) is one change at its path if unequal.
    A key present on one side only is a change whose other side is MISSING.

    `strict_types`: values that are equal across types (1, 1.0 and True) differ too,
    as they do once written as JSON; summary.json must hold figures as computed.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        for k in [*old, *(k for k in new if k not in old)]:
            sub = f"{path}.{k}" if path else str(k)
            if k not in new:
                yield Change(sub, old[k], MISSING)
            elif k not in old:
                yield Change(sub, MISSING, new[k])
            else:
                yield from changes(old[k], new[k], strict_types=strict_types, path=sub)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from changes(a, b, strict_types=strict_types, path=f"{path}[{i}]")
    elif old != new or (strict_types and type(old) is not type(new)):
        yield Change(path, old, new)


def first_change(old: Any, new: Any, *, strict_types: bool = False) -> Change | None:
    """The first of `changes(old, new)`, or None when the trees are equal."""
    return next(changes(old, new, strict_types=strict_types), None)
