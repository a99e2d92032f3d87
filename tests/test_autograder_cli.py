"""The command line (`python -m autograder`), run as a real subprocess, and the result files:
help, check, grade, resume / --force / --shard, the gradebook, atomic writes and a batch that
is killed half-way. Scores refer to the frozen fixture suite (24 points)."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder import results
from autograder.runner import shard_of

sys.path.insert(0, str(Path(__file__).parent))
from fixtures.autograder.support import (  # noqa: E402
    FIXTURE_SUITES,
    SOURCE_DIR,
    SUBMISSIONS,
    compose_attack,
)

KIT = Path(__file__).resolve().parents[1]
ASSIGNMENT = ["--assignment", "a2_fully_connected"]
FAST = ["--call-timeout", "3", "--source", str(SOURCE_DIR)]


def run(*args, check=True, timeout=300, **kwargs):
    env = dict(os.environ, AUTOGRADER_SUITES_PATH=str(FIXTURE_SUITES))
    if args and args[0] == "grade":
        args = (*args, "--no-progress")
    done = subprocess.run([sys.executable, "-m", "autograder", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=timeout, cwd=KIT,
                          **kwargs)
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture
def submissions(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    for name in ("reference.py", "blank.py", "buggy.py"):
        (folder / name).write_text((SUBMISSIONS / name).read_text())
    return folder


def test_help_explains_the_commands_without_reading_the_code():
    text = run("--help").stdout
    for phrase in ("grade", "check", "gradebook", "sandbox", "examples:", "--shard",
                   "nbgrader autograde", "a2_fully_connected"):
        assert phrase in text
    grade = run("grade", "--help").stdout
    for option in ("--jobs", "--out", "--json", "--shard", "--force", "--call-timeout",
                   "--memory-mb", "exit code is 0"):
        assert option in grade


def test_check_prints_a_readable_report(submissions):
    report = run("check", submissions / "buggy.py", *ASSIGNMENT, *FAST).stdout
    assert "Score: 13 / 24" in report
    assert "[part] affine_forward: 1 / 4 points (1 of 3 checks passed)" in report
    assert "relu forward does not modify its input: relu_forward modified its input x" in report
    assert "[ok  ] relu_backward: 3 / 3 points" in report
    perfect = run("check", submissions / "reference.py", *ASSIGNMENT, *FAST).stdout
    assert "Score: 24 / 24" in perfect and "FAIL" not in perfect


def test_check_guesses_the_assignment_and_can_write_json(tmp_path):
    path = tmp_path / "my_a2_fully_connected.py"
    path.write_text((SUBMISSIONS / "blank.py").read_text())
    done = run("check", path, "--json", tmp_path / "r.json", *FAST)
    assert "Score: 0 / 24" in done.stdout and "NotImplementedError" in done.stdout
    assert json.loads((tmp_path / "r.json").read_text())["max_score"] == 24


def test_check_of_one_function_grades_only_its_tests_and_says_so(submissions, tmp_path):
    done = run("check", submissions / "buggy.py", *ASSIGNMENT, *FAST, "--function",
               "affine_forward", "--function", "relu_backward", "--json", tmp_path / "r.json")
    result = json.loads((tmp_path / "r.json").read_text())
    assert list(result["functions"]) == ["affine_forward", "relu_backward"]
    assert {t["function"] for t in result["tests"]} == {"affine_forward", "relu_backward"}
    assert (result["score"], result["max_score"]) == (4, 7)
    assert result["run"]["only"] == ["affine_forward", "relu_backward"]
    assert "Score: 4 / 7" in done.stdout
    whole = run("check", submissions / "buggy.py", *ASSIGNMENT, *FAST, "--json", "-").stdout
    assert json.loads(whole)["key"] != result["key"]    # a partial result never stands for all
    wrong = run("check", submissions / "buggy.py", *ASSIGNMENT, "--function", "conv_forward",
                check=False)
    assert wrong.returncode == 2 and "--function conv_forward: not a graded function" in \
        wrong.stderr


def test_grade_of_some_functions_grades_only_their_tests_and_resumes_apart(submissions,
                                                                           tmp_path):
    out = tmp_path / "out"
    done = run("grade", submissions / "buggy.py", *ASSIGNMENT, *FAST, "--out", out,
               "--function", "relu_forward", "--function", "svm_loss")
    result = json.loads((out / "buggy.json").read_text())
    assert list(result["functions"]) == ["relu_forward", "svm_loss"]
    assert (result["score"], result["max_score"]) == (2, 7) and "2 / 7" in done.stdout
    assert result["run"]["only"] == ["relu_forward", "svm_loss"]
    whole = run("grade", submissions / "buggy.py", *ASSIGNMENT, *FAST, "--out", out)
    assert "1 graded, 0 up to date" in whole.stdout     # a partial result never stands for all
    wrong = run("grade", submissions / "buggy.py", *ASSIGNMENT, "--function", "conv_forward",
                check=False)
    assert wrong.returncode == 2 and "--function conv_forward: not a graded function" in \
        wrong.stderr


def test_grade_writes_a_json_per_submission_and_a_gradebook_and_exits_0(submissions, tmp_path):
    out = tmp_path / "out"
    done = run("grade", *ASSIGNMENT, "--out", out, "--jobs", 2, "--json", "-", *FAST,
               submissions)
    batch = json.loads(done.stdout)
    assert sorted(r["name"] for r in batch) == ["blank", "buggy", "reference"]
    assert {r["name"]: r["score"] for r in batch} == {"blank": 0, "buggy": 13, "reference": 24}
    assert "3 graded, 0 up to date" in done.stderr
    for name in ("blank", "buggy", "reference"):
        assert results.read_result(out / f"{name}.json")["name"] == name
    rows = list(csv.DictReader((out / "gradebook.csv").open()))
    assert [(r["name"], r["score"], r["percent"]) for r in rows] == [
        ("blank", "0.0", "0.0"), ("buggy", "13.0", "54.17"), ("reference", "24.0", "100.0")]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_rerun_resumes_a_changed_file_is_regraded_and_force_regrades_all(submissions, tmp_path):
    out = tmp_path / "out"
    run("grade", *ASSIGNMENT, "--out", out, *FAST, submissions)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}
    again = run("grade", *ASSIGNMENT, "--out", out, *FAST, submissions)
    assert "0 graded, 3 up to date (skipped)" in again.stdout
    assert before == {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}
    (submissions / "blank.py").write_text((SUBMISSIONS / "reference.py").read_text())
    changed = run("grade", *ASSIGNMENT, "--out", out, *FAST, submissions)
    assert "1 graded, 2 up to date" in changed.stdout
    assert results.read_result(out / "blank.json")["score"] == 24
    forced = run("grade", *ASSIGNMENT, "--out", out, "--force", *FAST, submissions)
    assert "3 graded, 0 up to date" in forced.stdout


def test_shards_split_the_batch_deterministically_and_merge_into_one_gradebook(submissions,
                                                                              tmp_path):
    names = ["blank", "buggy", "reference"]
    for k in (1, 2):
        run("grade", *ASSIGNMENT, "--out", tmp_path / f"shard{k}", "--shard", f"{k}/2", *FAST,
            submissions)
        graded = sorted(p.stem for p in (tmp_path / f"shard{k}").glob("*.json"))
        assert graded == sorted(n for n in names if shard_of(n, 2) == k)
    done = run("gradebook", *ASSIGNMENT, "--out", tmp_path / "all", tmp_path / "shard1",
               tmp_path / "shard2")
    assert "3 results" in done.stdout
    rows = list(csv.DictReader((tmp_path / "all" / "gradebook.csv").open()))
    assert [r["name"] for r in rows] == names


def test_usage_errors_exit_2_with_a_message(submissions):
    done = run("grade", "--assignment", "no_such_thing", submissions, check=False)
    assert done.returncode == 2 and "no hidden suite" in done.stderr
    done = run("grade", *ASSIGNMENT, submissions / "missing.py", check=False)
    assert done.returncode == 2 and "no such file" in done.stderr
    done = run("grade", *ASSIGNMENT, "--shard", "3/2", submissions, check=False)
    assert done.returncode == 2 and "K/N" in done.stderr


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    results.atomic_write(path, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        results.atomic_write(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


@pytest.mark.slow
def test_a_killed_batch_keeps_every_finished_result_and_resumes(submissions, tmp_path):
    for i in range(3):    # slow submissions: one call timeout each
        (submissions / f"slow{i}.py").write_text(compose_attack("infinite_loop_in_function.py"))
    out = tmp_path / "out"
    env = dict(os.environ, AUTOGRADER_SUITES_PATH=str(FIXTURE_SUITES))
    batch = subprocess.Popen([sys.executable, "-m", "autograder", "grade", *ASSIGNMENT,
                              "--out", str(out), *FAST, "--no-progress", str(submissions)],
                             cwd=KIT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("*.json"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(batch.pid, signal.SIGKILL)      # the grader and its workers die at once
        batch.wait(timeout=30)
    finally:
        if batch.poll() is None:
            os.killpg(batch.pid, signal.SIGKILL)
    kept = sorted(out.glob("*.json"))
    assert 2 <= len(kept) < 6
    for path in kept:                              # every file on disk is a whole result
        assert results.read_result(path) is not None, path.name
    resumed = run("grade", *ASSIGNMENT, "--out", out, *FAST, submissions)
    assert f"{6 - len(kept)} graded, {len(kept)} up to date" in resumed.stdout
    assert len(list(out.glob("*.json"))) == 6
