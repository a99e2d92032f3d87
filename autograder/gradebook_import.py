"""`autograder import`: CLI or Dask results into nbgrader's gradebook, through nbgrader itself.

An instructor grades a class with `autograder grade` (locally with --jobs, or on a Dask
cluster with --scheduler) and then keeps nbgrader for the rest: formgrader, feedback, export.
`import_results` runs nbgrader's own autograde (its API, in this process) with the course's
nbgrader_config.py, in which the kit's `GradeWithTrustedRunner` is replaced by
`UseGradedResults`: for each submitted notebook it takes the result the CLI already wrote for
exactly that file (same student, same notebook, same SHA-256, same hidden suite version)
instead of grading it again. Everything else is nbgrader's: the sanitize pass, the test-cell
outputs scored by nbgrader's rules (the bridge's `cell_outputs`), SaveAutoGrades (auto scores
per grade cell), late penalties, the autograded/ notebooks that formgrader and
generate_feedback read. A notebook without such a result (never graded, changed since, graded
with an older suite) is graded at once by the trusted runner, exactly as plain
`nbgrader autograde` would.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from traitlets import Unicode

from autograder import results
from autograder.nbgrader_bridge import GradeWithTrustedRunner

__all__ = ["UseGradedResults", "import_results", "ImportReport"]

_BRIDGE = "autograder.nbgrader_bridge.GradeWithTrustedRunner"
_IMPORTER = "autograder.gradebook_import.UseGradedResults"


class UseGradedResults(GradeWithTrustedRunner):
    """The bridge preprocessor, reading an up-to-date CLI result when there is one."""

    graded_directory = Unicode("", help="folder of `autograder grade` results for this "
                               "assignment (<name>.json files)").tag(config=True)

    imported: list[str] = []          # class-level logs read by import_results
    regraded: list[str] = []

    def grade_notebook(self, nb, resources: dict, suite: str) -> dict:
        from autograder.suites import load_suite
        info = resources["nbgrader"]
        coursedir = self._coursedir()
        submitted = Path(coursedir.format_path(coursedir.submitted_directory, info["student"],
                                               info["assignment"])) / f"{info['notebook']}.ipynb"
        name = f"{info['student']}__{info['notebook']}"
        result = results.read_result(Path(self.graded_directory) / f"{name}.json")
        why = _stale(result, submitted, load_suite(suite).version)
        if why is None:
            self.log.info("Using the graded result %s.json for %s", name, submitted)
            UseGradedResults.imported.append(name)
            return result
        self.log.warning("No up-to-date result for %s (%s): grading it now", submitted, why)
        UseGradedResults.regraded.append(name)
        return super().grade_notebook(nb, resources, suite)


def _stale(result: dict | None, submitted: Path, suite_version: str) -> str | None:
    """Why `result` cannot stand for the submitted file, or None if it can."""
    if result is None:
        return "no result file"
    if submitted.is_symlink() or not submitted.is_file():
        return "the submission is not a regular file"
    digest = hashlib.sha256(submitted.read_bytes()).hexdigest()
    if result.get("submission", {}).get("sha256") != digest:
        return "the result is for a different version of the notebook"
    if result.get("suite_version") != suite_version:
        return "the result was graded with another version of the hidden suite"
    return None


class ImportReport(dict):
    """{'imported': [...names], 'regraded': [...], 'success': bool, 'log': str}."""


def import_results(course: Path, assignment: str, graded: Path, *,
                   students: list[str] | None = None) -> ImportReport:
    """Run nbgrader's autograde for `assignment` in the course at `course` (its
    nbgrader_config.py), taking scores from the results in `graded`."""
    course, graded = Path(course).resolve(), Path(graded).resolve()
    if not (course / "nbgrader_config.py").is_file():
        raise ValueError(f"course must be an nbgrader course directory with nbgrader_config.py; "
                         f"{course} has none")
    if not graded.is_dir():
        raise ValueError(f"results must be a folder of `autograder grade` results; "
                         f"{graded} is not a directory")
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    steps = list(config.Autograde.get("autograde_preprocessors", []))
    if _BRIDGE not in [str(s) for s in steps]:
        raise ValueError(f"{course / 'nbgrader_config.py'} does not autograde through the kit "
                         f"({_BRIDGE} is not in c.Autograde.autograde_preprocessors)")
    config.Autograde.autograde_preprocessors = [_IMPORTER if str(s) == _BRIDGE else s
                                                for s in steps]
    config.UseGradedResults.graded_directory = str(graded)
    api = NbGraderAPI(config=config)
    UseGradedResults.imported, UseGradedResults.regraded = [], []
    logs, success = [], True
    for student in students or ["*"]:
        outcome = api.autograde(assignment, student, force=True, create=True)
        success = success and bool(outcome.get("success"))
        logs.append(outcome.get("log", "") + outcome.get("error", ""))
    return ImportReport(imported=sorted(UseGradedResults.imported),
                        regraded=sorted(UseGradedResults.regraded), success=success,
                        log="\n".join(logs))
