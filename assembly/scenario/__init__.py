"""Scenarios: the schema assembled from the protocol registry, and loading with exact errors.

`load_scenario(path, overrides)` reads a YAML file, applies `--set`-style overrides
and validates everything before a run starts; every error names the file, the
dotted field path and the line. The protocol-agnostic parts of the schema live in
`assembly.core.spec`, each protocol's own settings in its package.
"""

from __future__ import annotations

from assembly.scenario.loading import ALIASES, build_scenario, load_scenario, parse_override
from assembly.scenario.model import Scenario

__all__ = ["ALIASES", "Scenario", "build_scenario", "load_scenario", "parse_override"]
