"""assembly: simulate citizen assemblies of LLM agents.

The public API is small on purpose: load and run scenarios from Python, or read
finished runs into pandas for analysis. Heavy imports (pandas, autogen, litellm)
happen lazily so that `import assembly` stays fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_rounds", "load_runs"]


def load_runs(path: str) -> Any:
    """One row per run found under `path` (a run folder or a sweep folder)."""
    from assembly.sweeps.tables import load_runs as _load_runs

    return _load_runs(path)


def load_rounds(path: str) -> Any:
    """One row per (run, round) found under `path`."""
    from assembly.sweeps.tables import load_rounds as _load_rounds

    return _load_rounds(path)
