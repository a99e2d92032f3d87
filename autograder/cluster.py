"""Grading past one machine: one Dask task per submission on a Dask distributed cluster.

    summary = grade_batch_on_cluster(paths, options, scheduler="tcp://head:8786")
    summary = grade_batch_on_cluster(paths, options, scheduler="local:4")   # LocalCluster

What crosses the network is data, not paths: each task carries the submission's bytes (and
the source notebook's, for the instructor's setup cells), so workers need the kit and the same
hidden suites installed, not the course's files. On the worker, `GradingPlugin` (a Dask worker
plugin, set up once per worker) warms the Numba cache and keeps one `autograder.pool`
grading process, the same `GradingWorker` that `--jobs` uses: same sandbox, same scores, and a
grading process that dies or overruns its submission's time is replaced and only that
submission is charged (two attempts, then an internal-error result that says why).

Each result is written atomically by the client as soon as its task completes, under the same
key as a local grading, so a batch whose client or scheduler dies loses nothing already
written and a re-run resumes. A Dask worker that dies (a lost node, the OOM killer) has its
task rescheduled by the scheduler; a submission whose task killed workers more often than the
scheduler's `allowed-failures` gets an internal-error result with Dask's reason, and no other
submission is charged. The result's `run` block records the worker host and Dask address.

Worker processes must be allowed to start the grading process: a Nanny's worker is daemonic
by default, so workers run with `distributed.worker.daemon: false` (`local:N` sets it; for
`dask worker` set DASK_DISTRIBUTED__WORKER__DAEMON=False, or use --no-nanny).
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

from autograder import results
from autograder.runner import (
    BatchSummary,
    GradeOptions,
    Job,
    finish_batch,
    grade_submission,
    internal_error_result,
    load_submission,
    plan_batch,
    submission_inputs,
    warm_up,
    worker_pool,
)

__all__ = ["ClusterJob", "GradingPlugin", "grade_batch_on_cluster", "open_client",
           "ATTEMPTS", "CLUSTER_CONFIG", "plugin_name", "task_key"]

ATTEMPTS = 3          # Dask worker deaths a submission may cause before it is given up
# Dask settings for grading (`local:N` sets them; set them on a remote cluster's scheduler and
# workers, e.g. as DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION=1.0): worker processes that
# may start the grading process, one submission per worker at a time and no work stealing
# (so that a worker's death is charged to the one submission it held), ATTEMPTS deaths per
# submission.
CLUSTER_CONFIG = {"distributed.worker.daemon": False,
                  "distributed.scheduler.worker-saturation": 1.0,
                  "distributed.scheduler.work-stealing": False,
                  "distributed.scheduler.allowed-failures": ATTEMPTS - 1}


@dataclass(frozen=True)
class ClusterJob:
    """One submission as a Dask task: its name and bytes, where it sits in nbgrader's layout
    (`student` or None), the source notebook's bytes (or None) and the client's path."""

    name: str
    filename: str
    data: bytes
    student: str | None
    source_name: str | None
    source_data: bytes | None
    client_path: str


def plugin_name(assignment: str, suite_version: str) -> str:
    return f"autograder-{assignment}-{suite_version}"


def task_key(assignment: str, name: str, key: str) -> str:
    """The Dask key of a submission's task: same submission and suite, same key."""
    return f"autograde-{assignment}-{name}-{key[:16]}"


class GradingPlugin(WorkerPlugin):
    """A Dask worker plugin: one grading process (`autograder.pool`) per Dask worker.

    `setup` runs on each worker as it joins (also a worker the Nanny restarted): it warms the
    Numba cache and makes a scratch folder; the grading process starts with the first task.
    """

    def __init__(self, options: GradeOptions, suite_version: str):
        self.options = replace(options, out_dir=None, source_dir=None)
        self.suite_version = suite_version
        self.pool = None
        self.scratch: str | None = None
        self.address = ""
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        return {"options": self.options, "suite_version": self.suite_version}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["options"], state["suite_version"])

    def setup(self, worker) -> None:
        import multiprocessing
        if multiprocessing.current_process().daemon:
            raise RuntimeError("this Dask worker is a daemonic process and cannot start the "
                               "grading process: run workers with DASK_DISTRIBUTED__WORKER__"
                               "DAEMON=False (or `dask worker --no-nanny`)")
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        warm_up(self.options.assignment)
        self.scratch = tempfile.mkdtemp(prefix="autograder-dask-")
        self.address = str(worker.address)

    def teardown(self, worker) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def grade(self, job: ClusterJob) -> dict:
        """The result, or {"internal_error": why, "detail": ...} if the grading process died
        or overran on each of the pool's attempts (the client makes that an internal-error
        result, as `--jobs` does)."""
        if self.scratch is None:
            raise RuntimeError(f"the autograder plugin of Dask worker {self.address or '?'} "
                               "did not set up (see the worker's log)")
        with self._lock:                    # one grading process: one submission at a time
            if self.pool is None:
                self.pool = worker_pool(self.options.assignment, size=1, options=self.options,
                                        suite_version=self.suite_version)
            folder = Path(tempfile.mkdtemp(dir=self.scratch))
            try:
                local_job = self._materialise(job, folder)
                outcome = self.pool.grade(local_job)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        if not outcome.ok:
            return {"internal_error": outcome.error, "detail": outcome.detail,
                    "host": platform.node(), "dask_worker": self.address}
        result = dict(outcome.value)
        result["submission"] = dict(result["submission"], path=job.client_path)
        result["run"] = dict(result.get("run", {}), host=platform.node(),
                             dask_worker=self.address)
        return result

    def _materialise(self, job: ClusterJob, folder: Path) -> Job:
        """Write the submission (in nbgrader's layout if it came from there) and its source
        notebook below `folder`; the grading process reads them as it reads local files."""
        assignment = self.options.assignment
        if job.student is not None:
            path = folder / "submitted" / job.student / assignment / job.filename
        else:
            path = folder / "submission" / job.filename
        path.parent.mkdir(parents=True)
        path.write_bytes(job.data)
        source_dir = None
        if job.source_data is not None:
            source_dir = folder / "source"
            (source_dir / assignment).mkdir(parents=True)
            (source_dir / assignment / job.source_name).write_bytes(job.source_data)
        return Job(options=replace(self.options, source_dir=source_dir), name=job.name,
                   path=str(path))


