"""`nbgrader autograde` through the trusted runner: a preprocessor that replaces Execute.

nbgrader's autograde runs two passes over each submitted notebook. The first (sanitize:
ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata) is kept
as it is: it restores edited or deleted test cells from the gradebook database. In the second
pass the kit's `nbgrader_config.py` replaces `Execute` (and `IgnorePattern`) by
`GradeWithTrustedRunner`, which

1. grades the sanitized notebook with `autograder.runner` in a separate worker process (the
   student's code runs in the sandbox, the hidden suite in the worker; no kernel is started
   and nothing of the notebook executes in nbgrader's process);
2. writes each autograded test cell's outcome as the cell's output, by nbgrader's own scoring
   rules (`nbgrader.utils.determine_grade`): all checks of the cell's function passed -> a
   stdout message (full points); none passed -> an `error` output with the messages (0
   points); some passed -> the messages plus a numeric `execute_result` equal to
   points * (function score / function maximum) (partial credit);
3. re-appends any test cell still missing (safety net behind OverwriteCells.add_missing_cells);
4. saves the full JSON result under `<course root>/autograder-results/<assignment>/`.

SaveAutoGrades, AssignLatePenalties and the rest then run unchanged, so formgrader,
`generate_feedback` and `export` work as usual. The outputs hold only the suite's messages,
never hidden test code or inputs.

Convention for assignment authors: a test cell's grade_id names the function it grades,
`test_<function>` (or `test_<function>_<anything>` when a function has several test cells;
each then gets the function's fraction of its own points). The cell's own code is never run
during autograde; it is the students' visible check, and the hidden tests live in
`autograder/suites/<assignment>/`.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import multiprocessing
from pathlib import Path

from nbformat.notebooknode import NotebookNode, from_dict
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Dict, Float, Int, Unicode

__all__ = ["GradeWithTrustedRunner", "function_for_grade_id", "cell_outputs"]

_POOL: dict = {}


def _pool(assignment: str) -> cf.ProcessPoolExecutor:
    """One spawned worker per suite, reused for every notebook of the nbgrader run."""
    from autograder.runner import _worker_init
    if assignment not in _POOL:
        _POOL[assignment] = cf.ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init, initargs=(assignment,))
    return _POOL[assignment]


def _shutdown() -> None:
    for pool in _POOL.values():
        pool.shutdown(wait=True, cancel_futures=True)
    _POOL.clear()


atexit.register(_shutdown)


def function_for_grade_id(grade_id: str, functions: list[str]) -> str | None:
    """'test_affine_forward' or 'test_affine_forward_shapes' -> 'affine_forward'."""
    if not grade_id.startswith("test_"):
        return None
    rest = grade_id.removeprefix("test_")
    candidates = [f for f in functions if rest == f or rest.startswith(f + "_")]
    return max(candidates, key=len) if candidates else None


def cell_outputs(function: str | None, result: dict, points: float) -> list[dict]:
    """The outputs that make nbgrader give this test cell the function's share of `points`."""
    if function is None or function not in result.get("functions", {}):
        return [{"output_type": "error", "ename": "AutograderError",
                 "evalue": "no hidden tests are mapped to this cell",
                 "traceback": ["No hidden tests are mapped to this cell: its grade_id must be "
                               "test_<function> for a graded function of the assignment."]}]
    summary = result["functions"][function]
    messages = list(dict.fromkeys(t["message"] for t in result.get("tests", [])
                                  if t["function"] == function and not t["passed"]))
    headline = (f"{function}: {summary['passed']} of {summary['total']} hidden checks passed "
                f"({summary['score']:g} / {summary['max_score']:g})")
    if summary["max_score"] > 0 and summary["score"] >= summary["max_score"]:
        return [{"output_type": "stream", "name": "stdout", "text": headline + "\n"}]
    if summary["score"] <= 0:
        return [{"output_type": "error", "ename": "HiddenTestsFailed", "evalue": headline,
                 "traceback": [headline, *[f"- {m}" for m in messages]]}]
    share = round(points * summary["score"] / summary["max_score"], 6)
    share = min(share, points)
    text = "\n".join([headline, *[f"- {m}" for m in messages]]) + "\n"
    return [{"output_type": "stream", "name": "stdout", "text": text},
            {"output_type": "execute_result", "execution_count": None, "metadata": {},
             "data": {"text/plain": repr(share)}}]


