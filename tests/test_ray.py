"""The Ray executor against a real local Ray instance (2 CPUs).

Ray is an optional extra (`pip install -e '.[ray]'`); without it these tests skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (optional extra: pip install -e '.[ray]')")

from assembly.sweeps.executors import LocalExecutor, RayExecutor  # noqa: E402
from assembly.sweeps.sweep import load_sweep, run_sweep  # noqa: E402
from tests.test_sweep import comparable, write_sweep  # noqa: E402

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_tasks_write_the_same_sweep_as_the_local_executor(tmp_path: Path, ray_session: None) -> None:
    sweep = load_sweep(write_sweep(tmp_path / "spec"))
    by_ray = run_sweep(sweep, tmp_path / "ray", RayExecutor(4), draw=False)
    local = run_sweep(sweep, tmp_path / "local", LocalExecutor(2), draw=False)
    assert len(by_ray.results) == len(sweep.runs) and set(by_ray.results["status"]) == {"complete"}
    # Every run folder was written by a Ray worker into the shared sweep folder.
    for run in sweep.runs:
        assert (tmp_path / "ray" / run.dir / "summary.json").exists()
    pd.testing.assert_frame_equal(comparable(by_ray.results), comparable(local.results))
    assert ray.is_initialized()  # a session the caller started is left running


def test_ray_resume_skips_complete_runs(tmp_path: Path, ray_session: None) -> None:
    sweep = load_sweep(write_sweep(tmp_path / "spec"))
    run_sweep(sweep, tmp_path / "out", RayExecutor(2), draw=False)
    victim = tmp_path / "out" / sweep.runs[3].dir
    (victim / "summary.json").unlink()
    stamps = {r.key: (tmp_path / "out" / r.dir / "transcript.jsonl").stat().st_mtime_ns for r in sweep.runs}
    report = run_sweep(sweep, tmp_path / "out", RayExecutor(2), resume=True, draw=False)
    assert report.tally.skipped == len(sweep.runs) - 1
    changed = [
        r.key for r in sweep.runs if (tmp_path / "out" / r.dir / "transcript.jsonl").stat().st_mtime_ns != stamps[r.key]
    ]
    assert changed == [sweep.runs[3].key]
