"""The Python API: runs and sweeps from plain code, from inside a running event loop
(as in Jupyter), and from async code; no half-made folders after a failure."""

from __future__ import annotations

import _thread
import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import assembly
from assembly.core.errors import UserError
from assembly.core.loops import run_sync
from assembly.core.transcript import SUMMARY, TRANSCRIPT, canonical, read_transcript
from assembly.scenario.loading import load_scenario
from tests.conftest import ROOT, SCENARIOS, run_cli

SWEEP = """\
name: api_sweep
scenario: {scenario}
grid:
  members: [6, 8]
set:
  rounds: 2
seeds: 2
concurrency: 2
"""


def _turn_lines(run_dir: Path) -> int:
    return sum(line.startswith('{"type":"turn"') for line in (run_dir / TRANSCRIPT).read_text().splitlines())


def _sweep_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sweep.yaml"
    path.write_text(SWEEP.format(scenario=SCENARIOS / "hidden_profile.yaml"))
    return path


class Ticker:
    """Another task on the loop, counting how often it got to run."""

    def __init__(self) -> None:
        self.ticks = 0
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Ticker:
        self.task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()

    async def _tick(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0)


def test_import_assembly_stays_light() -> None:
    code = (
        "import sys, assembly; "
        "print([m for m in ('pandas', 'matplotlib', 'typer', 'autogen_core', 'assembly.api') if m in sys.modules]); "
        "print(sorted(assembly.__all__))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded, names = done.stdout.splitlines()
    assert loaded == "[]"
    assert set(json.loads(names.replace("'", '"'))) == {*assembly._LAZY, "__version__"}
    assert callable(assembly.run) and callable(assembly.load_members)  # resolved on first use


def test_run_from_plain_code_matches_the_cli(tmp_path: Path) -> None:
    result = assembly.run(SCENARIOS / "hidden_profile.yaml", seed=4, rounds=3, out=tmp_path / "api")
    assert result.path == tmp_path / "api"
    assert result.summary == json.loads((result.path / SUMMARY).read_text())
    assert (
        len(result.rounds) == result.summary["rounds"]
        and list(result.rounds["round"]) == [1, 2, 3][: len(result.rounds)]
    )
    assert len(result.turns) == _turn_lines(result.path)
    cli = run_cli(
        "run",
        str(SCENARIOS / "hidden_profile.yaml"),
        "--seed",
        "4",
        "--rounds",
        "3",
        "--out",
        str(tmp_path / "cli"),
        "-q",
    )
    assert cli.returncode == 0, cli.stderr
    assert canonical(read_transcript(result.path).events) == canonical(read_transcript(tmp_path / "cli").events)


def test_run_accepts_a_loaded_scenario_and_overrides(tmp_path: Path) -> None:
    sc = load_scenario(SCENARIOS / "split_51_49.yaml")
    result = assembly.run(sc, members=12, overrides={"protocol.quorum": 0.75}, out=tmp_path / "run")
    started = read_transcript(result.path).started
    assert started.scenario["population"]["size"] == 12 and started.scenario["protocol"]["quorum"] == 0.75
    assert result.summary["members"] == 12


def test_a_bad_run_raises_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"protocol\.quorum"):
        assembly.run(SCENARIOS / "hidden_profile.yaml", overrides={"protocol.quorum": 1.5}, out=tmp_path / "bad")
    with pytest.raises(UserError, match="unknown model profile"):
        assembly.run(SCENARIOS / "hidden_profile.yaml", model="no-such-profile", out=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_sync_run_and_sweep_inside_a_running_event_loop(tmp_path: Path) -> None:
    """As in a Jupyter cell: the thread already runs a loop. The sync API must neither
    fail ("asyncio.run() cannot be called from a running event loop") nor deadlock,
    and the loop's other tasks go on once it returns."""

    async def main() -> None:
        async with Ticker() as ticker:
            before = ticker.ticks
            run = assembly.run(SCENARIOS / "hidden_profile.yaml", seed=1, out=tmp_path / "run")
            grid = assembly.sweep(_sweep_file(tmp_path / "spec"), out=tmp_path / "sweep", executor="local")
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            assert ticker.ticks > before  # the loop was not left blocked
        assert run.summary["status"] == "complete" and len(run.turns) == _turn_lines(run.path)
        assert len(grid.results) == 4 and set(grid.results["status"]) == {"complete"}
        assert len(grid.summary) == 2 and set(grid.summary["n"]) == {2}

    asyncio.run(main())


def test_async_api_leaves_the_loop_free(tmp_path: Path) -> None:
    async def main() -> None:
        async with Ticker() as ticker:
            before = ticker.ticks
            run = await assembly.arun(SCENARIOS / "hidden_profile.yaml", seed=2, out=tmp_path / "run")
            after_run = ticker.ticks
            grid = await assembly.asweep(_sweep_file(tmp_path / "spec"), out=tmp_path / "sweep")
            after_sweep = ticker.ticks
        assert before < after_run < after_sweep  # the ticker ran while the run and the sweep worked
        assert run.summary["status"] == "complete"
        assert len(grid.results) == 4

    asyncio.run(main())


def test_an_executor_that_fails_before_any_run_leaves_no_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # the Ray executor cannot start
    spec = _sweep_file(tmp_path / "spec")

    async def main() -> None:
        with pytest.raises(UserError, match="ray"):
            assembly.sweep(spec, out=tmp_path / "sweep", executor="ray")

    asyncio.run(main())
    assert not (tmp_path / "sweep").exists()  # so the retry is not refused
    again = assembly.sweep(spec, out=tmp_path / "sweep", executor="local")
    assert len(again.results) == 4


class Slow:
    """A coroutine that waits a minute unless cancelled, and says whether it was."""

    def __init__(self) -> None:
        self.started, self.cancelled = threading.Event(), threading.Event()

    async def __call__(self) -> None:
        self.started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    def interrupt_when_started(self) -> None:
        def press() -> None:
            self.started.wait()
            _thread.interrupt_main()  # what Ctrl-C (or a Jupyter kernel's interrupt) does

        threading.Thread(target=press, daemon=True).start()


@pytest.mark.parametrize("driver", ["asyncio.run", "plain loop"])
def test_ctrl_c_while_waiting_cancels_the_work_on_its_thread(driver: str) -> None:
    """asyncio.run turns Ctrl-C into cancelling its main task; a plain loop (like a
    Jupyter kernel's) gets a KeyboardInterrupt. Either way the work is cancelled."""
    slow = Slow()

    async def main() -> None:
        slow.interrupt_when_started()
        run_sync(slow())

    with pytest.raises(KeyboardInterrupt):
        if driver == "asyncio.run":
            asyncio.run(main())
        else:
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(main())
            finally:
                loop.close()
    assert slow.cancelled.is_set()


def test_model_options_build_the_setup_the_cli_builds(tmp_path: Path) -> None:
    """`model=` and `api_base=` mean `--model` and `--api-base`: against the same
    (deterministic) server, the API and the CLI write the same transcript."""
    from tests.fake_openai import FakeOpenAIServer

    args = {"seed": 5, "members": 4, "rounds": 2}
    with FakeOpenAIServer(seed=3) as server:
        api = assembly.run(
            SCENARIOS / "hidden_profile.yaml",
            model="openai/fake-model",
            api_base=server.base_url,
            out=tmp_path / "api",
            **args,
        )
        cli = run_cli(
            "run",
            str(SCENARIOS / "hidden_profile.yaml"),
            *[f"--{k}={v}" for k, v in args.items()],
            "--model=openai/fake-model",
            f"--api-base={server.base_url}",
            f"--out={tmp_path / 'cli'}",
            "-q",
        )
    assert cli.returncode == 0, cli.stderr
    assert api.summary["totals"]["calls"] > 0 and set(api.turns["policy"]) == {"llm"}
    assert canonical(read_transcript(api.path).events) == canonical(read_transcript(tmp_path / "cli").events)
