"""Bounds on what the trusted side does for a submission: result size caps, gradebook cells a
spreadsheet would run, submissions that are symbolic links (through the real CLI), and the a3
training task's oracle model size. Scores refer to the frozen fixture suite (24 points)."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder import results
from autograder.runner import GradeOptions, Refused, grade_submission, read_submission
from autograder.sandbox import Limits

sys.path.insert(0, str(Path(__file__).parent))
from fixtures.autograder.support import (  # noqa: E402
    FIXTURE_SUITES,
    FUNCTIONS,
    SOURCE_DIR,
    SOURCE_NOTEBOOK,
    SUBMISSIONS,
)

KIT = Path(__file__).resolve().parents[1]
A2 = "a2_fully_connected"
POOL_SUITES = Path(__file__).parent / "fixtures" / "autograder" / "pool_suites"


# ----------------------------------------------------------------------------- result size

def test_bounded_caps_each_message_the_number_of_items_and_the_whole_result():
    test = {"id": "t", "function": "f", "points": 0.0, "max_points": 1.0, "passed": False}
    result = {"name": "x", "tests": [dict(test, message="m" * 5_000_000)] * 900,
              "errors": [{"function": None, "message": "e" * 10_000}] * 70,
              "notes": [f"note {i} " + "n" * 10_000 for i in range(70)]}
    capped = results.bounded(result)
    assert len(json.dumps(capped)) <= results.MAX_RESULT_BYTES
    assert len(capped["errors"]) == len(capped["notes"]) == results.MAX_ITEMS
    assert capped["errors"][-1]["message"] == "... and 21 more errors (not shown)"
    assert "cut" in capped["tests"][0]["message"]
    assert capped["notes"][-1].startswith("this result was larger than the cap of 1,000,000")
    assert results.bounded(capped) == capped
    small = {"name": "y", "tests": [dict(test, message="ok")], "errors": [], "notes": ["n"]}
    assert results.bounded(small) == small


@pytest.mark.slow
def test_huge_exception_messages_from_a_cell_with_a_huge_name_give_a_small_result(tmp_path,
                                                                                  monkeypatch):
    monkeypatch.setenv("AUTOGRADER_SUITES_PATH", str(FIXTURE_SUITES))
    raising = "def {}(*args):\n    raise ValueError('x' * 10_000_000)\n"
    # affine_forward's messages name its 1 MB cell (the backward tests need it too).
    huge = nbformat.v4.new_code_cell(raising.format("affine_forward"), metadata={"nbgrader": {
        "solution": True, "grade": False, "grade_id": "g" * 1_000_000, "locked": False,
        "schema_version": 3}})
    rest = "\n".join(raising.format(f) for f in FUNCTIONS if f != "affine_forward")
    others = nbformat.v4.new_code_cell(rest + "\nraise RuntimeError('y' * 10_000_000)\n",
                                       metadata={"nbgrader": {"solution": True, "grade": False,
                                                              "grade_id": "others"}})
    cells = [huge, others]
    path = tmp_path / f"{A2}.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    out = tmp_path / "out"
    options = GradeOptions(assignment=A2, source_dir=SOURCE_DIR, out_dir=out,
                           limits=Limits(call_timeout=5, load_timeout=10, submission_timeout=90))
    result = grade_submission(path, options)
    assert result["score"] == 0 and result["max_score"] == 24
    assert (out / f"{A2}.json").stat().st_size <= results.MAX_RESULT_BYTES
    texts = [t["message"] for t in result["tests"]] + [e["message"] for e in result["errors"]]
    assert all(len(text) <= results.MESSAGE_CHARS for text in texts + result["notes"])
    assert all("raised ValueError" in t["message"] for t in result["tests"])
    assert "gggg [... " in result["tests"][0]["message"]
    assert "raised RuntimeError" in " ".join(result["notes"])


def test_a_suite_error_with_a_huge_message_stays_small(tmp_path, monkeypatch):
    from autograder.grading import INTERNAL
    monkeypatch.setenv("AUTOGRADER_SUITES_PATH", str(POOL_SUITES))
    path = tmp_path / "suite_bug.py"
    path.write_text("def answer():\n    return 'make the suite fail'\n")
    result = grade_submission(path, GradeOptions(assignment="pool_probe"))
    assert result["tests"][0]["message"] == INTERNAL
    internal = [e["message"] for e in result["errors"] if "internal error in" in e["message"]]
    assert internal and all(len(m) <= results.MESSAGE_CHARS for m in internal)
    assert "RuntimeError" in internal[0]
    assert len(json.dumps(result)) < 20_000


# ----------------------------------------------------------------------------- gradebook

def test_gradebook_cells_a_spreadsheet_would_run_are_escaped_and_numbers_stay_numbers(tmp_path):
    hostile = ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]
    rows = [{"name": name, "submission": {"student": name, "notebook": "nb", "path": name},
             "score": -1.5 if i == 0 else 2.0, "max_score": 4.0, "errors": [],
             "functions": {"f": {"score": -1.0}}} for i, name in enumerate(hostile)]
    path = results.write_gradebook(rows, tmp_path / "gradebook.csv", ["f"])
    with path.open(newline="") as f:
        table = list(csv.DictReader(f))
    assert sorted(r["name"] for r in table) == sorted("'" + name for name in hostile)
    assert all(r["student"] == r["name"] == r["path"] for r in table)
    assert {r["score"] for r in table} == {"-1.5", "2.0"}       # numbers are not escaped
    assert {r["f"] for r in table} == {"-1.0"}


# ----------------------------------------------------------------------------- symlinks

def test_read_submission_opens_only_regular_files_inside_their_folder(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "alice.py").write_text("x = 1\n")
    (folder / "mallory.py").symlink_to(folder / "alice.py")
    (folder / "linked").symlink_to(folder)
    os.mkfifo(folder / "fifo.py")
    assert read_submission(folder / "alice.py", folder) == b"x = 1\n"
    for name, why in [("mallory.py", "is a symbolic link"), ("linked/alice.py",
                      "is a symbolic link"), ("fifo.py", "not a regular file")]:
        with pytest.raises(Refused, match=why):
            read_submission(folder / name, folder)
    with pytest.raises(Refused, match="not inside"):
        read_submission(folder / ".." / "subs" / "alice.py", folder)


def autograder_cli(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ, AUTOGRADER_SUITES_PATH=str(FIXTURE_SUITES))
    done = subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], cwd=KIT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_symlinked_submissions_are_refused_not_graded_as_their_target(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "alice.py").write_text((SUBMISSIONS / "reference.py").read_text())
    (subs / "mallory.py").symlink_to(subs / "alice.py")              # a classmate's file
    (subs / "trudy.py").symlink_to(SUBMISSIONS / "reference.py")     # the reference solution
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (notebooks / "eve.ipynb").symlink_to(SOURCE_NOTEBOOK)             # the source notebook
    submitted = tmp_path / "course" / "submitted"
    bob = submitted / "bob" / A2
    bob.mkdir(parents=True)
    (bob / f"{A2}.ipynb").write_bytes(SOURCE_NOTEBOOK.read_bytes())
    (submitted / "frank").symlink_to(submitted / "bob")               # a linked student folder
    out = tmp_path / "out"
    grade = ["grade", "--assignment", A2, "--out", out, "--source", SOURCE_DIR,
             "--call-timeout", "3", "--no-progress"]
    done = autograder_cli(*grade, subs, notebooks / "eve.ipynb", submitted,
                          submitted / "frank" / A2 / f"{A2}.ipynb")
    assert f"not following the symbolic link {submitted / 'frank'}" in done.stderr
    graded = {p.stem: results.read_result(p) for p in out.glob("*.json")}
    assert sorted(graded) == ["alice", "bob__a2_fully_connected", "eve",
                              "frank__a2_fully_connected", "mallory", "trudy"]
    assert graded["alice"]["score"] == 24
    for name in ("mallory", "trudy", "eve", "frank__a2_fully_connected"):
        result = graded[name]
        assert result["score"] == 0 and result["max_score"] == 24 and result["key"], name
        assert "is a symbolic link; submissions must be regular files" in \
            result["errors"][0]["message"], name
    again = autograder_cli(*grade, subs, notebooks / "eve.ipynb", submitted,
                           submitted / "frank" / A2 / f"{A2}.ipynb")
    assert "0 graded, 6 up to date" in again.stdout


# ----------------------------------------------------------------------------- a3 oracle size

def convnet_params(filters: int, hidden: int, w2_rows: int | None = None) -> dict:
    """Params of a ThreeLayerConvNet for 28x28 digits (3x3 filters; W2 from the 14x14 pool)."""
    return {"W1": np.zeros((filters, 1, 3, 3)), "b1": np.zeros(filters),
            "W2": np.zeros((w2_rows or 196 * filters, hidden)), "b2": np.zeros(hidden),
            "W3": np.zeros((hidden, 10)), "b3": np.zeros(10)}


@pytest.mark.parametrize("filters, hidden, w2_rows, message", [
    (100, 4, None, "at most 64"),                     # too many filters
    (8, 2_000, 1, "at most 2,000,000"),               # W2 would be 1568 x 2000 in the oracle
])
def test_a3_training_task_refuses_params_of_an_oversized_model_before_building_it(
        monkeypatch, filters, hidden, w2_rows, message):
    from autograder.checks import GradingFailure
    from autograder.suites.a3_convolutional_nets import test_training as task

    def no_oracle(*args, **kwargs):
        raise AssertionError("the oracle model was built")

    monkeypatch.setattr(task, "ThreeLayerConvNet", no_oracle)
    with pytest.raises(GradingFailure, match=message):
        task.trained_model(("ok", convnet_params(filters, hidden, w2_rows)))
    with pytest.raises(AssertionError, match="oracle model was built"):
        task.trained_model(("ok", convnet_params(8, 100)))
