"""`nbgrader autograde` grading through the trusted runner, with the real nbgrader CLI.

A temporary course directory gets the kit's nbgrader_config.py and the fixture source notebook
(a2 subset); then generate_assignment, autograde of reference / blank / buggy / tampered
submissions and of two symbolic links into a classmate's submission, generate_feedback and
export run exactly as an instructor would run them. Scores refer to the frozen fixture suite
(24 points). Slow: nbgrader itself takes seconds per command.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fixtures.autograder.support import (  # noqa: E402
    FIXTURE_SUITES,
    SOURCE_DIR,
    student_notebook,
    write_notebook,
)

pytestmark = pytest.mark.slow

KIT = Path(__file__).resolve().parents[1]
A2 = "a2_fully_connected"
TAMPERING = """import numpy as np
from IPython.core.interactiveshell import InteractiveShell

np.allclose = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None
InteractiveShell.showtraceback = lambda *args, **kwargs: None
"""


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, AUTOGRADER_SUITES_PATH=str(FIXTURE_SUITES),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    shutil.copy(KIT / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(SOURCE_DIR, root / "assignments" / "source")
    nbgrader(root, "generate_assignment", A2)
    release = root / "assignments" / "release" / A2 / f"{A2}.ipynb"
    submitted = root / "submitted"

    def submit(student, fixture, **changes):
        nb = student_notebook(fixture, release, **changes)
        write_notebook(nb, submitted / student / A2 / f"{A2}.ipynb")

    submit("alice", "reference.py")
    submit("bob", "blank.py")
    submit("carol", "buggy.py")
    submit("dave", "buggy.py", drop={"test_affine_forward", "test_svm_loss"},
           edit={"test_relu_forward": "pass", "test_softmax_loss": "assert True"},
           transform={"affine_forward": lambda s: TAMPERING + "\n" + s})
    # Symbolic links into alice's submission (kept by collection steps such as git or tar):
    # nbgrader copies what they point to, the bridge must not grade it as eve's or frank's.
    alice = submitted / "alice" / A2
    (submitted / "eve" / A2).mkdir(parents=True)
    (submitted / "eve" / A2 / f"{A2}.ipynb").symlink_to(alice / f"{A2}.ipynb")
    (submitted / "frank").mkdir()
    (submitted / "frank" / A2).symlink_to(alice, target_is_directory=True)
    nbgrader(root, "autograde", A2)
    nbgrader(root, "generate_feedback", A2)
    nbgrader(root, "export", "--to", str(root / "grades.csv"))
    return root


def grades(course: Path) -> dict[str, float]:
    return {row["student_id"]: float(row["score"])
            for row in csv.DictReader((course / "grades.csv").open())}


def test_export_has_the_runners_scores(course):
    assert grades(course) == {"alice": 24.0, "bob": 0.0, "carol": 13.0, "dave": 13.0,
                              "eve": 0.0, "frank": 0.0}
    rows = list(csv.DictReader((course / "grades.csv").open()))
    assert {float(r["max_score"]) for r in rows} == {24.0}


def test_deleting_or_editing_test_cells_changes_nothing(course):
    nb = nbformat.read(course / "autograded" / "dave" / A2 / f"{A2}.ipynb", as_version=4)
    tests = {c.metadata.nbgrader["grade_id"]: c for c in nb.cells
             if c.metadata.get("nbgrader", {}).get("grade")}
    assert sorted(tests) == sorted(f"test_{f}" for f in
                                   ("affine_forward", "affine_backward", "relu_forward",
                                    "relu_backward", "softmax_loss", "svm_loss"))
    assert "relu_forward(np.array" in tests["test_relu_forward"].source   # restored from the DB
    assert all(cell.outputs for cell in tests.values())
    assert grades(course)["dave"] == grades(course)["carol"]


def test_each_test_cell_carries_the_outcome_nbgrader_scores(course):
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        carol = gb.find_submission_notebook(A2, A2, "carol")
        scores = {g.name: (g.auto_score, g.needs_manual_grade) for g in carol.grades}
    assert scores == {"test_affine_forward": (1.0, False), "test_affine_backward": (3.0, False),
                      "test_relu_forward": (2.0, False), "test_relu_backward": (3.0, False),
                      "test_softmax_loss": (4.0, False), "test_svm_loss": (0.0, False)}


def test_feedback_shows_messages_but_no_hidden_tests_or_inputs(course):
    html = (course / "feedback" / "carol" / A2 / f"{A2}.html").read_text()
    assert "modified its input x" in html and "hidden checks passed" in html
    for secret in ("HIDDEN-MARKER", "BEGIN HIDDEN TESTS", "def test_", "default_rng",
                   "expect_array", "RTOL"):
        assert secret not in html, secret


def test_full_results_are_kept_for_the_instructor(course):
    results = course / "autograder-results" / A2
    names = sorted(p.name for p in results.glob("*.json"))
    assert names == [f"{s}__{A2}.json" for s in ("alice", "bob", "carol", "dave", "eve",
                                                   "frank")]
    dave = json.loads((results / f"dave__{A2}.json").read_text())
    assert dave["submission"]["student"] == "dave" and dave["score"] == 13


def test_symlinked_submissions_are_not_graded_as_their_target(course):
    results = course / "autograder-results" / A2
    for student in ("eve", "frank"):
        result = json.loads((results / f"{student}__{A2}.json").read_text())
        assert result["score"] == 0 and result["max_score"] == 24 and result["key"]
        assert "is a symbolic link; submissions must be regular files" in \
            result["errors"][0]["message"]
    html = (course / "feedback" / "eve" / A2 / f"{A2}.html").read_text()
    assert "symbolic link" in html


def test_cell_outputs_follow_nbgrader_scoring_rules():
    from nbformat.notebooknode import from_dict
    from nbgrader.utils import determine_grade

    from autograder.nbgrader_bridge import cell_outputs, function_for_grade_id

    def graded(outputs, points=4):
        cell = from_dict({"cell_type": "code", "source": "", "outputs": outputs,
                          "metadata": {"nbgrader": {"grade": True, "solution": False,
                                                    "grade_id": "t", "points": points}}})
        return determine_grade(cell)[0]

    def result(score, maximum=5.0):
        return {"functions": {"f": {"score": score, "max_score": maximum, "passed": 1,
                                    "total": 2}},
                "tests": [{"function": "f", "passed": False, "message": "dx is wrong"}]}

    assert graded(cell_outputs("f", result(5.0), 4)) == 4
    assert graded(cell_outputs("f", result(0.0), 4)) == 0
    assert graded(cell_outputs("f", result(2.0), 4)) == pytest.approx(1.6)
    assert graded(cell_outputs(None, result(5.0), 4)) == 0
    assert function_for_grade_id("test_affine_forward", ["affine_forward"]) == "affine_forward"
    assert function_for_grade_id("test_relu_backward_shapes",
                                 ["relu_forward", "relu_backward"]) == "relu_backward"
    assert function_for_grade_id("setup", ["relu_forward"]) is None


def test_our_checksum_is_nbgraders(course):
    from nbgrader.utils import compute_checksum

    from autograder.extraction import compute_checksum as ours
    release = course / "assignments" / "release" / A2 / f"{A2}.ipynb"
    for cell in nbformat.read(release, as_version=4).cells:
        if "nbgrader" in cell.metadata:
            assert ours(cell) == compute_checksum(cell)
