"""The attack fixtures, each graded by the real runner in a real sandbox.

Every file in tests/fixtures/autograder/submissions/attacks/ is graded as reference.py plus
the attack (see its README) in ONE batch with two worker processes; each test checks the
attack's expected safe outcome: the attacked functions score 0 (or, for attacks at import
time, nothing is lost at all), every other function keeps its full marks, the batch goes on,
time stays bounded, nothing is written outside the sandbox and no process survives it.
Limits are small (3 s per call, 8 s per loaded statement) so the batch takes well under a
minute on an idle 2-core machine; it is marked slow because it can take longer on a busy one.
"""

import json
import os
import sys
from pathlib import Path

import pytest

from autograder.runner import GradeOptions, grade_batch
from autograder.sandbox import Limits, isolation_mode

sys.path.insert(0, str(Path(__file__).parent))
from fixtures.autograder.support import (  # noqa: E402
    ATTACKS,
    FIXTURE_SUITES,
    FULL,
    FUNCTIONS,
    SOURCE_DIR,
    SUBMISSIONS,
    compose_attack,
    messages,
    scores,
)

pytestmark = pytest.mark.slow

# Loads get more room than calls: importing course_lib inside the sandbox takes about a second
# on a busy machine.
LIMITS = Limits(call_timeout=3, load_timeout=8, submission_timeout=90)

# Expected outcome per attack: the functions that must score 0 (all others: full marks).
ATTACK_ZEROS = {
    "patch_numpy_and_builtins": {"affine_forward", "affine_backward", "relu_forward"},
    "patch_showtraceback": {"relu_forward", "relu_backward"},
    "exit_at_import": set(),
    "exit_in_function": {"affine_forward", "affine_backward", "softmax_loss"},
    "infinite_loop_at_import": set(),
    "infinite_loop_in_function": {"svm_loss"},
    "memory_bomb": {"relu_forward", "relu_backward"},
    "fork_bomb": set(),
    "huge_output": set(),
    "write_outside": {"affine_forward", "affine_backward"},
    "forbidden_imports": set(FULL),
    "lying_ndarray": {"affine_forward", "softmax_loss"},
    "evil_pickle": {"svm_loss", "relu_backward"},
    "nan_and_wrong_types": {"affine_forward", "relu_forward", "softmax_loss", "svm_loss"},
    "syntax_error": {"relu_backward"},
    "read_solutions": {"affine_forward", "affine_backward"},
    "reimport_reference": set(FULL),
    "forged_replies": {"svm_loss", "relu_backward"},
    "reference_code_reuse": {"affine_backward", "relu_backward", "softmax_loss", "svm_loss"},
}
HOST_TARGETS = ["/tmp/AUTOGRADER_ATTACK_WRITTEN", "/var/tmp/AUTOGRADER_ATTACK_WRITTEN",
                "/dev/shm/AUTOGRADER_ATTACK_WRITTEN", "/tmp/AUTOGRADER_UNPICKLED",
                os.path.expanduser("~/AUTOGRADER_ATTACK_WRITTEN")]


def _kit_targets() -> list[str]:
    import numpy
    kit = Path(__file__).resolve().parents[1]
    return [str(Path(numpy.__file__).parent / "AUTOGRADER_ATTACK_WRITTEN"),
            str(kit / "AUTOGRADER_ATTACK_WRITTEN")]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attacks")
    out = tmp_path_factory.mktemp("results")
    paths = []
    for attack in sorted(ATTACKS.glob("*.py")) + sorted(ATTACKS.glob("*.txt")):
        path = folder / f"{attack.stem}.py"          # .txt: not Python on purpose (lint)
        path.write_text(compose_attack(attack.name))
        paths.append(path)
    for target in HOST_TARGETS + _kit_targets():
        assert not os.path.exists(target), f"{target} exists before the test"
    options = GradeOptions(assignment="a2_fully_connected", source_dir=SOURCE_DIR, out_dir=out,
                           limits=LIMITS)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOGRADER_SUITES_PATH", str(FIXTURE_SUITES))
        summary = grade_batch(paths, options, jobs=2, progress=False)
    return {"results": {r["name"]: r for r in summary.results}, "summary": summary,
            "out": out, "folder": folder}


def test_every_attack_was_graded_and_the_batch_went_on(batch):
    assert not batch["summary"].failed
    assert sorted(batch["results"]) == sorted(ATTACK_ZEROS)
    assert SUBMISSIONS.joinpath("reference.py").is_file()


@pytest.mark.parametrize("attack", sorted(ATTACK_ZEROS))
def test_attack_has_its_expected_safe_outcome(batch, attack):
    result = batch["results"][attack]
    expected = {f: 0 if f in ATTACK_ZEROS[attack] else FULL[f] for f in FUNCTIONS}
    assert scores(result) == expected, [t["message"] for t in result["tests"] if not t["passed"]]
    assert result["run"]["seconds"] < LIMITS.submission_timeout


