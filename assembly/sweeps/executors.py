"""Where the runs of a sweep execute: one event loop, worker processes, or Ray.

All executors run the same job function (`run_job`), which turns a `Job` (a resolved
scenario and a run folder) into a normal run folder and a `JobResult`. A run that
raises becomes a failed result with its error; it never stops the sweep. The sweep
decides what to run and what a result means; executors only decide where.

- `local`: runs share one asyncio event loop, at most `concurrency` at a time. LLM
  runs spend their time waiting on I/O, so this is the right place for them, and
  in-process model limits (`max_concurrent`, `rpm` of a profile) then hold for the
  whole sweep.
- `process`: a pool of worker processes, for sim-only sweeps, which are CPU-bound.
- `ray`: each run is a Ray task; the run folder must be on storage every node sees.

Executors submit lazily and ask `should_stop()` before each new run, so a spend
limit stops a sweep between runs without cancelling any.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from assembly.core.errors import UserError, storage_error
from assembly.core.redaction import redact, scrub

if TYPE_CHECKING:
    from assembly.llm.setup import LLMSetup

ERROR_FILE = "error.txt"


@dataclass(frozen=True)
class Job:
    key: str  # run key of `scenario`; checked again in the worker
    run_dir: str
    scenario: dict[str, Any]  # resolved scenario (plain JSON), so jobs pickle and ship anywhere
    # Model profiles and cache for LLM seats, carried by the job because worker
    # processes and Ray tasks share no state with the parent.
    llm: LLMSetup | None = None


@dataclass(frozen=True)
class JobResult:
    key: str
    run_dir: str
    summary: dict[str, Any] | None
    error: str | None = None
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.summary is not None


OnDone = Callable[[JobResult], None]
ShouldStop = Callable[[], bool]


async def run_job_async(job: Job) -> JobResult:
    """Run one job into its folder; an exception becomes a failed result (and error.txt)."""
    from assembly.core.spec import run_key
    from assembly.launch import execute
    from assembly.scenario.model import Scenario

    t0 = time.perf_counter()
    run_dir = Path(job.run_dir)
    try:
        scenario = Scenario.model_validate(job.scenario)
        if run_key(scenario) != job.key:
            raise RuntimeError(
                f"resolved scenario does not reproduce run key {job.key}; "
                "this assembly version resolves scenarios differently"
            )
        clear_attempt(run_dir)
        factory = None
        if job.llm is not None:
            from assembly.llm.keys import register_env_secrets
            from assembly.llm.member import factory_for

            register_env_secrets()  # the scrubber's registry is per process
            factory = factory_for(job.llm)
        # A sweep re-runs an unfinished run whole on --resume, so per-round fsync only
        # pays off where a re-run costs money: runs with LLM seats.
        summary = await execute(scenario, run_dir, factory=factory, durable=job.llm is not None)
    except Exception as exc:
        return _failed(job, run_dir, exc, time.perf_counter() - t0)
    return JobResult(job.key, job.run_dir, summary, None, time.perf_counter() - t0)


def _failed(job: Job, run_dir: Path, exc: Exception, wall_s: float) -> JobResult:
    """A run that raised, as a failed result and an error.txt (keys redacted in both).

    A user error or an OS refusal (a folder that cannot be written, another process
    writing the run) is recorded as its one-line message; anything else as the
    exception and, in error.txt, its traceback. If even error.txt cannot be written,
    the result still carries the message."""
    expected = isinstance(exc, UserError | OSError)
    if isinstance(exc, OSError):
        exc = storage_error(exc, "write the run in", run_dir)
    message = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
    with contextlib.suppress(OSError):
        run_dir.mkdir(parents=True, exist_ok=True)
        detail = message + "\n" if expected else traceback.format_exc()
        (run_dir / ERROR_FILE).write_text(redact(detail), encoding="utf-8")
    return JobResult(job.key, job.run_dir, None, scrub(message, 2000), wall_s)


def clear_attempt(run_dir: Path) -> None:
    """Remove an earlier, unfinished attempt at a run, but keep its response cache: the
    same seed asks the same first questions, so a re-run replays what was paid for."""
    from assembly.llm.setup import CACHE_DIR

    if not run_dir.is_dir():
        return  # nothing to clear; if a file is in the way, the run reports it
    for child in run_dir.iterdir():
        if child.name == CACHE_DIR and child.is_dir():
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def run_job(job: Job) -> JobResult:
    """Synchronous entry point for worker processes and Ray tasks."""
    return asyncio.run(run_job_async(job))


class Executor(ABC):
    name: ClassVar[str]

    def __init__(self, concurrency: int) -> None:
        self.concurrency = max(1, concurrency)

    @abstractmethod
    def run(self, jobs: Iterable[Job], on_done: OnDone, should_stop: ShouldStop) -> None:
        """Run jobs, calling `on_done` (in the caller's thread) as each finishes.

        KeyboardInterrupt propagates to the caller once no finished run is left
        unreported; runs cut short stay incomplete on disk and are re-run on resume.
        """


def _next(jobs: Iterator[Job], should_stop: ShouldStop) -> Job | None:
    return None if should_stop() else next(jobs, None)


class LocalExecutor(Executor):
    name = "local"

    def run(self, jobs: Iterable[Job], on_done: OnDone, should_stop: ShouldStop) -> None:
        asyncio.run(self._run(iter(jobs), on_done, should_stop))

    async def _run(self, jobs: Iterator[Job], on_done: OnDone, should_stop: ShouldStop) -> None:
        # N workers pulling from one iterator: never more than N runs in flight, and
        # a stop request is seen before each new run starts.
        async def worker() -> None:
            while (job := _next(jobs, should_stop)) is not None:
                on_done(await run_job_async(job))

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))


def _ignore_sigint() -> None:
    # Ctrl-C is the parent's to handle: it stops submitting and lets running sim
    # runs (well under a second each) finish, instead of every worker printing a
    # KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


POOL_BROKEN = (
    "a worker process died, so the process executor cannot go on (finished runs are kept; "
    "--resume continues). If this is a Python script calling run_sweep, guard it with "
    "`if __name__ == '__main__':`; otherwise check memory, or use --executor local"
)


class ProcessExecutor(Executor):
    name = "process"

    def __init__(self, concurrency: int) -> None:
        super().__init__(min(concurrency, os.cpu_count() or 1))

    def run(self, jobs: Iterable[Job], on_done: OnDone, should_stop: ShouldStop) -> None:
        import multiprocessing

        # forkserver: workers fork from a clean server (never from a parent that runs
        # rich's refresh thread) with the heavy imports already done.
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["assembly.sweeps.executors", "assembly.core.run"])
        pool = ProcessPoolExecutor(self.concurrency, mp_context=ctx, initializer=_ignore_sigint)
        it = iter(jobs)
        running: dict[Future[JobResult], Job] = {}
        try:
            while True:
                while len(running) < self.concurrency and (job := _next(it, should_stop)) is not None:
                    try:
                        running[pool.submit(run_job, job)] = job
                    except BrokenProcessPool:
                        raise UserError(POOL_BROKEN) from None
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    on_done(_result(fut, running.pop(fut)))
        except KeyboardInterrupt:
            for fut in wait(running).done:  # nothing new starts; report what finishes
                on_done(_result(fut, running[fut]))
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _result(fut: Future[JobResult], job: Job) -> JobResult:
    try:
        return fut.result()
    except Exception as exc:  # the worker died (e.g. out of memory): record, go on
        return JobResult(job.key, job.run_dir, None, f"worker failed: {type(exc).__name__}: {exc}")


RAY_MISSING = "the ray executor needs Ray, an optional extra: pip install -e '.[ray]' (or pip install 'ray[default]')"


class RayExecutor(Executor):
    """Each run is a Ray task (1 CPU) writing its own folder on shared storage.

    `address` is passed to `ray.init` ("auto" joins a running cluster, None starts a
    local one). If Ray is already initialized (a notebook, a test), that session is
    used and left running.
    """

    name = "ray"

    def __init__(self, concurrency: int, address: str | None = None) -> None:
        super().__init__(concurrency)
        self.address = address

    def run(self, jobs: Iterable[Job], on_done: OnDone, should_stop: ShouldStop) -> None:
        try:
            import ray
        except ImportError:
            raise UserError(RAY_MISSING) from None
        owned = not ray.is_initialized()
        if owned:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        task = ray.remote(num_cpus=1, max_retries=0)(run_job)
        it = iter(jobs)
        running: dict[Any, Job] = {}
        try:
            while True:
                while len(running) < self.concurrency and (job := _next(it, should_stop)) is not None:
                    running[task.remote(job)] = job
                if not running:
                    break
                ready, _ = ray.wait(list(running), num_returns=1)
                for ref in ready:
                    job = running.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as exc:  # task or worker failure: record, go on
                        result = JobResult(job.key, job.run_dir, None, f"ray task failed: {exc}")
                    on_done(result)
        except KeyboardInterrupt:
            for ref in running:
                ray.cancel(ref, force=True)
            raise
        finally:
            if owned:
                ray.shutdown()


def make_executor(kind: str, concurrency: int, address: str | None = None) -> Executor:
    if address is not None and kind != "ray":
        raise UserError(f"--address is a Ray cluster address; it does not apply to --executor {kind}")
    if kind == "local":
        return LocalExecutor(concurrency)
    if kind == "process":
        return ProcessExecutor(concurrency)
    if kind == "ray":
        return RayExecutor(concurrency, address)
    raise UserError(f"unknown executor {kind!r}; choose local, process or ray")
