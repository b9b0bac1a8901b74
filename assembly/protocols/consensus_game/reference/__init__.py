"""Published results to draw beside ours, stored as data with a citation for each number.

Each reference is a YAML file in this package (`<name>.yaml`) with `figures`, each a
set of points plus `defaults` shared by its points. `points("name/figure")` returns
them filled in and normalised, so report code never has to know a paper's layout:

    {model, members, honest, byzantine, awareness, valid, invalid, timeout,
     runs, mean_rounds, source}

`valid`, `invalid` and `timeout` are fractions of runs (None where the paper does not
say); `timeout` is 1 - valid - invalid when both are given; `members` is honest +
byzantine when only the honest count is given, and the other way round.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from assembly.core.errors import UserError

DEFAULT = "arxiv_2603_01213"
_NAME = re.compile(r"^[a-z0-9_]+$")
POINT_KEYS = (
    "model",
    "members",
    "honest",
    "byzantine",
    "awareness",
    "valid",
    "invalid",
    "timeout",
    "runs",
    "mean_rounds",
    "source",
)


def available() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(__package__).iterdir() if p.name.endswith(".yaml"))


@lru_cache(maxsize=16)
def _load(name: str) -> dict[str, Any]:
    if not _NAME.match(name) or name not in available():
        raise UserError(f"no reference data named {name!r} (available: {', '.join(available())})")
    text = resources.files(__package__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("figures"), dict):
        raise UserError(f"reference data {name!r} has no `figures` mapping")
    return data


def load(name: str = DEFAULT) -> dict[str, Any]:
    """The whole reference file (paper metadata and raw figures), as a fresh copy."""
    import copy

    return copy.deepcopy(_load(name))


def points(ref: str) -> list[dict[str, Any]]:
    """Normalised points of one figure, e.g. `points("arxiv_2603_01213/fig2")`."""
    name, sep, figure = ref.partition("/")
    if not sep or not figure:
        raise UserError(f"reference {ref!r} should look like 'paper/figure', e.g. '{DEFAULT}/fig2'")
    figures = _load(name)["figures"]
    if figure not in figures:
        raise UserError(f"reference {name!r} has no figure {figure!r} (has: {', '.join(figures)})")
    fig = figures[figure]
    return [_normalise({**fig.get("defaults", {}), **p}, fig.get("source", name)) for p in fig["points"]]


def _normalise(raw: dict[str, Any], source: str) -> dict[str, Any]:
    p = {k: raw.get(k) for k in POINT_KEYS}
    p["source"] = raw.get("source", source)
    byz = p["byzantine"] or 0
    p["byzantine"] = byz
    if p["members"] is None and p["honest"] is not None:
        p["members"] = p["honest"] + byz
    if p["honest"] is None and p["members"] is not None:
        p["honest"] = p["members"] - byz
    if p["timeout"] is None and p["valid"] is not None and p["invalid"] is not None:
        p["timeout"] = round(1.0 - p["valid"] - p["invalid"], 6)
    return p
