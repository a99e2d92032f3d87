"""The a1_linear_classifiers assignment is valid: its notebook, its hidden suite and the two
agree, the suite gives full marks to correct code and takes points from buggy code.

- The source notebook's own solutions score 100% through the CLI, and each test cell's points
  equal the suite's total for its function.
- The release notebook (nbgrader's generate preprocessors, ClearSolutions included) scores 0
  on every autograded function.
- Mutants (tests/fixtures/assignments/a1_linear_classifiers/mutants.toml, each the reference
  solution with ONE bug, its header naming the function it attacks) lose points on that
  function; correct alternative implementations (alternatives/) and accepted variants
  (accepted.toml: the solution with ONE substitution another correct student would write)
  get full marks. A mutant that follows another course year's convention (PINNED) loses
  exactly the one test that pins ours, and the mutants of MESSAGES get a message naming the
  likely cause.
- The gradients students derive are in collapsed, progressive hint cells, not in the text.
- The notebook runs top to bottom in a real kernel, uses no reference function of course_lib,
  and prepares the training data exactly as the hidden suite does.

Grading all mutants, alternatives and the release goes through one `grade_batch` call with
two workers (about 25 s on two cores); those tests are marked slow.
"""

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import numpy as np
import pytest
from mutants import Mutant, build_mutants, load_mutants, mutant_source

from autograder.forbidden import Policy, reference_names
from autograder.runner import GradeOptions, grade_batch
from autograder.suites import load_suite

ASSIGNMENT = "a1_linear_classifiers"
ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = ROOT / "assignments" / "source"
NOTEBOOK = SOURCE_DIR / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
FIXTURES = ROOT / "tests" / "fixtures" / "assignments" / ASSIGNMENT
SOLUTION = FIXTURES / "solution.py"
MUTANTS = load_mutants(FIXTURES)
ALTERNATIVES = sorted((FIXTURES / "alternatives").glob("*.py"))
with (FIXTURES / "accepted.toml").open("rb") as _file:
    ACCEPTED = [Mutant(name, **spec) for name, spec in sorted(tomllib.load(_file).items())]
# Other years' conventions for an edge case: each loses exactly the test that pins ours.
PINNED = {"predict_ties_to_nearest":
          "test_predict_labels_breaks_vote_ties_towards_the_smallest_label",
          "no_loops_without_the_clamp":
          "test_distances_are_never_nan_for_duplicate_points_with_fractional_values[no loops]"}
# Words the student must see in at least one failure message of these mutants (the cause).
MESSAGES = {
    "predict_ties_to_nearest": "wrong in",
    "no_loops_without_the_clamp": "clamp it at 0 before np.sqrt",
    "svm_vectorized_full_reg": "the course's L2 term is 0.5 * reg * sum(W**2)",
    "softmax_vectorized_returns_longdouble": "numpy.longdouble (float128)",
    "softmax_naive_no_max_shift": "subtract each row's maximum score",
}
# The gradients students derive: only in collapsed hint cells, never in the visible text.
CLOSED_FORMS = [r"\partial L_i / \partial s_j = p_j - [j = y_i]",
                "minus the number of positive margins", "p - onehot"]
SUITE = load_suite(ASSIGNMENT)
FUNCTIONS = list(SUITE.functions)
MANUAL_POINTS = 10


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def read_notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


def cell_points() -> dict[str, float]:
    """grade_id test_<function> -> points of the notebook's autograded test cells."""
    points = {}
    for cell in read_notebook().cells:
        meta = nbgrader_meta(cell)
        if meta.get("grade") and not meta.get("solution"):
            points[meta["grade_id"].removeprefix("test_")] = float(meta["points"])
    return points





# ----------------------------------------------------------------------------- the notebook

def test_notebook_has_a_solution_and_a_test_cell_for_every_graded_function():
    cells = read_notebook().cells
    solutions = [nbgrader_meta(c)["grade_id"] for c in cells
                 if nbgrader_meta(c).get("solution") and not nbgrader_meta(c).get("grade")]
    assert solutions == FUNCTIONS
    assert sorted(cell_points()) == sorted(FUNCTIONS)
    for cell in cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution") and not meta.get("grade"):
            assert cell.cell_type == "code"
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source
            # The solution region sits inside the function: the stub keeps its def and return.
            assert cell.source.lstrip().startswith(f"def {meta['grade_id']}(")
            assert cell.source.rstrip().splitlines()[-1].strip().startswith("return")


def test_notebook_free_response_questions_are_manually_graded_markdown():
    answers = [c for c in read_notebook().cells
               if nbgrader_meta(c).get("grade") and nbgrader_meta(c).get("solution")]
    assert len(answers) == 5
    assert all(c.cell_type == "markdown" for c in answers)
    assert sum(nbgrader_meta(c)["points"] for c in answers) == MANUAL_POINTS


