"""Threads over the batch for the layers' matrix products, with BLAS single-threaded inside.

The conv and affine layers split a batch into slices of whole samples, one per thread, and each
thread runs its matrix products with single-threaded BLAS; the Numba kernels (nogil) and BLAS
release the GIL, so the threads run in parallel. The number of threads is BLAS's configured
thread count (OPENBLAS_NUM_THREADS; the Makefile pins 1, and then everything runs serially).

Why every product inside course_lib's layers runs with BLAS at one thread, measured on the
2-core course machine:
- multithreaded BLAS on a conv layer's small per-image products: its threads synchronise on
  each product, and when another process held a core it ran up to 25x slower than one thread;
  whole-sample slices simply share the remaining core;
- OpenBLAS's worker threads keep spinning for about 0.1 s after each multithreaded product. A
  conv forward right after a 2-thread matrix product took 9.5 ms instead of 5.7 ms, because the
  spinning workers held the cores; a ThreeLayerConvNet training step went from 29.5 ms to
  23-25 ms once the affine layers stopped waking them.

The helper threads are started once and then wait for work: on the course VM, starting and
joining a new thread per call took 0.35-0.44 ms (the new thread waits for the idle vCPU to
wake), handing work to a waiting helper and getting it back 0.15-0.2 ms; a ThreeLayerConvNet
training step makes 6 split calls. The helpers are daemon threads; a forked child starts its
own when it first needs them.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Any

import threadpoolctl

__all__ = ["MIN_MACS_PER_THREAD", "over_batch"]

# Splitting a batch over threads pays only with at least this many multiply-adds per thread
# (about 0.05-0.1 ms of work). On the course VM a hand-over to a waiting helper costs 0.15-0.2
# ms, yet thresholds of 5, 25, 50 and 100 million gave the same ThreeLayerConvNet step time
# within noise (22-24 ms at 2 threads, 40 interleaved rounds), so the threshold stayed.
MIN_MACS_PER_THREAD = 5_000_000

_blas = None  # threadpoolctl's handle on the BLAS libraries, made on first use


def _blas_libraries() -> threadpoolctl.ThreadpoolController:
    global _blas
    if _blas is None:
        _blas = threadpoolctl.ThreadpoolController().select(user_api="blas")
    return _blas


class _Helpers:
    """Daemon threads that run work handed to them, one queue each, started on first use."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queues: list[queue.SimpleQueue] = []

    def at_least(self, count: int) -> list[queue.SimpleQueue]:
        """The task queues of `count` helpers (more are started when needed)."""
        with self.lock:
            while len(self.queues) < count:
                tasks: queue.SimpleQueue = queue.SimpleQueue()
                threading.Thread(target=_serve, args=(tasks,), daemon=True,
                                 name=f"course_lib-helper-{len(self.queues) + 1}").start()
                self.queues.append(tasks)
            return self.queues[:count]


_helpers = _Helpers()
_in_helper = threading.local()


def _serve(tasks: queue.SimpleQueue) -> None:
    _in_helper.active = True
    while True:
        run, done = tasks.get()
        try:
            run()
        finally:
            done.put(None)


def _forget_helpers_after_fork() -> None:  # a forked child has only the thread that forked
    global _helpers
    _helpers = _Helpers()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_helpers_after_fork)


def over_batch(work: Callable[[int, int], Any], n_items: int, macs: int) -> list:
    """Run work(lo, hi) over slices of range(n_items) in parallel; its results, in order.

    macs: the multiply-adds of the whole batch, to use fewer threads for small problems. BLAS is
    limited to one thread while the work runs (about 7 us to set and restore).
    """
    blas = _blas_libraries()
    wanted = max((lib["num_threads"] for lib in blas.info()), default=1)
    if wanted == 1:  # BLAS is single-threaded already (the Makefile's setting)
        return [work(0, n_items)]
    threads = max(1, min(wanted, n_items, macs // MIN_MACS_PER_THREAD))
    if getattr(_in_helper, "active", False):  # work that splits again runs in place
        threads = 1
    bounds = [n_items * i // threads for i in range(threads + 1)]
    results: list = [None] * threads
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = work(bounds[i], bounds[i + 1])
        except BaseException as error:  # re-raised in the calling thread below
            errors.append(error)

    with blas.limit(limits=1):
        done: queue.SimpleQueue = queue.SimpleQueue()
        helpers = _helpers.at_least(threads - 1) if threads > 1 else []
        for i, tasks in enumerate(helpers, start=1):
            tasks.put((lambda i=i: run(i), done))
        run(0)
        for _ in helpers:
            done.get()
    if errors:
        raise errors[0]
    return results
