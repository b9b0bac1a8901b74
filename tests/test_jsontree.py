"""The JSON-tree toolkit: properties that hold for any tree, with json itself as the oracle."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from assembly.core.jsontree import MISSING, Change, changes, first_change, without_keys

# Keys from a small alphabet so that random trees share keys (and so differ in
# interesting ways); no '.' or '[' so that a path can be parsed back by `_resolve`.
KEYS = st.text(alphabet="abcd", min_size=1, max_size=2)
# -0.0 + 0.0 is 0.0: JSON writes -0.0 and 0.0 differently though they are equal.
SCALARS = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-3, 3, allow_nan=False).map(lambda x: x + 0.0)
SCALARS |= st.text(alphabet="xyz", max_size=2)
TREES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3),
    max_leaves=12,
)


def _dumped(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _steps(path: str) -> list[str | int]:
    return [int(i) if k == "" else k for k, i in re.findall(r"\.?([a-d]+)|\[(\d+)\]", path)]


def _resolve(tree: Any, path: str) -> Any:
    """The value at `path` in `tree`, or MISSING (an independent reading of the path syntax)."""
    for step in _steps(path):
        if isinstance(step, str):
            if not isinstance(tree, dict) or step not in tree:
                return MISSING
        elif not isinstance(tree, list) or step >= len(tree):
            return MISSING
        tree = tree[step]
    return tree


def _patched(tree: Any, change: Change) -> Any:
    """`tree` with `change.new` put at `change.path` (or the entry removed if MISSING)."""
    steps = _steps(change.path)
    if not steps:
        return change.new
    root = copy.deepcopy(tree)
    parent = root
    for step in steps[:-1]:
        parent = parent[step]
    if change.new is MISSING:
        del parent[steps[-1]]
    else:
        parent[steps[-1]] = change.new
    return root


@given(TREES, st.sets(KEYS, max_size=3))
def test_without_keys_removes_exactly_those_keys_at_every_depth(tree: Any, keys: set[str]) -> None:
    before = _dumped(tree)
    stripped = without_keys(tree, keys)
    assert _dumped(tree) == before, "the input is not modified"
    assert not any(f'"{k}":' in _dumped(stripped) for k in keys)
    assert without_keys(stripped, keys) == stripped
    assert without_keys(tree, set()) == tree


@given(TREES, st.sets(KEYS, max_size=3))
def test_without_keys_keeps_everything_else(tree: Any, keys: set[str]) -> None:
    """Re-adding what was dropped gives the tree back: nothing else was touched."""
    stripped = without_keys(tree, keys)
    for change in changes(stripped, tree):
        assert change.old is MISSING and change.path.rsplit(".", 1)[-1] in keys


@given(TREES, TREES)
def test_no_changes_exactly_when_equal(a: Any, b: Any) -> None:
    assert (not list(changes(a, b))) == (a == b)
    assert first_change(a, b) == next(iter(changes(a, b)), None)


@given(TREES, TREES)
def test_strict_types_report_what_json_would_write_differently(a: Any, b: Any) -> None:
    assert (not list(changes(a, b, strict_types=True))) == (_dumped(a) == _dumped(b))


@given(TREES, TREES)
def test_each_change_names_the_values_found_at_its_path(a: Any, b: Any) -> None:
    for change in changes(a, b, strict_types=True):
        for tree, side in ((a, change.old), (b, change.new)):
            found = _resolve(tree, change.path)
            assert (found is MISSING) == (side is MISSING)
            if side is not MISSING:
                assert _dumped(found) == _dumped(side)


@given(TREES, TREES)
def test_applying_every_change_turns_one_tree_into_the_other(a: Any, b: Any) -> None:
    patched = a
    for change in changes(a, b, strict_types=True):
        patched = _patched(patched, change)
    assert _dumped(patched) == _dumped(b)


def test_paths_are_spelled_as_the_reports_print_them() -> None:
    old = {"per_round": [{"round": 1, "dispersion": 0.5}], "gone": 1}
    new = {"per_round": [{"round": 1, "dispersion": 0.6}], "added": 2}
    assert list(changes(old, new)) == [
        Change("per_round[0].dispersion", 0.5, 0.6),
        Change("gone", 1, MISSING),
        Change("added", MISSING, 2),
    ]
    assert list(changes([1, 2], [1, 2, 3])) == [Change("", [1, 2], [1, 2, 3])]
    assert list(changes({"n": 1}, {"n": 1.0})) == []
    assert list(changes({"n": 1}, {"n": 1.0}, strict_types=True)) == [Change("n", 1, 1.0)]