def _grade_task(job: ClusterJob, plugin: str) -> dict:
    """Runs on a Dask worker: grade with that worker's GradingPlugin."""
    from distributed import get_worker
    return get_worker().plugins[plugin].grade(job)


# ----------------------------------------------------------------------------- the client side

def open_client(scheduler: str, *, connect_timeout: float = 30.0):
    """(client, cluster or None): `local:N` starts a LocalCluster of N one-thread worker
    processes on 127.0.0.1 with no dashboard; anything else is a scheduler address."""
    import dask
    from distributed import Client, LocalCluster
    if scheduler.startswith("local:"):
        count = scheduler.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"scheduler must be local:N with N >= 1 or an address such as "
                             f"tcp://host:8786; got {scheduler!r}")
        # Kept for the life of this process: the Nanny reads them again when it restarts
        # a worker that died.
        dask.config.set(CLUSTER_CONFIG)
        cluster = LocalCluster(n_workers=int(count), threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None, silence_logs=40)
        return Client(cluster, timeout=connect_timeout), cluster
    return Client(scheduler, timeout=connect_timeout), None


def _cluster_job(path: Path, name: str, options: GradeOptions, suite) -> tuple[ClusterJob, str]:
    """The task for `path` and its result key (the same key a local grading computes)."""
    data, sub, source, key = submission_inputs(path, options, suite)
    return ClusterJob(name=name, filename=path.name, data=data, student=sub.student,
                      source_name=source.name if source else None,
                      source_data=source.read_bytes() if source else None,
                      client_path=str(path)), key


def _killed_result(path: Path, name: str, options: GradeOptions, suite, why: str) -> dict:
    return internal_error_result(
        path, name, options, suite,
        f"its grading task killed {ATTEMPTS} Dask workers or more and was given up: {why}")


def grade_batch_on_cluster(paths: list[Path], options: GradeOptions, *, scheduler: str,
                           shard: tuple[int, int] | None = None, force: bool = False,
                           progress: bool = True, gradebook: bool = True,
                           batch_timeout: float | None = None) -> BatchSummary:
    """Grade `paths` on the Dask cluster `scheduler` (an address, or local:N); results are
    written to options.out_dir as they complete, and up-to-date ones are skipped, exactly as
    `autograder.runner.grade_batch` does. `batch_timeout`: seconds before giving up waiting."""
    from autograder.suites import load_suite
    started = time.monotonic()
    suite = load_suite(options.assignment)
    summary = BatchSummary()
    names, paths = plan_batch(paths, options, suite, shard=shard, force=force, summary=summary)
    todo: list[tuple[Path, ClusterJob, str]] = []
    for path in paths:
        if load_submission(path, options.assignment)[1] is not None:
            # Not a regular file: graded here at once (no code runs), as the runner does.
            summary.graded.append(names[path])
            summary.results.append(grade_submission(path, options, names[path], suite=suite))
        else:
            todo.append((path, *_cluster_job(path, names[path], options, suite)))
    if todo:
        _grade_on_cluster(todo, options, suite, scheduler, progress, batch_timeout, summary)
    return finish_batch(options, suite, summary, gradebook=gradebook, started=started)


def _grade_on_cluster(todo, options: GradeOptions, suite, scheduler: str, progress: bool,
                      batch_timeout: float | None, summary: BatchSummary) -> None:
    from distributed import as_completed
    from distributed.scheduler import KilledWorker
    from tqdm import tqdm
    if scheduler.startswith("local:"):
        warm_up(options.assignment)     # one host: fill Numba's cache before workers race
    client, cluster = open_client(scheduler)
    bar = tqdm(total=len(todo), desc=f"grading {options.assignment} on Dask",
               unit="submission", disable=not progress, mininterval=0.5)
    try:
        name = plugin_name(options.assignment, suite.version)
        client.register_plugin(GradingPlugin(options, suite.version), name=name)
        futures = {client.submit(_grade_task, job, name, pure=False, retries=0,
                                 key=task_key(options.assignment, job.name, key)): (path, job)
                   for path, job, key in todo}
        # Results are fetched as soon as they exist: a result still held by a worker that
        # dies is lost with it, and Dask grades that submission again.
        completed = as_completed(list(futures), timeout=batch_timeout, with_results=True,
                                 raise_errors=False)
        for future, value in completed:
            path, job = futures.pop(future)
            job_name = job.name
            try:
                if future.status == "error":
                    raise future.exception(timeout=60)
                result = value
            except KilledWorker as exc:
                result = _killed_result(path, job_name, options, suite, str(exc))
                summary.failed[job_name] = str(exc)
            else:
                if "internal_error" in result:
                    summary.failed[job_name] = result["internal_error"]
                    result = internal_error_result(path, job_name, options, suite,
                                                   result["internal_error"], result["detail"])
                else:
                    summary.graded.append(job_name)
            if options.out_dir is not None:
                results.write_result(options.out_dir, result)
            summary.results.append(result)
            future.release()
            bar.update(1)
    finally:
        bar.close()
        client.close(timeout=30)
        if cluster is not None:
            cluster.close(timeout=30)
