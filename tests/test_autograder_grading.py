"""The autograder end to end (runner + sandbox + hidden suite) on fixture submissions.

Everything is graded in ONE batch for the module (two worker processes, real sandboxes), then
each test checks one result: correct, blank and buggy submissions as .py files and as
notebooks, and the notebook cases of extraction (magics, duplicated or missing cells, an edited
setup cell, a syntax error, no metadata, corrupt JSON). Scores refer to the frozen fixture suite
(tests/fixtures/autograder/suites, 24 points), so they do not move when the real suite grows;
the last test grades reference.py with the real a2 suite. The attacks: test_autograder_attacks.
"""

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.results import graded_part
from autograder.runner import GradeOptions, grade_batch
from autograder.sandbox import Limits, isolation_mode

sys.path.insert(0, str(Path(__file__).parent))
from fixtures.autograder.support import (  # noqa: E402
    FIXTURE_SUITES,
    FULL,
    FUNCTIONS,
    SOURCE_DIR,
    SUBMISSIONS,
    messages,
    scores,
    student_notebook,
    write_notebook,
)

LIMITS = Limits(call_timeout=5, load_timeout=10, submission_timeout=90)

SHELL_ESCAPE = "/tmp/AUTOGRADER_SHELL_ESCAPE"


def _notebooks(folder: Path) -> list[Path]:
    """Notebook fixtures, built from the fixture source notebook."""
    magics = {
        "relu_forward": lambda s: "%matplotlib inline\n!touch /tmp/AUTOGRADER_SHELL_ESCAPE\n"
                                  "listing = !ls /\n" + s + "\nrelu_forward?\n",
        "svm_loss": lambda s: "%%time\n" + s,
        "softmax_loss": lambda s: "%%bash\ntouch /tmp/AUTOGRADER_SHELL_ESCAPE\n" + s,
    }
    buggy_relu = ("def relu_forward(x):\n    x[x < 0] = 0\n    return x, x.copy()\n")
    setup_helper = ("import numpy as np\n\ndef positive_part(x):\n    return np.maximum(0, x)\n")
    uses_helper = {"relu_forward": lambda s: "def relu_forward(x):\n"
                                             "    return positive_part(x), x\n"}
    books = {
        "nb_reference": student_notebook("reference.py"),
        "nb_blank": student_notebook("blank.py"),
        "nb_buggy": student_notebook("buggy.py"),
        "nb_magics": student_notebook("reference.py", transform=magics),
        "nb_duplicated_cell": student_notebook("reference.py", duplicate={
            "relu_forward": buggy_relu}),
        "nb_missing_cell": student_notebook("reference.py", drop={"svm_loss"}),
        "nb_edited_setup": student_notebook("reference.py", edit={"setup": setup_helper},
                                            transform=uses_helper),
        "nb_syntax_error": student_notebook("reference.py", transform={
            "relu_backward": lambda s: s.replace("def relu_backward(dout, cache):",
                                                 "def relu_backward(dout, cache)")}),
    }
    paths = [write_notebook(nb, folder / f"{name}.ipynb") for name, nb in books.items()]
    plain = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("A notebook without nbgrader metadata"),
        nbformat.v4.new_code_cell((SUBMISSIONS / "reference.py").read_text())])
    paths.append(write_notebook(plain, folder / "nb_plain.ipynb"))
    corrupt = folder / "nb_corrupt.ipynb"
    corrupt.write_bytes((SUBMISSIONS.parent / "notebooks" / "corrupt.ipynb.txt").read_bytes())
    return paths + [corrupt]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Every fixture submission graded once, with --jobs 2, into one results folder."""
    folder = tmp_path_factory.mktemp("submissions")
    out = tmp_path_factory.mktemp("results")
    paths = [folder / name for name in ("reference.py", "blank.py", "buggy.py")]
    for path in paths:
        path.write_text((SUBMISSIONS / path.name).read_text())
    paths += _notebooks(folder)
    assert not os.path.exists(SHELL_ESCAPE)
    options = GradeOptions(assignment="a2_fully_connected", source_dir=SOURCE_DIR, out_dir=out,
                           limits=LIMITS)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOGRADER_SUITES_PATH", str(FIXTURE_SUITES))
        summary = grade_batch(paths, options, jobs=2, progress=False)
        again = grade_batch([folder / "buggy.py", folder / "nb_buggy.ipynb"], options,
                            jobs=1, force=True, progress=False, gradebook=False)
    results = {r["name"]: r for r in summary.results}
    return {"results": results, "summary": summary, "out": out, "folder": folder,
            "again": {r["name"]: r for r in again.results}}


def test_every_submission_got_a_result_and_the_batch_went_on(batch):
    summary = batch["summary"]
    assert not summary.failed
    assert len(summary.results) == len(summary.graded) == len(list(batch["folder"].iterdir()))
    for result in summary.results:
        assert result["schema"] == "autograder-result/1"
        for test in result["tests"]:
            assert set(test) == {"id", "function", "points", "max_points", "passed", "message"}


def test_reference_py_scores_full_marks(batch):
    result = batch["results"]["reference"]
    assert scores(result) == FULL
    assert result["score"] == result["max_score"] == 24
    assert result["errors"] == []


def test_blank_py_scores_zero_and_says_not_implemented(batch):
    result = batch["results"]["blank"]
    assert result["score"] == 0 and result["max_score"] == 24
    assert "raised NotImplementedError" in messages(result, "affine_forward")
    assert "needs your affine_forward" in messages(result, "affine_backward")


def test_buggy_py_gets_partial_credit_per_function(batch):
    result = batch["results"]["buggy"]
    assert scores(result) == {"affine_forward": 1, "affine_backward": 3, "relu_forward": 2,
                              "relu_backward": 3, "softmax_loss": 4, "svm_loss": 0}
    assert "modified its input x" in messages(result, "relu_forward")
    assert "loss is nan" in messages(result, "softmax_loss")
    assert result["functions"]["relu_backward"]["status"] == "passed"
    assert result["functions"]["affine_backward"]["status"] == "partial"
    assert result["functions"]["svm_loss"]["status"] == "failed"


def test_grading_the_same_submission_twice_gives_identical_json(batch):
    for name in ("buggy", "nb_buggy"):
        first, second = batch["results"][name], batch["again"][name]
        assert json.dumps(graded_part(first), sort_keys=True) == \
            json.dumps(graded_part(second), sort_keys=True)
        assert set(first) - set(graded_part(first)) == {"run"}


def test_messages_never_show_hidden_inputs_or_expected_values(batch):
    import numpy as np

    from course_lib import affine_forward
    rng = np.random.default_rng(2101)     # the first hidden affine_forward input
    x = rng.standard_normal((6, 5))
    hidden = [f"{v:.4f}" for v in x.ravel()[:5]]
    w = rng.standard_normal((5, 4)) / np.sqrt(5)
    expected = [f"{v:.4f}" for v in affine_forward(x, w, rng.standard_normal(4))[0].ravel()[:5]]
    for result in batch["results"].values():
        text = json.dumps([t["message"] for t in result["tests"]])
        assert not any(v in text for v in hidden + expected), result["name"]


def test_sandbox_reports_what_isolation_was_applied(batch):
    sandbox = batch["results"]["reference"]["sandbox"]
    assert set(sandbox) == {"namespaces", "network", "filesystem", "user", "rlimits",
                            "degraded", "active", "inactive"}
    assert sandbox["rlimits"]["RLIMIT_AS"] == LIMITS.memory_mb * 1024 * 1024
    assert sandbox["degraded"] is False and "no_new_privs and a seccomp filter" in \
        sandbox["active"]
    if isolation_mode()[0] != "none":
        assert sandbox["network"].startswith("none")
    if os.geteuid() == 0 and isolation_mode()[0] == "root":
        assert "uid of its own" in sandbox["user"] and "no capabilities" in sandbox["user"]


# ----------------------------------------------------------------------------- notebooks

def test_reference_blank_and_buggy_notebooks_score_like_their_py_files(batch):
    results = batch["results"]
    assert scores(results["nb_reference"]) == FULL
    assert results["nb_blank"]["score"] == 0
    assert scores(results["nb_buggy"]) == scores(results["buggy"])
    assert results["nb_reference"]["submission"]["kind"] == "notebook"


def test_magics_and_shell_escapes_are_never_run(batch):
    result = batch["results"]["nb_magics"]
    expected = dict(FULL, softmax_loss=0)       # a %%bash cell is not Python: skipped
    assert scores(result) == expected
    assert not os.path.exists(SHELL_ESCAPE)
    notes = " ".join(result["notes"])
    assert "%%bash" in notes and "%%time" in notes


def test_duplicated_cell_runs_in_order_and_the_last_definition_wins(batch):
    result = batch["results"]["nb_duplicated_cell"]
    assert scores(result) == dict(FULL, relu_forward=2)
    assert any("relu_forward appears 2 times" in n for n in result["notes"])


def test_missing_solution_cell_costs_only_its_function(batch):
    result = batch["results"]["nb_missing_cell"]
    assert scores(result) == dict(FULL, svm_loss=0)
    assert "svm_loss is not defined" in messages(result, "svm_loss")
    assert any("svm_loss is missing" in n for n in result["notes"])


def test_setup_cells_come_from_the_source_notebook_not_the_students_copy(batch):
    result = batch["results"]["nb_edited_setup"]
    assert scores(result) == dict(FULL, relu_forward=0, relu_backward=0)
    assert "NameError: name 'positive_part' is not defined" in messages(result, "relu_forward")


def test_syntax_error_in_one_cell_costs_only_that_cell(batch):
    result = batch["results"]["nb_syntax_error"]
    assert scores(result) == dict(FULL, relu_backward=0)
    assert "syntax error" in messages(result, "relu_backward")


def test_notebook_without_nbgrader_metadata_uses_all_code_cells(batch):
    result = batch["results"]["nb_plain"]
    assert scores(result) == FULL
    assert any("no nbgrader metadata" in n for n in result["notes"])


def test_corrupt_notebook_scores_zero_with_a_clear_message(batch):
    result = batch["results"]["nb_corrupt"]
    assert result["score"] == 0 and result["max_score"] == 24
    assert "could not be read" in result["errors"][0]["message"]
    assert all("could not be graded" in t["message"] for t in result["tests"])


def test_gradebook_lists_every_submission(batch):
    lines = (batch["out"] / "gradebook.csv").read_text().splitlines()
    assert lines[0].startswith("name,student,notebook,score,max_score,percent,affine_forward")
    assert len(lines) == 1 + len(batch["results"])
    assert any(line.startswith("reference,,reference,24.0,24.0,100.0") for line in lines)


# ----------------------------------------------------------------------------- the real suite

def test_real_a2_suite_gives_the_reference_full_marks_for_its_functions(tmp_path):
    from autograder.suites import load_suite
    os.environ.pop("AUTOGRADER_SUITES_PATH", None)
    suite = load_suite("a2_fully_connected")
    assert suite.directory.parent.name == "suites" and "autograder" in str(suite.directory)
    path = tmp_path / "reference.py"
    path.write_text((SUBMISSIONS / "reference.py").read_text())
    options = GradeOptions(assignment="a2_fully_connected", out_dir=tmp_path / "out",
                           limits=LIMITS)
    result = grade_batch([path], options, progress=False).results[0]
    for function in FUNCTIONS:
        summary = result["functions"][function]
        assert summary["score"] == summary["max_score"] > 0, messages(result, function)