class GradeWithTrustedRunner(NbGraderPreprocessor):
    """Grades a notebook with the kit's sandboxed runner instead of executing it."""

    suites = Dict({}, help="nbgrader assignment id -> hidden suite name, when they differ "
                  "(default: the same name)").tag(config=True)
    results_directory = Unicode("autograder-results", help="where the full JSON results go, "
                                "relative to the course root").tag(config=True)
    call_timeout = Float(10.0, help="seconds per call of a student's function").tag(config=True)
    submission_timeout = Float(180.0, help="seconds per notebook").tag(config=True)
    memory_mb = Int(1024, help="address-space limit of the sandbox (MB)").tag(config=True)
    worker_timeout = Float(900.0, help="seconds to wait for the grading worker").tag(config=True)
    enabled = Bool(True).tag(config=True)

    def _coursedir(self):
        from nbgrader.coursedir import CourseDirectory
        return CourseDirectory(config=self.config)

    def _grade(self, nb: NotebookNode, resources: dict, suite: str) -> dict:
        import nbformat

        from autograder.runner import GradeOptions, grade_notebook_data
        from autograder.sandbox import Limits
        info = resources["nbgrader"]
        coursedir = self._coursedir()
        root = Path(coursedir.root).resolve()
        source_dir = Path(coursedir.format_path(coursedir.source_directory, ".", "."))
        source = Path(coursedir.format_path(coursedir.source_directory, ".", info["assignment"]))
        release = Path(coursedir.format_path(coursedir.release_directory, ".", "."))
        options = GradeOptions(
            assignment=suite, source_dir=source_dir.resolve(),
            out_dir=root / self.results_directory / info["assignment"],
            limits=Limits(call_timeout=self.call_timeout, load_timeout=self.call_timeout,
                          submission_timeout=self.submission_timeout, memory_mb=self.memory_mb),
            hide=[str(source_dir.resolve()), str(release.resolve())])
        data = nbformat.writes(nb).encode()
        name = f"{info['student']}__{info['notebook']}"
        kwargs = dict(kind="notebook", options=options, name=name,
                      path=f"{info['student']}/{info['assignment']}/{info['notebook']}.ipynb",
                      student=info["student"], notebook=info["notebook"], course_root=root,
                      source_path=source / f"{info['notebook']}.ipynb")
        for attempt in (1, 2):
            try:
                result = _pool(suite).submit(grade_notebook_data, data, **kwargs).result(
                    timeout=self.worker_timeout)
                break
            except cf.process.BrokenProcessPool:
                _POOL.pop(suite, None)
                if attempt == 2:
                    raise
        from autograder.results import write_result
        write_result(options.out_dir, result)
        return result

    def _restore_missing(self, nb: NotebookNode, resources: dict) -> None:
        """Append test cells that are still missing, with their source from the database."""
        from nbgrader.api import Gradebook
        info = resources["nbgrader"]
        present = {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells}
        with Gradebook(info["db_url"]) as gb:
            notebook = gb.find_notebook(info["notebook"], info["assignment"])
            sources = {c.name: c for c in notebook.source_cells}
            for cell in notebook.grade_cells:
                if cell.name in present or cell.cell_type != "code":
                    continue
                self.log.warning("Test cell %s is missing; re-adding it", cell.name)
                source = sources[cell.name]
                nb.cells.append(from_dict({
                    "cell_type": "code", "execution_count": None, "outputs": [],
                    "source": source.source,
                    "metadata": {"deletable": False, "editable": False, "nbgrader": {
                        "grade": True, "solution": False, "locked": True,
                        "grade_id": cell.name, "points": cell.max_score,
                        "checksum": source.checksum, "schema_version": 3}}}))

    def preprocess(self, nb: NotebookNode, resources: dict):
        from autograder.suites import available_suites
        assignment = resources["nbgrader"]["assignment"]
        suite = self.suites.get(assignment, assignment)
        self._restore_missing(nb, resources)
        tests = [c for c in nb.cells if c.cell_type == "code"
                 and c.metadata.get("nbgrader", {}).get("grade")
                 and not c.metadata.get("nbgrader", {}).get("solution")]
        if suite not in available_suites():
            self.log.error("No hidden suite for assignment %s; its test cells get 0", assignment)
            result, functions = {}, []
        else:
            self.log.info("Grading %s/%s with the trusted runner (suite %s)",
                          resources["nbgrader"]["student"], resources["nbgrader"]["notebook"],
                          suite)
            result = self._grade(nb, resources, suite)
            functions = list(result.get("functions", {}))
        for cell in tests:
            meta = cell.metadata["nbgrader"]
            function = function_for_grade_id(meta.get("grade_id", ""), functions)
            if not result:
                outputs = [{"output_type": "error", "ename": "AutograderError",
                            "evalue": f"no hidden suite for assignment {assignment}",
                            "traceback": [f"No hidden suite for assignment {assignment}."]}]
            else:
                outputs = cell_outputs(function, result, float(meta.get("points", 0)))
            cell.outputs = [from_dict(o) for o in outputs]
            cell.execution_count = None
        return nb, resources
