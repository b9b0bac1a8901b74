"""Reading a scenario: YAML loading, overrides, and errors that name file, field and line.

A scenario is validated completely before anything runs. Every error names the file,
the dotted field path and, where the YAML has it, the line: researchers edit these
files by hand and should never have to read a traceback to find a typo.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from assembly.core.errors import ScenarioError, quoted
from assembly.core.spec import CrossRefError
from assembly.scenario.model import Scenario

MAX_FILE_BYTES = 5 * 1024 * 1024  # a scenario is a few KB; anything this big is a mistake
MAX_YAML_NODES = 200_000  # bounds alias bombs ("billion laughs") before they expand


# ----------------------------------------------------------------------------- loading


# CLI flag shorthands, shared with sweep grids: `members: 48` means population.size.
ALIASES = {
    "members": "population.size",
    "rounds": "protocol.max_rounds",
    "turn_timeout": "protocol.turn_timeout_s",
}


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read, override and validate a scenario file; raise ScenarioError on any problem."""
    p = Path(path)
    text = read_text_bounded(p)
    data, lines = parse_yaml(text, str(p))
    return build_scenario(data, overrides or {}, file=str(p), lines=lines)


def read_text_bounded(p: Path) -> str:
    if not p.exists():
        raise ScenarioError("no such file", file=str(p))
    if p.is_dir():
        raise ScenarioError("is a directory, not a scenario file", file=str(p))
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ScenarioError(
            f"file is {size / 1e6:.1f} MB; scenarios are limited to {MAX_FILE_BYTES // (1024 * 1024)} MB", file=str(p)
        )
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=str(p)) from None


