"""Third-party protocols: entry points and the `ASSEMBLY_PROTOCOLS` variable.

Each names a `Protocol` subclass as `package.module:Class` under its kind. Every
entry is checked when the registry is built: the class must import, subclass
`Protocol`, be named as registered, and not clash with another kind. Any failure is
one `ProtocolRegistryError` naming the entry, which the CLI reports with exit 2.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterator
from importlib import metadata

from assembly.core.errors import ProtocolRegistryError
from assembly.core.protocol import Protocol

ENV_VAR = "ASSEMBLY_PROTOCOLS"
ENTRY_POINT_GROUP = "assembly.protocols"
_KIND = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def third_party(built_in: dict[str, type[Protocol]]) -> dict[str, type[Protocol]]:
    """`built_in` plus every protocol registered by entry point, then by `ASSEMBLY_PROTOCOLS`."""
    registry = dict(built_in)
    for source, kind, target in (*_entry_points(), *_from_env(os.environ.get(ENV_VAR, ""))):
        if kind in registry:
            raise ProtocolRegistryError(f"{source}: protocol kind {kind!r} is already registered")
        registry[kind] = _load(source, kind, target)
    return registry


def _entry_points() -> Iterator[tuple[str, str, str]]:
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "?"
        yield f"entry point {ep.name!r} of {dist} ({ENTRY_POINT_GROUP})", ep.name, ep.value


def _from_env(text: str) -> Iterator[tuple[str, str, str]]:
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        kind, sep, target = (part.strip() for part in entry.partition("="))
        if not sep:
            raise ProtocolRegistryError(f"{ENV_VAR}: entry {entry!r} is not kind=package.module:Class")
        yield f"{ENV_VAR} entry {entry!r}", kind, target


def _load(source: str, kind: str, target: str) -> type[Protocol]:
    if not _KIND.match(kind):
        raise ProtocolRegistryError(f"{source}: kind {kind!r} must be a letter then letters, digits or _")
    if not _TARGET.match(target):
        raise ProtocolRegistryError(f"{source}: {target!r} is not package.module:Class")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any failure to import the plugin is the entry's fault
        raise ProtocolRegistryError(f"{source}: cannot import {module_name!r} ({type(exc).__name__}: {exc})") from None
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Protocol)):
        what = "nothing" if cls is None else type(cls).__name__
        raise ProtocolRegistryError(f"{source}: {target} is {what}, not a subclass of assembly.core.protocol.Protocol")
    if getattr(cls, "name", None) != kind:
        raise ProtocolRegistryError(f"{source}: {target} is named {getattr(cls, 'name', None)!r}, not {kind!r}")
    config = getattr(cls, "config", None)
    tag = config.model_fields.get("kind") if isinstance(config, type) and hasattr(config, "model_fields") else None
    if tag is None or tag.default != kind:
        raise ProtocolRegistryError(
            f"{source}: {target}.config must be a ProtocolBase subclass with `kind: Literal[{kind!r}] = {kind!r}`"
        )
    return cls