def test_notebook_is_committed_without_outputs():
    with_outputs = [i for i, c in enumerate(read_notebook().cells)
                    if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not with_outputs


def test_notebook_cells_use_no_reference_function_of_course_lib():
    # Visible checks and demos may use course_lib's helpers (data, gradient checks, plots),
    # never the functions the students implement.
    forbidden = reference_names(Policy(SUITE.forbidden, SUITE.allowed))
    used = set()
    for cell in read_notebook().cells:
        if cell.cell_type != "code":
            continue
        code = "\n".join(line for line in cell.source.splitlines() if not line.startswith("%"))
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.ImportFrom) and node.module == "course_lib":
                used |= {f"course_lib.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in ("course_lib", "cl"):
                used.add(f"course_lib.{node.attr}")
    assert used, "the notebook should import its helpers from course_lib"
    assert not used & forbidden


def test_fixture_solution_is_the_notebooks_solution_code():
    # The mutants are made from tests/fixtures/.../solution.py; it must stay the notebook's code.
    notebook_defs = {}
    for cell in read_notebook().cells:
        if nbgrader_meta(cell).get("solution") and cell.cell_type == "code":
            for node in ast.parse(cell.source).body:
                notebook_defs[node.name] = ast.dump(node)
    fixture = ast.parse((FIXTURES / "solution.py").read_text())
    fixture_defs = {n.name: ast.dump(n) for n in fixture.body if isinstance(n, ast.FunctionDef)}
    assert fixture_defs == notebook_defs


def test_notebook_prepares_the_training_data_exactly_as_the_grader():
    from autograder.suites.a1_linear_classifiers.data import linear_classifier_data
    from course_lib import load_mnist
    suite_data = linear_classifier_data()
    cell = next(c for c in read_notebook().cells
                if nbgrader_meta(c).get("grade_id") == "setup_linear_data")
    definition = next(n for n in ast.parse(cell.source).body
                      if isinstance(n, ast.FunctionDef) and n.name == "linear_classifier_data")
    namespace = {"np": np, "load_mnist": load_mnist}
    exec(compile(ast.Module([definition], []), "setup_linear_data", "exec"), namespace)
    notebook_data = namespace["linear_classifier_data"]()
    assert sorted(notebook_data) == ["X_train", "X_val", "y_train", "y_val"]
    for key, value in notebook_data.items():
        np.testing.assert_array_equal(value, suite_data[key], err_msg=key)


def test_gradients_are_progressive_hints_in_collapsed_cells():
    cells = read_notebook().cells
    hints = [c for c in cells if c.cell_type == "markdown" and c.source.startswith("#### Hint ")]
    assert all(c.metadata.get("jupyter", {}).get("source_hidden") is True for c in hints)
    numbers = [tuple(map(int, re.match(r"#### Hint (\d+)/(\d+)", c.source).groups()))
               for c in hints]
    groups = [[(j, n) for j in range(1, n + 1)] for k, n in numbers if k == 1]
    assert len(groups) >= 2 and numbers == [pair for group in groups for pair in group]
    outside = "\n".join(re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION", "", c.source, flags=re.S)
                        for c in cells if c not in hints)
    assert not [form for form in CLOSED_FORMS if form in outside]
    assert all(any(form in c.source for c in hints) for form in CLOSED_FORMS[:2])


def test_there_are_enough_mutants_and_alternatives_and_every_mutant_names_a_graded_function():
    assert len(MUTANTS) >= 23 and len(ALTERNATIVES) >= 3 and len(ACCEPTED) >= 2
    assert set(PINNED) | set(MESSAGES) <= {m.name for m in MUTANTS}
    assert not {m.name for m in MUTANTS} & {a.name for a in ACCEPTED}
    attacked = {mutant.attacks for mutant in MUTANTS}
    assert attacked <= set(FUNCTIONS)
    assert attacked == set(FUNCTIONS), "every graded function has at least one mutant"


@pytest.mark.parametrize("mutant", MUTANTS + ACCEPTED, ids=[m.name for m in MUTANTS + ACCEPTED])
def test_mutant_substitution_applies_exactly_once_to_the_solution(mutant):
    source = mutant_source(SOLUTION, mutant)  # raises unless `old` occurs exactly once
    assert source != SOLUTION.read_text()


@pytest.mark.slow
def test_source_notebook_runs_top_to_bottom_in_a_kernel(monkeypatch):
    from nbclient import NotebookClient
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # One BLAS thread, as in the grading sandbox: the training task's time check then measures
    # what the grader sees (several BLAS threads on a busy machine are many times slower).
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "1")
    notebook = read_notebook()
    client = NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()   # raises CellExecutionError with the failing cell on any error


# ----------------------------------------------------------------------------- grading

