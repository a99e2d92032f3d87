"""`nbgrader autograde` through the trusted runner: a preprocessor that replaces Execute.

nbgrader's autograde runs two passes over each submitted notebook. The first (sanitize:
ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata) is kept
as it is: it restores edited or deleted test cells from the gradebook database. In the second
pass the kit's `nbgrader_config.py` replaces `Execute` (and `IgnorePattern`) by
`GradeWithTrustedRunner`, which

1. grades the sanitized notebook with `autograder.runner` in a separate worker process (the
   student's code runs in the sandbox, the hidden suite in the worker; no kernel is started
   and nothing of the notebook executes in nbgrader's process). There is one worker per
   (suite, suite version): after the hidden suite is edited (say, while formgrader runs) the
   next notebook gets a fresh worker with the new suite; a worker that dies or overruns
   `submission_timeout + worker_margin` is killed and replaced, never reused. A submission
   that is, or sits below, a symbolic link in `submitted/` is not graded (its cells get 0 and
   say why): nbgrader would have read the link's target;
2. writes each autograded test cell's outcome as the cell's output, by nbgrader's own scoring
   rules (`nbgrader.utils.determine_grade`): all checks of the cell's function passed -> a
   stdout message (full points); none passed -> an `error` output with the messages (0
   points); some passed -> the messages plus a numeric `execute_result` equal to
   points * (function score / function maximum) (partial credit);
   Each test cell also gets `metadata.autograder.function`, the function it grades, which the
   kit's feedback template shows in its contents list;
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
from pathlib import Path

from nbformat.notebooknode import NotebookNode, from_dict
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Dict, Float, Int, Unicode

__all__ = ["GradeWithTrustedRunner", "function_for_grade_id", "cell_outputs",
           "symlink_in_submission", "shutdown_workers"]


class _Workers:
    """The bridge's grading workers for the life of the nbgrader process (formgrader keeps
    it alive): one pool of one worker per (suite, suite version)."""

    def __init__(self) -> None:
        self.pools: dict[tuple[str, str], object] = {}

    def grade(self, suite: str, version: str, job):
        from autograder.runner import worker_pool
        for key in [k for k in self.pools if k[0] == suite and k != (suite, version)]:
            self.pools.pop(key).close()         # the suite was edited: its old worker goes
        if (suite, version) not in self.pools:
            self.pools[(suite, version)] = worker_pool(suite, size=1, options=job.options,
                                                       suite_version=version)
        return self.pools[(suite, version)].grade(job)

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()
        self.pools.clear()


_WORKERS = _Workers()


def shutdown_workers() -> None:
    """Stop every grading worker of this process (also done at exit)."""
    _WORKERS.close()


atexit.register(shutdown_workers)


def function_for_grade_id(grade_id: str, functions: list[str]) -> str | None:
    """'test_affine_forward' or 'test_affine_forward_shapes' -> 'affine_forward'."""
    from autograder.plugin import function_for
    return function_for(grade_id, functions)


def symlink_in_submission(submitted: Path, notebook: Path) -> Path | None:
    """The first folder or file of `notebook` below `submitted` (nbgrader's submitted/<student>/
    <assignment>/<notebook>.ipynb) that is a symbolic link, or None. nbgrader copies what a
    link points to, so a link would be graded as someone else's work."""
    submitted, notebook = Path(submitted), Path(notebook)
    here = submitted if notebook.is_relative_to(submitted) else Path(notebook.anchor)
    for part in notebook.relative_to(here).parts:
        here = here / part
        if here.is_symlink():
            return here
    return None


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
    worker_margin = Float(60.0, help="seconds a grading worker gets beyond submission_timeout "
                          "for one notebook before it is killed and replaced").tag(config=True)
    enabled = Bool(True).tag(config=True)

    def _coursedir(self):
        from nbgrader.coursedir import CourseDirectory
        return CourseDirectory(config=self.config)

    def grade_notebook(self, nb: NotebookNode, resources: dict, suite: str) -> dict:
        """The runner's result for this notebook (also written under results_directory)."""
        import nbformat

        from autograder.runner import GradeOptions, Job
        from autograder.sandbox import Limits
        from autograder.suites import load_suite
        info = resources["nbgrader"]
        coursedir = self._coursedir()
        root = Path(coursedir.root).resolve()
        source_dir = Path(coursedir.format_path(coursedir.source_directory, ".", "."))
        source = Path(coursedir.format_path(coursedir.source_directory, ".", info["assignment"]))
        submitted = Path(coursedir.format_path(coursedir.submitted_directory, ".", "."))
        options = GradeOptions(
            assignment=suite, source_dir=source_dir.resolve(),
            out_dir=root / self.results_directory / info["assignment"],
            limits=Limits(call_timeout=self.call_timeout, load_timeout=self.call_timeout,
                          submission_timeout=self.submission_timeout, memory_mb=self.memory_mb),
            worker_margin=self.worker_margin)
        link = symlink_in_submission(submitted, Path(coursedir.format_path(
            coursedir.submitted_directory, info["student"], info["assignment"]))
            / f"{info['notebook']}.ipynb")
        if link is not None:
            self.log.error("%s is a symbolic link: not graded", link)
        job = Job(options=options, name=f"{info['student']}__{info['notebook']}",
                  path=f"{info['student']}/{info['assignment']}/{info['notebook']}.ipynb",
                  data=nbformat.writes(nb).encode(), student=info["student"],
                  notebook=info["notebook"],
                  source_path=str(source / f"{info['notebook']}.ipynb"),
                  refused=None if link is None else
                  f"{link.name} in submitted/ is a symbolic link; submissions must be "
                  "regular files")
        outcome = _WORKERS.grade(suite, load_suite(suite).version, job)
        if not outcome.ok:
            raise RuntimeError(f"the trusted runner could not grade {job.path}: "
                               f"{outcome.error}\n{outcome.detail}")
        return outcome.value

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
            result = self.grade_notebook(nb, resources, suite)
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
            # The function this cell grades, for the feedback page's contents (the kit's
            # template in nbgrader_templates/); set by the grader only, never by the student.
            cell.metadata.pop("autograder", None)
            if function is not None:
                cell.metadata["autograder"] = {"function": function}
        return nb, resources
