"""Refactors keep behaviour: shipped scenarios give the recorded transcripts.

Each case in `tests/golden/record.py` is run again through the CLI and compared
line by line with its recorded transcript, after dropping only what may differ
between two identical runs: clock fields (`timing`), the package versions of
the machine (`versions`), where and how it was launched (`provenance`: git commit,
command line, host), and each line's hash `chain`, which digests those. Key order
and every other value count (each line's `seq` too), so a change in what a run
writes fails here. Both transcripts must also verify: their chains are intact.
Re-record (and say why) only when behaviour is meant to change.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assembly.core.jsontree import without_keys
from assembly.core.transcript import read_transcript
from tests.golden.record import CASES, HERE, record

DROPPED = frozenset({"timing", "versions", "provenance", "chain"})


def _comparable(line: str) -> str:
    return json.dumps(without_keys(json.loads(line), DROPPED), separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize("name", sorted(CASES))
def test_transcript_matches_the_recorded_one(tmp_path: Path, name: str) -> None:
    path = record(name, CASES[name], tmp_path)
    assert read_transcript(path).integrity == read_transcript(HERE / f"{name}.jsonl").integrity == "verified"
    fresh = path.read_text(encoding="utf-8").splitlines()
    golden = (HERE / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    for i, (got, want) in enumerate(zip(fresh, golden, strict=False), start=1):
        assert _comparable(got) == _comparable(want), f"{name}: line {i} differs"
    assert len(fresh) == len(golden), f"{name}: {len(fresh)} events, recorded {len(golden)}"


def test_a_changed_run_is_caught(tmp_path: Path) -> None:
    """The comparison is not vacuous: another seed gives a different transcript."""
    fresh = record("other_seed", [*CASES["hidden_profile"], "--seed", "99"], tmp_path)
    golden = (HERE / "hidden_profile.jsonl").read_text(encoding="utf-8").splitlines()
    assert [_comparable(x) for x in fresh.read_text(encoding="utf-8").splitlines()] != [_comparable(x) for x in golden]