def parse_yaml(text: str, file: str) -> tuple[dict[str, Any], dict[tuple[Any, ...], int]]:
    """Parse YAML into a mapping plus a (path -> line) index for error messages."""
    if len(text.encode("utf-8", errors="replace")) > MAX_FILE_BYTES:
        raise ScenarioError("scenario text is too large", file=file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(f"YAML syntax error: {problem}", file=file, line=line) from None
    if node is None:
        raise ScenarioError("file is empty; a scenario is a YAML mapping", file=file)
    if not isinstance(node, yaml.MappingNode):
        kind = {"SequenceNode": "a list", "ScalarNode": "a single value"}.get(type(node).__name__, "not a mapping")
        raise ScenarioError(
            f"a scenario is a YAML mapping of fields, but this file is {kind}", file=file, line=node.start_mark.line + 1
        )
    _check_size(node, file)
    lines: dict[tuple[Any, ...], int] = {}
    _index_lines(node, (), lines)
    try:
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:  # e.g. unhashable keys, caught only on construction
        mark = getattr(exc, "problem_mark", None)
        raise ScenarioError(
            f"YAML error: {getattr(exc, 'problem', exc)}", file=file, line=mark.line + 1 if mark else None
        ) from None
    except ValueError as exc:  # a number too long for Python to convert (over 4,300 digits)
        raise ScenarioError(f"a value cannot be read: {str(exc)[:200]}", file=file) from None
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ScenarioError("top-level keys must be strings", file=file)
    return data, lines


def _check_size(root: yaml.Node, file: str) -> None:
    """Count nodes as they would expand, so aliases cannot multiply the work."""
    memo: dict[int, int] = {}

    def size(n: yaml.Node, depth: int) -> int:
        if depth > 64:
            raise ScenarioError("YAML nesting is deeper than 64 levels", file=file, line=n.start_mark.line + 1)
        if id(n) in memo:
            return memo[id(n)]
        total = 1
        if isinstance(n, yaml.MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in n.value)
        elif isinstance(n, yaml.SequenceNode):
            total += sum(size(v, depth + 1) for v in n.value)
        if total > MAX_YAML_NODES:
            raise ScenarioError(
                f"YAML expands to more than {MAX_YAML_NODES} nodes (alias bomb or "
                "data that does not belong in a scenario)",
                file=file,
            )
        memo[id(n)] = total
        return total

    size(root, 0)


def _index_lines(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = (*path, key.value)
            out.setdefault(sub, key.start_mark.line + 1)
            _index_lines(value, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            sub = (*path, i)
            out.setdefault(sub, value.start_mark.line + 1)
            _index_lines(value, sub, out)


def parse_override(text: str) -> tuple[str, Any]:
    """`dotted.path=value` with the value read as a YAML scalar or flow collection."""
    if "=" not in text:
        raise ScenarioError(f"override {quoted(text)} is not of the form dotted.path=value", path=quoted(text, 60))
    key, _, raw = text.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ScenarioError(f"override {quoted(text)} has an empty field name", path=key or quoted(text, 60))
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except (yaml.YAMLError, ValueError):  # ValueError: an int too long to convert
        value = raw  # not YAML: take it as the literal string
    return key, value


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted paths in a copy of `data`; list items are addressed by index."""
    out = json.loads(json.dumps(data, default=str))
    for dotted, value in overrides.items():
        path = ALIASES.get(dotted, dotted).split(".")
        cur: Any = out
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if isinstance(cur, list):
                if not part.isdigit() or int(part) >= len(cur):
                    raise ScenarioError(
                        f"no list item {quoted(part)} (the list has {len(cur)} items)", path=".".join(path[: i + 1])
                    )
                idx = int(part)
                if last:
                    cur[idx] = value
                else:
                    cur = cur[idx]
            elif isinstance(cur, dict):
                if last:
                    cur[part] = value
                else:
                    if part not in cur or cur[part] is None:
                        cur[part] = {}
                    cur = cur[part]
            else:
                raise ScenarioError("cannot set a field inside a plain value", path=".".join(path[: i + 1]))
    return out


def build_scenario(
    data: dict[str, Any],
    overrides: dict[str, Any],
    *,
    file: str | None = None,
    lines: dict[tuple[Any, ...], int] | None = None,
) -> Scenario:
    try:
        merged = apply_overrides(data, overrides) if overrides else data
    except ScenarioError as exc:
        raise ScenarioError(exc.reason + " (from a command-line override)", file=file, path=exc.path) from None
    try:
        return Scenario.model_validate(merged)
    except ValidationError as exc:
        raise _explain(exc, merged, file, lines or {}, overrides) from None


def _explain(
    exc: ValidationError,
    data: dict[str, Any],
    file: str | None,
    lines: dict[tuple[Any, ...], int],
    overrides: dict[str, Any],
) -> ScenarioError:
    err = exc.errors(include_url=False)[0]
    cross = _find_cross(exc)
    if cross is not None:
        path = tuple(int(p) if p.isdigit() else p for p in cross.path.split("."))
        return ScenarioError(str(cross), file=file, path=cross.path, line=_line_for(path, lines))
    loc = _data_path(err["loc"], data)
    dotted = ".".join(str(p) for p in loc)
    overridden = any(ALIASES.get(k, k) == dotted or dotted.startswith(ALIASES.get(k, k) + ".") for k in overrides)
    line = None if overridden else _line_for(loc, lines)
    msg = err["msg"] if len(err["msg"]) <= 300 else err["msg"][:299] + "…"  # some quote the input
    if err["type"] == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        if key in _field_vocabulary():
            msg = f"key {quoted(key)} does not belong here (is it meant for another kind or section?)"
        else:
            hint = difflib.get_close_matches(key, sorted(_field_vocabulary()), n=1)
            msg = f"unknown key {quoted(key)}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    elif err["type"] == "missing":
        msg = "required field is missing"
    elif "input" in err and not isinstance(err["input"], dict | list):
        msg = f"{msg} (got {quoted(err['input'])})"
    if overridden:
        msg += " (from a command-line override)"
    return ScenarioError(msg, file=file, path=dotted or None, line=line)


def _find_cross(exc: ValidationError) -> CrossRefError | None:
    for e in exc.errors(include_url=False):
        ctx = e.get("ctx") or {}
        if isinstance(ctx.get("error"), CrossRefError):
            return ctx["error"]  # type: ignore[no-any-return]
    return None


def _data_path(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """Drop pydantic's union-tag entries so the path matches what the user wrote."""
    out: list[Any] = []
    cur = data
    for part in loc:
        in_dict = isinstance(cur, dict) and part in cur
        in_list = isinstance(cur, list) and isinstance(part, int) and part < len(cur)
        if in_dict or in_list:
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, dict) and isinstance(part, str) and part in _field_vocabulary():
            out.append(part)  # a missing or unknown field: still the user's own name
            cur = None
    return tuple(out)


def _line_for(path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    for n in range(len(path), 0, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


_VOCAB: set[str] = set()


def _field_vocabulary() -> set[str]:
    if not _VOCAB:
        seen: set[type] = set()

        def walk(model: type[BaseModel]) -> None:
            if model in seen:
                return
            seen.add(model)
            for name, f in model.model_fields.items():
                _VOCAB.add(name)
                for t in _models_in(f.annotation):
                    walk(t)

        walk(Scenario)
    return _VOCAB


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        out.extend(_models_in(arg))
    return out
