"""course_lib.kernels.threads.over_batch: slices, order, errors, nesting, and fork."""
import multiprocessing
import threading

import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")

from course_lib.kernels import threads  # noqa: E402


@pytest.fixture
def three_threads(monkeypatch):
    """over_batch splits even tiny batches over 3 threads (BLAS's thread count decides)."""
    monkeypatch.setattr(threads, "MIN_MACS_PER_THREAD", 1)
    with threadpoolctl.threadpool_limits(limits=3, user_api="blas"):
        yield


def test_slices_cover_the_batch_in_order_on_three_threads(three_threads):
    seen = []

    def work(lo, hi):
        seen.append(threading.current_thread().name)
        return list(range(lo, hi))

    for _ in range(5):  # the same helpers serve call after call
        seen.clear()
        results = threads.over_batch(work, 10, 10**9)
        assert [i for part in results for i in part] == list(range(10))
        assert len(results) == 3
        assert len(set(seen)) == 3  # three different threads did the work


def test_an_error_in_a_helper_reaches_the_caller_and_the_helper_survives(three_threads):
    def work(lo, hi):
        if lo > 0:
            raise ValueError(f"slice {lo}:{hi} failed")
        return hi - lo

    with pytest.raises(ValueError, match="slice"):
        threads.over_batch(work, 9, 10**9)
    assert sum(threads.over_batch(lambda lo, hi: hi - lo, 9, 10**9)) == 9


def test_work_that_splits_again_runs_in_place(three_threads):
    """A helper that split its slice again would wait for itself: the call would hang."""
    def inner(lo, hi):
        return threading.current_thread().name

    def outer(lo, hi):
        return threads.over_batch(inner, 6, 10**9)

    outcome = []
    caller = threading.Thread(target=lambda: outcome.append(threads.over_batch(outer, 6, 10**9)),
                              daemon=True)
    caller.start()
    caller.join(timeout=30)
    assert outcome, "the nested split hung (a helper waited for work queued behind itself)"
    from_helpers = [names for names in outcome[0] if names[0].startswith("course_lib-helper")]
    assert len(from_helpers) == 2  # the two helpers each ran a slice of the outer call
    for names in from_helpers:  # and their nested calls ran in place, in one slice
        assert len(names) == 1


def _split_in_child(result):
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        threads.MIN_MACS_PER_THREAD = 1
        result.put(sum(threads.over_batch(lambda lo, hi: hi - lo, 8, 10**9)))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork")
def test_a_forked_child_starts_its_own_helpers(three_threads):
    threads.over_batch(lambda lo, hi: None, 6, 10**9)  # the parent's helpers exist now
    context = multiprocessing.get_context("fork")
    result = context.Queue()
    child = context.Process(target=_split_in_child, args=(result,))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        child.join()
    assert child.exitcode == 0, "the child hung or failed (its helpers were the parent's)"
    assert result.get(timeout=5) == 8
