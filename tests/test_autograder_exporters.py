"""Exporters: Gradescope and PrairieLearn results.json from `autograder grade --format`, the
Canvas gradebook-import CSV from `autograder gradebook --format canvas`, and the Gradescope
autograder.zip, whose run_autograder is run for real against a scratch /autograder-shaped
folder (AUTOGRADER_ROOT). Scores refer to the frozen fixture suite (24 points)."""

import csv
import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import exporters

sys.path.insert(0, str(Path(__file__).parent))
from fixtures.autograder.support import (  # noqa: E402
    FIXTURE_SUITES,
    SOURCE_DIR,
    SOURCE_NOTEBOOK,
    SUBMISSIONS,
    student_notebook,
    write_notebook,
)

KIT = Path(__file__).resolve().parents[1]
A2 = "a2_fully_connected"


def run(*args, cwd=KIT, env=None, timeout=300):
    env = dict(os.environ, AUTOGRADER_SUITES_PATH=str(FIXTURE_SUITES), **(env or {}))
    done = subprocess.run([*map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=cwd)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """reference, blank and buggy graded once with --format gradescope and prairielearn."""
    folder = tmp_path_factory.mktemp("subs")
    for name in ("reference.py", "blank.py", "buggy.py"):
        (folder / name).write_text((SUBMISSIONS / name).read_text())
    out = tmp_path_factory.mktemp("out")
    common = ["grade", "--assignment", A2, "--jobs", "2", "--no-progress", "--call-timeout",
              "3", "--source", SOURCE_DIR, "--out", out, folder]
    run(sys.executable, "-m", "autograder", *common, "--format", "gradescope")
    run(sys.executable, "-m", "autograder", *common, "--format", "prairielearn")
    return out


def load(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.slow
def test_gradescope_results_have_per_test_scores_that_add_up(graded):
    for name, expected in (("reference", 24.0), ("blank", 0.0), ("buggy", 13.0)):
        payload = load(graded / "gradescope" / name / "results.json")
        kit = load(graded / f"{name}.json")
        assert payload["score"] == expected == kit["score"]
        assert len(payload["tests"]) == len(kit["tests"])
        assert sum(t["score"] for t in payload["tests"]) == expected
        assert sum(t["max_score"] for t in payload["tests"]) == 24.0
        for test in payload["tests"]:
            assert set(test) >= {"name", "score", "max_score", "output", "visibility"}
            assert test["visibility"] == "visible"
            assert test["status"] == ("passed" if test["score"] == test["max_score"]
                                      else "failed")
    buggy = load(graded / "gradescope" / "buggy" / "results.json")
    failed = [t for t in buggy["tests"] if t["status"] == "failed"]
    assert failed and all(t["output"] and t["output"] != "passed" for t in failed)


@pytest.mark.slow
def test_prairielearn_score_is_a_fraction_with_points_per_test(graded):
    for name, fraction in (("reference", 1.0), ("blank", 0.0), ("buggy", 13 / 24)):
        payload = load(graded / "prairielearn" / name / "results.json")
        assert payload["gradable"] is True
        assert payload["score"] == pytest.approx(fraction, abs=1e-6)
        assert 0.0 <= payload["score"] <= 1.0
        assert sum(t["max_points"] for t in payload["tests"]) == 24.0
        assert sum(t["points"] for t in payload["tests"]) == pytest.approx(24 * fraction)
        assert all(set(t) >= {"name", "points", "max_points", "message"}
                   for t in payload["tests"])


def test_prairielearn_results_stay_under_its_size_cap():
    tests = [{"id": f"test_x.py::test_{i}", "function": "f", "points": 0.0, "max_points": 1.0,
              "passed": False, "message": "m" * 2000} for i in range(2000)]
    result = {"assignment": A2, "score": 0.0, "max_score": 2000.0, "tests": tests,
              "errors": [], "notes": []}
    payload = exporters.prairielearn_results(result)
    assert len(json.dumps(payload).encode()) <= exporters.PRAIRIELEARN_MAX_BYTES
    assert len(payload["tests"]) == 2000 and payload["score"] == 0.0


def test_an_unknown_format_or_visibility_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="gradescope, prairielearn; got 'moodle'"):
        exporters.platform_results({}, "moodle")
    with pytest.raises(ValueError, match="visibility must be one of"):
        exporters.gradescope_results({"score": 0}, visibility="secret")


@pytest.mark.slow
def test_canvas_csv_has_the_import_columns_and_one_row_per_student(graded, tmp_path):
    book = tmp_path / "book"
    run(sys.executable, "-m", "autograder", "gradebook", "--assignment", A2, "--out", book,
        "--format", "canvas", graded)
    rows = list(csv.reader((book / "canvas.csv").open(newline="")))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", A2]
    assert rows[1][0] == "Points Possible" and rows[1][5] == "24"
    body = {r[3]: r[5] for r in rows[2:]}
    assert body == {"reference": "24", "blank": "0", "buggy": "13"}


@pytest.mark.slow
def test_canvas_csv_takes_identities_from_a_roster_and_escapes_formulas(graded, tmp_path):
    roster = tmp_path / "export.csv"
    roster.write_text("Student,ID,SIS User ID,SIS Login ID,Section,Old (1)\n"
                      "    Points Possible,,,,,10\n"
                      "\"Ref, Erence\",101,9001,reference,S1,3\n"
                      "=HYPERLINK(\"x\"),102,9002,buggy,S2,4\n")
    book = tmp_path / "book"
    done = run(sys.executable, "-m", "autograder", "gradebook", "--assignment", A2, "--out",
               book, "--format", "canvas", "--roster", roster, "--column", "A2 (555)", graded)
    rows = list(csv.reader((book / "canvas.csv").open(newline="")))
    assert rows[0][-1] == "A2 (555)"
    assert rows[2] == ["'=HYPERLINK(\"x\")", "102", "9002", "buggy", "S2", "13"]
    assert rows[3] == ["Ref, Erence", "101", "9001", "reference", "S1", "24"]
    assert len(rows) == 4 and "blank" in done.stderr       # not in the roster: left out


@pytest.mark.slow
def test_gradescope_bundle_run_autograder_grades_a_scratch_autograder_folder(tmp_path):
    bundle = tmp_path / "autograder.zip"
    run(sys.executable, "-m", "autograder", "gradescope-bundle", A2, "-o", bundle,
        "--source", SOURCE_DIR)
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
        archive.extractall(root / "source")
    assert {"setup.sh", "run_autograder", f"source/{A2}/{A2}.ipynb",
            "kit/pyproject.toml", "kit/autograder/cli.py"} <= set(names)
    assert not [n for n in names if ".git/" in n or "__pycache__" in n]
    for script in ("setup.sh", "run_autograder"):
        assert modes[script] & stat.S_IXUSR
        run("bash", "-n", root / "source" / script)             # both parse as bash
    assert "pip install" in (root / "source" / "setup.sh").read_text()
    scores = {}
    for fixture in ("reference.py", "buggy.py"):
        submission = root / "submission"
        for old in submission.glob("*"):
            old.unlink()
        write_notebook(student_notebook(fixture, SOURCE_NOTEBOOK), submission / f"{A2}.ipynb")
        run("bash", root / "source" / "run_autograder",
            env={"AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable})
        payload = load(root / "results" / "results.json")
        scores[fixture] = payload["score"]
        assert sum(t["max_score"] for t in payload["tests"]) == 24.0
    assert scores == {"reference.py": 24.0, "buggy.py": 13.0}


@pytest.mark.slow
def test_run_autograder_explains_a_submission_it_cannot_grade(tmp_path):
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    (root / "submission" / "notes.txt").write_text("no notebook here")
    run(sys.executable, "-m", "autograder", "gradescope-run", "--assignment", A2,
        "--submission-dir", root / "submission", "--results", root / "results" / "out.json")
    payload = load(root / "results" / "out.json")
    assert payload["score"] == 0.0 and "found nothing" in payload["output"]
