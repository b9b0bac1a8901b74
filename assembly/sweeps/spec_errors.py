"""Sweep-file errors that point at the line to fix: keys, seeds and the reference
checked before any cell is built, a cell's scenario error blamed on the grid value
(or `set:` entry) that causes it, and pydantic errors in the sweep file itself, each
with the file, the field path and the line."""

from __future__ import annotations

import difflib
import json
from typing import Any, Protocol

from pydantic import ValidationError

from assembly.core.errors import ScenarioError, UserError
from assembly.protocols import reference_points
from assembly.scenario.loading import ALIASES, build_scenario


class GridSpec(Protocol):
    """What blaming needs of a sweep spec (`sweep.SweepSpec`)."""

    grid: dict[str, list[Any]]
    set_: dict[str, Any]


class SpecChecked(GridSpec, Protocol):
    """What the checks of a whole sweep file need of it (`sweep.SweepSpec`)."""

    seeds: Any
    reference: str | None


SWEEP_ONLY = ("seed",)  # seeds come from `seeds:`, never from the grid or `set:`


def touches(key: str, path: str | None) -> bool:
    target = ALIASES.get(key, key)
    return path is not None and (path == target or path.startswith(target + ".") or target.startswith(path + "."))


def cell_error(
    exc: ScenarioError,
    spec: GridSpec,
    grid: dict[str, Any],
    label: str,
    base: dict[str, Any],
    extra: dict[str, Any],
    file: str,
    lines: dict[tuple[Any, ...], int],
) -> ScenarioError:
    """Point a cell's scenario error at the grid value (or `set:` entry) that caused it."""
    blame: tuple[Any, ...] | None = None
    for key in grid:
        if touches(key, exc.path):
            blame = ("grid", key, spec.grid[key].index(grid[key]))
            break
    else:
        for key in spec.set_:
            if touches(key, exc.path):
                blame = ("set", key)
                break
    if blame is None:
        # A cross-field error (e.g. quotas that cannot seat 6): find the grid value
        # without which the cell is valid.
        for key in grid:
            try:
                build_scenario(base, {**spec.set_, **{k: v for k, v in grid.items() if k != key}, **extra})
            except ScenarioError:
                continue
            blame = ("grid", key, spec.grid[key].index(grid[key]))
            break
    if blame is None:
        blame = ("set",) if spec.set_ else ("grid",)
    reason = exc.reason.replace(" (from a command-line override)", "")
    where = f"{exc.file}" + (f":{exc.line}" if exc.line else "") + (f" at {exc.path}" if exc.path else "")
    return ScenarioError(
        f"cell {label} does not validate: {where}: {reason}",
        file=file,
        path=".".join(str(p) for p in blame),
        line=line_of(blame, lines),
    )


def line_of(path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    for n in range(len(path), 0, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


def explain(exc: ValidationError, file: str, lines: dict[tuple[Any, ...], int], fields: list[str]) -> ScenarioError:
    err = exc.errors(include_url=False)[0]
    loc = tuple(err["loc"])
    if loc and loc[0] == "seeds":  # drop pydantic's union branch names (`int`, `list[...]`)
        loc = ("seeds", *(p for p in loc[1:] if isinstance(p, int)))
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        hint = difflib.get_close_matches(str(loc[-1]), fields, n=1)
        msg = f"unknown key {loc[-1]!r}" + (
            f" (did you mean {hint[0]!r}?)" if hint else f" (known: {', '.join(fields)})"
        )
    elif err["type"] == "missing":
        msg = "required field is missing"
    elif "input" in err and not isinstance(err["input"], dict | list):
        msg = f"{msg} (got {err['input']!r})"
    if loc and loc[0] == "seeds" and len(exc.errors()) > 1:
        msg = f"seeds must be a count (≥ 1) or a list of seeds ≥ 0: {msg}"
    return ScenarioError(msg, file=file, path=".".join(str(p) for p in loc) or None, line=line_of(loc, lines))


def check_keys(spec: SpecChecked, file: str, lines: dict[tuple[Any, ...], int]) -> None:
    for section, keys in (("grid", list(spec.grid)), ("set", list(spec.set_))):
        for key in keys:
            problem = (
                f"{key!r} is not a dotted field path"
                if not key or any(not p for p in key.split("."))
                else "seeds are set with `seeds:` (a count or a list), not as an override"
                if key in SWEEP_ONLY
                else None
            )
            if problem:
                raise ScenarioError(problem, file=file, path=f"{section}.{key}", line=lines.get((section, key)))
    resolved_set = {ALIASES.get(k, k): k for k in spec.set_}
    for key in spec.grid:
        if ALIASES.get(key, key) in resolved_set:
            fixed = resolved_set[ALIASES.get(key, key)]
            raise ScenarioError(
                f"{fixed!r} is fixed here but also a grid factor ({key!r}); keep one",
                file=file,
                path=f"set.{fixed}",
                line=lines.get(("set", fixed)),
            )
        values = [json.dumps(v, sort_keys=True) for v in spec.grid[key]]
        for i, v in enumerate(values):
            if v in values[:i]:
                raise ScenarioError(
                    f"duplicate value {spec.grid[key][i]!r}",
                    file=file,
                    path=f"grid.{key}.{i}",
                    line=lines.get(("grid", key, i)),
                )
    if isinstance(spec.seeds, list) and len(set(spec.seeds)) != len(spec.seeds):
        raise ScenarioError("duplicate seeds", file=file, path="seeds", line=lines.get(("seeds",)))


def check_extra(spec: SpecChecked, extra: dict[str, Any]) -> None:
    """Command-line overrides (`--set`) may not touch what the sweep file varies."""
    grid = {ALIASES.get(k, k): k for k in spec.grid}
    for key in extra:
        if key in SWEEP_ONLY:
            raise UserError(f"--set {key}: a sweep's seeds come from its file's `seeds:` (a count or a list)")
        if ALIASES.get(key, key) in grid:
            raise UserError(
                f"--set {key}: {grid[ALIASES.get(key, key)]!r} is a grid factor of this sweep; "
                "change the grid in the sweep file instead"
            )


def check_reference(spec: SpecChecked, file: str, lines: dict[tuple[Any, ...], int]) -> None:
    if not spec.reference:
        return
    try:
        reference_points(spec.reference)
    except UserError as exc:
        raise ScenarioError(str(exc), file=file, path="reference", line=lines.get(("reference",))) from None
