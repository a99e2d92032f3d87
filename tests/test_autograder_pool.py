"""Grading workers: a worker that dies or stalls costs only the submission it was grading, in
`autograder grade` batches and in the nbgrader bridge, and the bridge picks up an edited suite.

The fixture suite tests/fixtures/autograder/pool_suites/pool_probe grades `answer()` (1 point
for 42); its hidden test SIGKILLs or stalls the grading worker when the answer is a marker
string, a real death of the trusted worker process (as a memory kill or a grader bug).
"""

import multiprocessing
import os
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder import results
from autograder.runner import GradeOptions, grade_batch
from autograder.sandbox import Limits

sys.path.insert(0, str(Path(__file__).parent))
POOL_SUITES = Path(__file__).parent / "fixtures" / "autograder" / "pool_suites"
PROBE = "pool_probe"
HONEST = "def answer():\n    return 42\n"
KILLER = "def answer():\n    return 'kill the grading worker'\n"
STALLER = "def answer():\n    return 'stall the grading worker'\n"
# A stalled worker is killed after submission_timeout + worker_margin = 9 s (twice).
LIMITS = Limits(call_timeout=5, load_timeout=5, submission_timeout=6)
MARGIN = 3.0

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Six honest submissions, a worker killer and a worker staller, graded with --jobs 2."""
    folder = tmp_path_factory.mktemp("subs")
    out = tmp_path_factory.mktemp("results")
    for i in range(6):
        (folder / f"honest{i}.py").write_text(HONEST)
    (folder / "killer.py").write_text(KILLER)
    (folder / "staller.py").write_text(STALLER)
    paths = sorted(folder.iterdir())
    options = GradeOptions(assignment=PROBE, out_dir=out, limits=LIMITS, worker_margin=MARGIN)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOGRADER_SUITES_PATH", str(POOL_SUITES))
        clock = time.monotonic()
        summary = grade_batch(paths, options, jobs=2, progress=False)
        seconds = time.monotonic() - clock
        again = grade_batch(paths, options, jobs=2, progress=False)
    return {"summary": summary, "again": again, "out": out, "seconds": seconds,
            "results": {r["name"]: r for r in summary.results}}


def test_a_killed_worker_costs_only_the_submission_it_was_grading(batch):
    summary = batch["summary"]
    assert sorted(summary.failed) == ["killer", "staller"]
    assert sorted(summary.graded) == [f"honest{i}" for i in range(6)]
    for i in range(6):
        result = batch["results"][f"honest{i}"]
        assert result["score"] == result["max_score"] == 1, result["tests"]
        assert result["errors"] == []
    assert "killed by SIGKILL" in summary.failed["killer"]
    assert "attempt 2 of 2" in summary.failed["killer"]


def test_a_stalled_worker_is_killed_after_the_submission_bound_and_replaced(batch):
    assert "took longer than 9 s" in batch["summary"].failed["staller"]
    # Two attempts of 9 s each, the honest ones graded alongside: far below an hour's sleep.
    assert batch["seconds"] < 120


def test_the_grader_failure_is_a_result_with_a_key_that_a_rerun_skips(batch):
    for name in ("killer", "staller"):
        result = results.read_result(batch["out"] / f"{name}.json")
        assert result["key"] and result["score"] == 0
        assert "grade it again with --force" in result["errors"][0]["message"]
        assert "grading worker" in result["errors"][0]["message"]
    again = batch["again"]
    assert sorted(again.skipped) == sorted(batch["results"]) and not again.graded


# ----------------------------------------------------------------------------- nbgrader bridge

def probe_notebook(code: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])


@pytest.fixture
def bridge(tmp_path, monkeypatch):
    """The bridge preprocessor for a scratch course, with the pool_probe suite in a copy
    that the test may edit; its workers are stopped afterwards."""
    from traitlets.config import Config

    from autograder.nbgrader_bridge import GradeWithTrustedRunner, shutdown_workers
    suites = tmp_path / "suites"
    shutil.copytree(POOL_SUITES / PROBE, suites / PROBE)
    monkeypatch.setenv("AUTOGRADER_SUITES_PATH", str(suites))
    config = Config()
    config.CourseDirectory.root = str(tmp_path / "course")
    config.GradeWithTrustedRunner.call_timeout = LIMITS.call_timeout
    config.GradeWithTrustedRunner.submission_timeout = LIMITS.submission_timeout
    config.GradeWithTrustedRunner.worker_margin = MARGIN
    yield GradeWithTrustedRunner(config=config), suites / PROBE
    shutdown_workers()


def grade(preprocessor, student: str, code: str) -> dict:
    resources = {"nbgrader": {"student": student, "assignment": PROBE, "notebook": PROBE}}
    return preprocessor.grade_notebook(probe_notebook(code), resources, PROBE)


def test_bridge_replaces_a_stalled_worker_and_grades_the_next_notebooks(bridge):
    preprocessor, _ = bridge
    assert grade(preprocessor, "alice", HONEST)["score"] == 1
    with pytest.raises(RuntimeError, match="took longer than 9 s"):
        grade(preprocessor, "mallory", STALLER)
    for student in ("bob", "carol"):
        result = grade(preprocessor, student, HONEST)
        assert result["score"] == result["max_score"] == 1, result["tests"]


def test_bridge_grades_with_a_suite_edited_while_it_runs(bridge):
    preprocessor, suite = bridge
    first = grade(preprocessor, "alice", HONEST)
    assert first["score"] == 1
    test_file = suite / "test_probe.py"
    test_file.write_text(test_file.read_text().replace("EXPECTED = 42", "EXPECTED = 43"))
    second = grade(preprocessor, "alice", HONEST)
    assert second["score"] == 0
    assert "expected 43" in second["tests"][0]["message"]
    assert second["suite_version"] != first["suite_version"]
    written = results.read_result(suite.parents[1] / "course" / "autograder-results" / PROBE
                                  / f"alice__{PROBE}.json")
    assert written["suite_version"] == second["suite_version"]


def test_bridge_workers_stop_when_asked(bridge):
    from autograder.nbgrader_bridge import shutdown_workers
    preprocessor, _ = bridge
    grade(preprocessor, "alice", HONEST)
    children = {p.pid for p in multiprocessing.active_children()}
    assert children
    shutdown_workers()
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
