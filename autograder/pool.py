"""A pool of spawned worker processes in which the parent knows which job each worker holds.

    with WorkerPool(GradingWorker, ("a3_convolutional_nets",), size=2, job_timeout=240) as pool:
        for job, outcome in pool.run(jobs):
            ...   # outcome.ok and outcome.value, or outcome.error saying why not

Each worker is a fresh interpreter (the multiprocessing "spawn" context: Numba and OpenMP are
not fork-safe) that builds its worker object once, `factory(*args)`, says it is ready, and
then answers one job at a time with `worker.grade(job)`. The parent gives a worker a job only
when it is ready and idle, so it always knows whose job a worker holds. A worker that dies,
or holds one job longer than `job_timeout` seconds, is killed and replaced, never reused, and
only the job it held is charged an attempt: after `attempts` attempts that job's outcome is a
failure saying why; the other jobs never notice. An exception raised by `grade` is the job's
failure at once (the worker itself is fine and keeps working).

Jobs and results cross the process boundary with multiprocessing's pickle: both ends are the
grader's own trusted code (student code runs in sandboxes, further down).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import signal
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

__all__ = ["WorkerPool", "Outcome"]


@dataclass
class Outcome:
    """What became of one job: `value` if `ok`, else `error` (one line) and `detail`."""

    ok: bool
    value: object = None
    error: str = ""
    detail: str = ""


def _serve(conn, factory: Callable, args: tuple) -> None:
    """The worker process: build the worker object, then grade jobs until told to stop."""
    try:
        worker = factory(*args)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which stops
        conn.send(("failed", f"{type(exc).__name__}: {exc}", traceback.format_exc()[-4000:]))
        return
    conn.send(("ready", None, ""))
    try:
        while True:
            try:
                job = conn.recv()
            except EOFError:
                break
            if job is None:
                break
            try:
                conn.send(("done", worker.grade(job), ""))
            except Exception as exc:  # noqa: BLE001 - one job's failure, not the worker's
                conn.send(("raised", f"{type(exc).__name__}: {exc}"[:2000],
                           traceback.format_exc()[-4000:]))
    finally:
        close = getattr(worker, "close", None)
        if close is not None:
            close()


class _Slot:
    """One worker process and the job it holds (`job` is the job's index, or None)."""

    def __init__(self, context, factory: Callable, args: tuple):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, factory, args), daemon=True)
        self.process.start()
        child.close()
        self.started = time.monotonic()
        self.ready = False
        self.job: int | None = None
        self.deadline = float("inf")

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=30)
        self.conn.close()

    def stop(self) -> None:
        """Ask an idle worker to finish (it closes its spare sandbox), then make sure."""
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(timeout=10)
        self.kill()


def _death(slot: _Slot) -> str:
    code = slot.process.exitcode
    if code is not None and code < 0:
        try:
            return f"the grading worker was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"the grading worker was killed by signal {-code}"
    return f"the grading worker exited with code {code}"


class WorkerPool:
    """Up to `size` spawned workers; see the module docstring."""

    def __init__(self, factory: Callable, args: tuple = (), *, size: int = 1,
                 job_timeout: float, attempts: int = 2, start_timeout: float = 600.0):
        self.factory, self.args = factory, tuple(args)
        self.size = max(1, int(size))
        self.job_timeout = float(job_timeout)
        self.attempts = attempts
        self.start_timeout = start_timeout
        self.context = multiprocessing.get_context("spawn")
        self.slots: list[_Slot] = []
        self.replaced = 0           # workers killed or lost and replaced (for reports, tests)
        self._failed_starts = 0     # workers in a row that died before they were ready

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for slot in self.slots:
            if slot.job is None and slot.process.is_alive():
                slot.stop()
            else:
                slot.kill()
        self.slots = []

    def grade(self, job) -> Outcome:
        """One job (with the same attempts and bounds as `run`)."""
        return next(self.run([job]))[1]

    def run(self, jobs: Iterable) -> Iterator[tuple[object, Outcome]]:
        """(job, outcome) for every job, in the order they finish."""
        jobs = list(jobs)
        pending = deque(range(len(jobs)))
        tries = [0] * len(jobs)
        left = len(jobs)
        while left:
            self._staff(len(pending))
            for slot in self.slots:
                if slot.ready and slot.job is None and pending:
                    index = pending.popleft()
                    try:
                        slot.conn.send(jobs[index])
                    except OSError:         # it died while idle: `_wait` replaces it
                        pending.appendleft(index)
                        continue
                    slot.job, slot.deadline = index, time.monotonic() + self.job_timeout
            for index, outcome in self._wait(tries, pending):
                left -= 1
                yield jobs[index], outcome

    # --- the parent's bookkeeping
    def _staff(self, waiting: int) -> None:
        """Start workers while jobs wait and fewer than `size` are alive."""
        idle = sum(1 for s in self.slots if s.job is None)
        for _ in range(min(self.size - len(self.slots), max(waiting - idle, 0))):
            self.slots.append(_Slot(self.context, self.factory, self.args))

    def _wait(self, tries: list[int], pending: deque) -> list[tuple[int, Outcome]]:
        """Wait for a message, a death or a deadline; returns the jobs that ended."""
        now = time.monotonic()
        deadlines = [s.deadline if s.ready else s.started + self.start_timeout
                     for s in self.slots]
        timeout = max(0.0, min(deadlines, default=now + 1.0) - now)
        waitables = [s.conn for s in self.slots] + [s.process.sentinel for s in self.slots]
        multiprocessing.connection.wait(waitables, timeout=min(timeout, 5.0))
        finished: list[tuple[int, Outcome]] = []
        for slot in list(self.slots):
            message = self._receive(slot)
            if message is not None:
                kind, value, detail = message
                if kind == "ready":
                    slot.ready, self._failed_starts = True, 0
                elif kind == "failed":
                    self.close()
                    raise RuntimeError(f"a grading worker could not start: {value}\n{detail}")
                else:
                    finished.append((slot.job, Outcome(ok=kind == "done", value=value,
                                                       error="" if kind == "done" else value,
                                                       detail=detail)))
                    slot.job, slot.deadline = None, float("inf")
                continue
            late = time.monotonic() > (slot.deadline if slot.ready else
                                       slot.started + self.start_timeout)
            if slot.process.is_alive() and not late:
                continue
            why = (f"the grading worker took longer than {self.job_timeout:g} s" if late
                   else _death(slot))
            if late and not slot.ready:
                why = f"a grading worker did not start within {self.start_timeout:g} s"
            slot.kill()
            self.slots.remove(slot)
            self.replaced += 1
            if slot.job is None:
                self._failed_starts += 0 if slot.ready else 1
                if self._failed_starts >= 3:
                    self.close()
                    raise RuntimeError(f"grading workers keep failing to start: {why}")
                continue
            tries[slot.job] += 1
            if tries[slot.job] >= self.attempts:
                finished.append((slot.job, Outcome(ok=False, error=f"{why} "
                                                   f"(attempt {tries[slot.job]} of "
                                                   f"{self.attempts}; the other submissions "
                                                   "were not affected)")))
            else:
                pending.append(slot.job)
        return finished

    @staticmethod
    def _receive(slot: _Slot):
        try:
            if slot.conn.poll():
                return slot.conn.recv()
        except (EOFError, OSError):
            pass
        return None
