"""assembly: simulate citizen assemblies of LLM agents.

The public API is small on purpose (see `assembly.api` and the README):

- `run`, `arun`: one run from a scenario file or object, returning a `RunResult`;
- `sweep`, `asweep`: a grid of runs from a sweep file or object, a `SweepResult`;
- `load_runs`, `load_rounds`, `load_turns`, `load_votes`, `load_members`: finished
  runs and sweeps as pandas tables.

Every name is imported on first use (module `__getattr__`), so `import assembly`
stays fast and pulls in neither pandas, matplotlib nor any model SDK.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it
_LAZY = {
    "run": "assembly.api",
    "arun": "assembly.api",
    "sweep": "assembly.api",
    "asweep": "assembly.api",
    "RunResult": "assembly.api",
    "SweepResult": "assembly.api",
    "load_runs": "assembly.sweeps.tables",
    "load_rounds": "assembly.sweeps.tables",
    "load_turns": "assembly.sweeps.tidy",
    "load_votes": "assembly.sweeps.tidy",
    "load_members": "assembly.sweeps.tidy",
}

__all__ = [
    "RunResult",
    "SweepResult",
    "__version__",
    "arun",
    "asweep",
    "load_members",
    "load_rounds",
    "load_runs",
    "load_turns",
    "load_votes",
    "run",
    "sweep",
]

if TYPE_CHECKING:
    from assembly.api import RunResult, SweepResult, arun, asweep, run, sweep
    from assembly.sweeps.tables import load_rounds, load_runs
    from assembly.sweeps.tidy import load_members, load_turns, load_votes


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'assembly' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