@pytest.mark.slow
def test_source_notebook_scores_full_marks_through_the_cli(tmp_path):
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", "--assignment", ASSIGNMENT,
         "--source", str(SOURCE_DIR), "--out", str(out), "--no-progress", str(NOTEBOOK)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    # The path looks like nbgrader's <student>/<assignment>/<notebook> layout: one result.
    (result_file,) = out.glob("*.json")
    result = json.loads(result_file.read_text())
    failed = [(t["id"], t["message"]) for t in result["tests"] if not t["passed"]]
    assert not failed
    assert result["score"] == result["max_score"] > 0
    assert not result["errors"]
    # nbgrader gives a test cell points * (function score / function maximum): the cell's
    # points are the suite's total for that function, so both gradebooks agree.
    points = cell_points()
    assert {f: s["max_score"] for f, s in result["functions"].items()} == points


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Results of the release notebook, every mutant and every alternative (one batch)."""
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearHiddenTests,
        ClearMarkScheme,
        ClearOutput,
        ClearSolutions,
        ComputeChecksums,
        LockCells,
    )
    tmp = tmp_path_factory.mktemp("a1_grading")
    # The same preprocessors, in the same order, as `nbgrader generate_assignment` (minus the
    # database): the student's copy with `raise NotImplementedError()` in every solution.
    release, resources = read_notebook(), {}
    for step in (LockCells, ClearSolutions, ClearOutput, CheckCellMetadata, ComputeChecksums,
                 ClearHiddenTests, ClearMarkScheme, ComputeChecksums, CheckCellMetadata):
        release, resources = step().preprocess(release, resources)
    release_path = tmp / "release" / f"{ASSIGNMENT}_release.ipynb"
    release_path.parent.mkdir()
    nbformat.write(release, release_path)
    # Mutants and accepted variants that leave the training task alone are graded without it
    # (`functions`: every other graded function), which saves one training run each.
    training = "train_linear_classifier"
    built = build_mutants(SOLUTION, MUTANTS + ACCEPTED, tmp / "mutants")
    partial = [path for path in built
               if path.stem in {m.name for m in MUTANTS + ACCEPTED if m.attacks != training}]
    full = [release_path, *ALTERNATIVES, *[path for path in built if path not in partial]]
    results = {}
    for paths, functions in ((full, ()), (partial, tuple(f for f in FUNCTIONS if f != training))):
        summary = grade_batch(paths, GradeOptions(assignment=ASSIGNMENT, source_dir=SOURCE_DIR,
                                                  out_dir=tmp / "results", functions=functions),
                              jobs=2, force=True, progress=False, gradebook=False)
        assert not summary.failed
        results |= {result["name"]: result for result in summary.results}
    return results


@pytest.mark.slow
def test_release_notebook_scores_zero_on_every_autograded_function(graded):
    result = graded[f"{ASSIGNMENT}_release"]
    assert set(result["functions"]) == set(FUNCTIONS)
    scored = {f: s["score"] for f, s in result["functions"].items() if s["score"] != 0}
    assert not scored
    assert result["max_score"] == sum(cell_points().values())


@pytest.mark.slow
@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_loses_points_on_the_function_it_attacks(graded, mutant):
    result = graded[mutant.name]
    function = mutant.attacks
    summary = result["functions"][function]
    assert summary["score"] < summary["max_score"], f"{mutant.name} kept all points of {function}"
    assert not result["errors"] or all(e["function"] == function for e in result["errors"])


@pytest.mark.slow
@pytest.mark.parametrize("alternative", ALTERNATIVES, ids=[a.stem for a in ALTERNATIVES])
def test_correct_alternative_gets_full_marks(graded, alternative):
    result = graded[alternative.stem]
    failed = [(t["id"], t["message"]) for t in result["tests"] if not t["passed"]]
    assert not failed
    assert result["score"] == result["max_score"] == sum(cell_points().values())


@pytest.mark.slow
@pytest.mark.parametrize("mutant", list(PINNED), ids=list(PINNED))
def test_other_years_convention_loses_only_the_test_that_pins_ours(graded, mutant):
    failed = [t["id"] for t in graded[mutant]["tests"] if not t["passed"]]
    assert [test.split("::")[-1] for test in failed] == [PINNED[mutant]], failed


@pytest.mark.slow
@pytest.mark.parametrize("mutant", list(MESSAGES), ids=list(MESSAGES))
def test_failure_message_names_the_likely_cause(graded, mutant):
    messages = [t["message"] for t in graded[mutant]["tests"] if not t["passed"]]
    assert any(MESSAGES[mutant] in message for message in messages), messages[:3]


@pytest.mark.slow
@pytest.mark.parametrize("variant", ACCEPTED, ids=[v.name for v in ACCEPTED])
def test_accepted_variant_scores_full_marks(graded, variant):
    # Graded without the training task (the variant does not touch it): full marks on the rest.
    result = graded[variant.name]
    failed = [(t["id"], t["message"]) for t in result["tests"] if not t["passed"]]
    assert not failed
    points = cell_points()
    assert result["score"] == result["max_score"] == sum(points.values()) - \
        points["train_linear_classifier"]
