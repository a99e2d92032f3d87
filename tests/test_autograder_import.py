"""`autograder import`: results of `autograder grade` go into the real nbgrader gradebook.

A temporary course (the kit's nbgrader_config.py, the fixture a2 source) releases the
assignment; three students submit; the CLI grades submitted/ in a subprocess; then
`autograder import` runs nbgrader's own autograde with the CLI's results; the gradebook
database and the autograded notebooks (which formgrader and generate_feedback read) are
checked. A notebook changed after the CLI
graded it is graded again instead of taking the stale score. Scores refer to the frozen
fixture suite (24 points).
"""

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


def run(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, AUTOGRADER_SUITES_PATH=str(FIXTURE_SUITES),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    done = subprocess.run([sys.executable, "-m", *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    shutil.copy(KIT / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(SOURCE_DIR, root / "assignments" / "source")
    run(root, "nbgrader", "generate_assignment", A2)
    release = root / "assignments" / "release" / A2 / f"{A2}.ipynb"
    submitted = root / "submitted"
    for student, fixture in (("alice", "reference.py"), ("bob", "blank.py"),
                             ("carol", "buggy.py")):
        write_notebook(student_notebook(fixture, release), submitted / student / A2 /
                       f"{A2}.ipynb")
    out = root / "autograder-results" / A2
    run(root, "autograder", "grade", "--assignment", A2, "--jobs", "2", "--no-progress",
        "--call-timeout", "3", "--out", str(out), "submitted")
    # carol fixes her notebook after the CLI graded it: her old result must not be imported.
    write_notebook(student_notebook("reference.py", release), submitted / "carol" / A2 /
                   f"{A2}.ipynb")
    imported = run(root, "autograder", "import", "--course", ".", "--assignment", A2, str(out))
    return {"root": root, "import": imported}


def test_imported_scores_are_the_gradebooks_scores(course):
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course['root'] / 'gradebook.db'}") as gb:
        scores = {s.student.id: s.score for s in gb.assignment_submissions(A2)}
    assert scores == {"alice": 24.0, "bob": 0.0, "carol": 24.0}


def test_up_to_date_results_are_used_and_a_changed_notebook_is_graded_again(course):
    text = course["import"].stdout
    assert "imported 2" in text and "graded again 1" in text, text
    assert "carol" in text.split("graded again", 1)[1]


def test_auto_scores_per_grade_cell_are_in_the_gradebook(course):
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course['root'] / 'gradebook.db'}") as gb:
        alice = gb.find_submission_notebook(A2, A2, "alice")
        bob = gb.find_submission_notebook(A2, A2, "bob")
        assert alice.score == alice.max_score == 24.0
        assert bob.score == 0.0
        graded_cells = {g.name: g.auto_score for g in alice.grades}
        assert graded_cells and all(score is not None for score in graded_cells.values())


def test_autograded_notebooks_carry_the_feedback_text_for_formgrader(course):
    """What generate_feedback and formgrader show: each test cell's outcome, as nbgrader's
    autograde leaves it in autograded/ (messages, never hidden test code)."""
    notebook = nbformat.read(course["root"] / "autograded" / "bob" / A2 / f"{A2}.ipynb",
                             as_version=4)
    shown = []
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade") and cell.cell_type == "code":
            shown += [json.dumps(output) for output in cell.outputs]
    text = "\n".join(shown)
    assert "hidden checks passed" in text and "HiddenTestsFailed" in text
    assert "def test_" not in text


def test_import_names_a_missing_course_clearly(tmp_path):
    done = subprocess.run([sys.executable, "-m", "autograder", "import", "--course",
                           str(tmp_path), "--assignment", A2, str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "nbgrader_config.py" in done.stderr
