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
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import threadpoolctl

__all__ = ["MIN_MACS_PER_THREAD", "over_batch"]

# Splitting a batch over threads pays only with at least this many multiply-adds per thread
# (about 0.1 ms of work; starting and joining a thread costs ~0.05 ms).
MIN_MACS_PER_THREAD = 5_000_000

_blas = None  # threadpoolctl's handle on the BLAS libraries, made on first use


def _blas_libraries() -> threadpoolctl.ThreadpoolController:
    global _blas
    if _blas is None:
        _blas = threadpoolctl.ThreadpoolController().select(user_api="blas")
    return _blas


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
    bounds = [n_items * i // threads for i in range(threads + 1)]
    results: list = [None] * threads
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = work(bounds[i], bounds[i + 1])
        except BaseException as error:  # re-raised in the calling thread below
            errors.append(error)

    with blas.limit(limits=1):
        helpers = [threading.Thread(target=run, args=(i,)) for i in range(1, threads)]
        for helper in helpers:
            helper.start()
        run(0)
        for helper in helpers:
            helper.join()
    if errors:
        raise errors[0]
    return results
