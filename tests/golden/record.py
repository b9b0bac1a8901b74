"""Record the golden transcripts that `tests/test_golden.py` compares against.

The golden transcripts pin behaviour across refactors: a change that is meant to
keep behaviour must leave every one of them identical apart from provenance and
clock fields. Re-record only for a change that is meant to alter runs, and say so
in the commit message:

    .venv/bin/python -m tests.golden.record
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent.parent

# name -> arguments of `assembly run` (every shipped scenario, plus the topologies,
# Byzantine agents and fault injection, which the defaults do not exercise)
CASES: dict[str, list[str]] = {
    "citizens_assembly": ["scenarios/citizens_assembly.yaml"],
    "hidden_profile": ["scenarios/hidden_profile.yaml"],
    "split_51_49": ["scenarios/split_51_49.yaml"],
    "consensus_game": ["scenarios/consensus_game.yaml"],
    "consensus_byzantine": [
        "scenarios/consensus_game.yaml",
        "--members",
        "12",
        "--set",
        "protocol.byzantine=4",
        "--seed",
        "3",
    ],
    "tables_faults": [
        "scenarios/citizens_assembly.yaml",
        "--members",
        "30",
        "--set",
        "topology.kind=tables",
        "--set",
        "members.sim.faults.timeout_rate=0.1",
        "--set",
        "members.sim.faults.malformed_rate=0.2",
        "--set",
        "members.sim.faults.provider_error_rate=0.1",
    ],
    "small_world_schulze": [
        "scenarios/citizens_assembly.yaml",
        "--set",
        "topology.kind=small_world",
        "--set",
        "protocol.decision_rule={kind: schulze}",
        "--seed",
        "11",
    ],
}


def record(name: str, args: list[str], out_dir: Path, env: dict[str, str] | None = None) -> Path:
    run_dir = out_dir / name
    cmd = [sys.executable, "-m", "assembly.cli", "run", *args, "--out", str(run_dir), "--quiet"]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, env=env)
    return run_dir / "transcript.jsonl"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in CASES.items():
            src = record(name, args, Path(tmp))
            shutil.copyfile(src, HERE / f"{name}.jsonl")
            print(f"recorded {name}")


if __name__ == "__main__":
    main()