def test_forbidden_functions_say_why(batch):
    result = batch["results"]["forbidden_imports"]
    assert "uses course_lib.affine_forward" in messages(result, "affine_forward")
    assert "calls _helper, which uses course_lib.relu_forward" in messages(result, "relu_forward")
    assert "is course_lib.svm_loss itself" in messages(result, "svm_loss")
    # Only the sandbox's tripwire can see a computed module name.
    assert "calls course_lib.losses.softmax_loss" in messages(result, "softmax_loss")
    assert "reference implementation" in messages(result, "svm_loss")


def test_reference_reached_again_or_run_from_its_code_is_caught_and_named(batch):
    fresh = batch["results"]["reimport_reference"]
    assert "calls course_lib.layers.affine.affine_forward" in messages(fresh, "affine_forward")
    assert "calls course_lib.layers.activations.relu_forward" in messages(fresh,
                                                                          "relu_forward")
    assert "calls course_lib.losses.softmax_loss" in messages(fresh, "softmax_loss")
    assert "calls course_lib.losses.svm_loss" in messages(fresh, "svm_loss")
    reused = batch["results"]["reference_code_reuse"]
    assert "uses course_lib.layers.affine," in messages(reused, "affine_backward")
    assert "uses course_lib.layers.activations," in messages(reused, "relu_backward")
    assert "uses course_lib.losses," in messages(reused, "softmax_loss")
    assert "calls gc.get_objects" in messages(reused, "svm_loss")


def test_forged_replies_are_the_students_failure_not_the_graders(batch):
    result = batch["results"]["forged_replies"]
    assert result["key"]
    assert "malformed reply" in messages(result, "svm_loss")
    assert "malformed reply" in messages(result, "relu_backward")
    assert not any("internal error" in e["message"] or "grader failed" in e["message"]
                   for e in result["errors"])


def test_exits_loops_and_crashes_are_reported_not_fatal(batch):
    results = batch["results"]
    assert "raised SystemExit" in messages(results["exit_in_function"], "affine_forward")
    assert "exit with code 0" in messages(results["exit_in_function"], "softmax_loss")
    assert "did not finish within 3 s" in messages(results["infinite_loop_in_function"],
                                                   "svm_loss")
    notes = " ".join(results["infinite_loop_at_import"]["notes"])
    assert "did not finish within 8 s" in notes
    notes = " ".join(results["exit_at_import"]["notes"])
    assert "SystemExit" in notes and "exit with code 3" in notes
    assert "MemoryError" in messages(results["memory_bomb"], "relu_forward")


def test_lies_and_foreign_objects_are_rejected_by_type(batch):
    results = batch["results"]
    assert "subclass of numpy.ndarray" in messages(results["lying_ndarray"],
                                                   "affine_forward")
    assert "LyingFloat" in messages(results["lying_ndarray"], "softmax_loss")
    assert "Payload" in messages(results["evil_pickle"], "svm_loss")
    wrong = results["nan_and_wrong_types"]
    assert "got a list" in messages(wrong, "affine_forward")
    assert "dtype int64" in messages(wrong, "relu_forward")
    assert "loss is nan" in messages(wrong, "softmax_loss")
    assert "got a str" in messages(wrong, "svm_loss")


def test_hidden_suites_and_solutions_cannot_be_read(batch):
    if "read-only" not in batch["results"]["read_solutions"]["sandbox"]["filesystem"]:
        pytest.skip("no mount namespace here: " + isolation_mode()[2])
    text = messages(batch["results"]["read_solutions"], "affine_forward")
    assert "nothing to copy; hidden suites visible: False" in text


def test_huge_output_is_drained_and_capped(batch):
    result = batch["results"]["huge_output"]
    assert result["run"]["stdout_bytes"] >= 100 * 1024 * 1024
    assert len(json.dumps(result)) < 100_000


def test_nothing_was_written_outside_the_sandbox(batch):
    if "read-only" not in batch["results"]["write_outside"]["sandbox"]["filesystem"]:
        pytest.skip("no mount namespace here: " + isolation_mode()[2])
    for target in HOST_TARGETS + _kit_targets():
        assert not os.path.exists(target), target
    written = sorted(p.name for p in batch["out"].iterdir())
    assert all(n.endswith(".json") or n == "gradebook.csv" for n in written)


def test_no_sandbox_process_outlives_the_batch(batch):
    marker = str(batch["folder"])
    leftovers = []
    for entry in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "autograder.sandbox.child" in cmdline and marker in cmdline:
            leftovers.append(entry)
    assert leftovers == []
