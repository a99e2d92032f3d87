"""The a2_fully_connected assignment is valid: its hidden suite grades what it should.

* the source notebook's own solutions score 100% through the runner (as does the fixture module
  tests/fixtures/assignments/a2_fully_connected/solution.py, which is those solutions);
* the release notebook (nbgrader's ClearSolutions applied to the source) scores 0 on every
  graded function;
* every mutant (mutants.toml: the solution with ONE documented bug) loses points on the
  function it attacks;
* every alternative (alternatives/*.py: other correct implementations) and every accepted
  variant (accepted.toml: the solution with ONE substitution that another correct student
  would write, e.g. the max shift without log-sum-exp) scores 100%;
* a mutant that follows another course year's convention (PINNED) loses exactly the one test
  that pins the course's convention, and the messages of the mutants in MESSAGES name the
  likely cause;
* the derivations are progressive hints in collapsed cells, not in the visible text;
* each test cell's points equal the suite's total for its function, and the notebook runs top
  to bottom in a real kernel.

All submissions are graded in one batch (`grade_batch`, two worker processes).
"""

from __future__ import annotations

import ast
import re
import tomllib
from functools import lru_cache
from pathlib import Path

import nbformat
import pytest
from mutants import Mutant, build_mutants, load_mutants, mutant_source

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "a2_fully_connected"
SOURCE_DIR = ROOT / "assignments" / "source"
NOTEBOOK = SOURCE_DIR / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
FIXTURES = Path(__file__).parent / "fixtures" / "assignments" / ASSIGNMENT
SOLUTION = FIXTURES / "solution.py"
MUTANTS = load_mutants(FIXTURES)
ALTERNATIVES = sorted((FIXTURES / "alternatives").glob("*.py"))
with (FIXTURES / "accepted.toml").open("rb") as _file:
    ACCEPTED = [Mutant(name, **spec) for name, spec in sorted(tomllib.load(_file).items())]
# Other years' conventions for an edge case: each loses exactly the test that pins ours.
PINNED = {"relu_backward_passes_gradient_at_zero": "test_relu_backward_gradient_at_zero_is_zero"}
# Words the student must see in at least one failure message of these mutants (the cause).
MESSAGES = {
    "relu_backward_passes_gradient_at_zero": "at x == 0 the gradient must be 0 (CONTRACT.md",
    "relu_backward_writes_into_the_cache": "second backward call with the same cache",
    "dropout_p_is_keep_probability": "probability of DROPPING",
    "dropout_forward_pops_the_seed": "changed dropout_param",
    "layernorm_forward_sets_default_eps_in_ln_param": "changed ln_param",
    "two_layer_net_full_reg": "the course's L2 term is 0.5 * reg * sum(W**2)",
    "batchnorm_backward_dgamma_keepdims": "another course year's convention",
    "softmax_loss_returns_longdouble": "numpy.longdouble (float128)",
    "softmax_loss_no_max_shift": "subtract each row's maximum",
}
# The closed forms students derive: only in collapsed hint cells, never in the visible text.
CLOSED_FORMS = [r"N\,\text{dout} - d\beta - \hat x\, d\gamma",
                r"\frac{1}{N}\left(p_{n,j} - \mathbb{1}[j = y_n]\right)",
                r"\text{dout}\; W^\top", "N * dout - dbeta - xhat * dgamma"]
# What a visible check may import from the library (never a reference layer).
ALLOWED_FROM_COURSE_LIB = {"Solver", "load_digits", "load_mnist", "show_image_grid"}
ALLOWED_COURSE_LIB_MODULES = ("course_lib.gradient_check", "course_lib.data",
                              "course_lib.plotting")


@lru_cache(maxsize=1)
def _source_text() -> str:
    return NOTEBOOK.read_text()


def read_source() -> nbformat.NotebookNode:
    """A fresh copy of the source notebook (callers may modify it)."""
    return nbformat.reads(_source_text(), as_version=4)


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def solution_cells(nb) -> dict[str, str]:
    return {nbgrader_meta(c)["grade_id"]: c.source for c in nb.cells
            if c.cell_type == "code" and nbgrader_meta(c).get("solution")}


def grade_cells(nb) -> dict[str, float]:
    return {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c)["points"]) for c in nb.cells
            if c.cell_type == "code" and nbgrader_meta(c).get("grade")}


def load_suite_functions() -> dict[str, dict]:
    from autograder.suites import load_suite
    return load_suite(ASSIGNMENT).functions


def graded_functions() -> list[str]:
    return list(solution_cells(read_source()))




def code_after_docstring(path: Path) -> str:
    return path.read_text().split('"""\n', 1)[1]


# ----------------------------------------------------------------------------- structure (fast)

def test_every_graded_function_has_a_solution_cell_and_a_test_cell():
    nb = read_source()
    solutions, tests = solution_cells(nb), grade_cells(nb)
    assert {f"test_{name}" for name in solutions} == set(tests)
    assert len(solutions) == 22
    for name, source in solutions.items():
        assert "### BEGIN SOLUTION" in source and "### END SOLUTION" in source, name
        assert re.search(rf"^(def|class) {name}\b", source, re.M), name


def test_hidden_suite_registers_every_graded_function():
    from autograder.suites import load_suite
    suite = load_suite(ASSIGNMENT)
    missing = [f for f in graded_functions() if f not in suite.functions]
    assert not missing, (f"autograder/suites/{ASSIGNMENT}/__init__.py must list these in "
                         f"FUNCTIONS: {missing}")
    assert {"course_lib.solver", "course_lib.schedules"} <= set(suite.allowed), \
        "the training task needs course_lib.Solver, so ALLOWED must include course_lib.solver"


def test_fixture_solution_module_is_the_notebook_solutions():
    nb = read_source()
    cells = [source.strip("\n") + "\n" for source in solution_cells(nb).values()]
    body = code_after_docstring(SOLUTION)
    preamble, functions = body.split("\n\n\n", 1)
    assert "from course_lib import Solver" in preamble
    assert functions == "\n\n".join(cells)


def test_free_response_questions_are_manually_graded_markdown_cells():
    nb = read_source()
    questions = [c for c in nb.cells if c.cell_type == "markdown"
                 and nbgrader_meta(c).get("solution") and nbgrader_meta(c).get("grade")]
    assert len(questions) == 7
    assert all(float(nbgrader_meta(c)["points"]) > 0 for c in questions)
    # The three experiment questions ask about the student's own plots and carry a rubric.
    experiments = [c for c in questions if nbgrader_meta(c)["grade_id"].startswith("q_experiment")]
    assert len(experiments) == 3
    assert all("Grading:" in c.source for c in questions)


def hint_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("#### Hint ")]


def test_derivations_are_progressive_hints_in_collapsed_cells():
    nb = read_source()
    hints = hint_cells(nb)
    assert len(hints) >= 10
    assert all(c.metadata.get("jupyter", {}).get("source_hidden") is True for c in hints)
    numbers = [tuple(map(int, re.match(r"#### Hint (\d+)/(\d+)", c.source).groups()))
               for c in hints]
    # Each group runs 1/n, 2/n, ..., n/n in order (the closed form last).
    groups = [[(j, n) for j in range(1, n + 1)] for k, n in numbers if k == 1]
    assert numbers == [pair for group in groups for pair in group], numbers
    visible = "\n".join(c.source for c in nb.cells if c not in hints and
                        not nbgrader_meta(c).get("solution"))
    stubs = "\n".join(re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION", "", c.source, flags=re.S)
                      for c in nb.cells if nbgrader_meta(c).get("solution"))
    for form in CLOSED_FORMS:
        assert form not in visible and form not in stubs, form
    last_hints = "\n".join(c.source for c, (k, n) in zip(hints, numbers, strict=True) if k == n)
    assert all(form in last_hints for form in CLOSED_FORMS[:3])


def test_visible_checks_import_no_reference_layer():
    """Test cells, setup and demo cells may use the gradient checks, data, plots and Solver."""
    nb = read_source()
    for cell in nb.cells:
        if cell.cell_type != "code" or nbgrader_meta(cell).get("solution"):
            continue
        source = "\n".join(line for line in cell.source.splitlines()
                           if not line.lstrip().startswith("%"))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.module == "course_lib":
                names = {alias.name for alias in node.names}
                assert names <= ALLOWED_FROM_COURSE_LIB, names
            elif isinstance(node, ast.ImportFrom) and node.module.startswith("course_lib"):
                assert node.module.startswith(ALLOWED_COURSE_LIB_MODULES), node.module
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("course_lib") for a in node.names)


def test_release_removes_every_solution_and_model_answer(release_notebook):
    nb = nbformat.read(release_notebook, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    assert "BEGIN SOLUTION" not in text and "Model answer" not in text
    # The hints stay, collapsed; outside them the release has no closed form.
    hints = hint_cells(nb)
    assert len(hints) == len(hint_cells(read_source()))
    assert all(c.metadata.get("jupyter", {}).get("source_hidden") is True for c in hints)
    outside = "\n".join(c.source for c in nb.cells if c not in hints)
    assert not [form for form in CLOSED_FORMS if form in outside]
    assert text.count("raise NotImplementedError()") >= len(graded_functions())
    assert set(grade_cells(nb)) == set(grade_cells(read_source()))


def test_there_are_enough_mutants_and_alternatives():
    attacked = {mutant.attacks for mutant in MUTANTS}
    assert len(MUTANTS) >= 46 and len(ALTERNATIVES) >= 3 and len(ACCEPTED) >= 4
    assert set(PINNED) | set(MESSAGES) <= {m.name for m in MUTANTS}
    assert not {m.name for m in MUTANTS} & {a.name for a in ACCEPTED}
    assert attacked == set(graded_functions()), "every graded function has a mutant"


@pytest.mark.parametrize("mutant", MUTANTS + ACCEPTED, ids=[m.name for m in MUTANTS + ACCEPTED])
def test_mutant_substitution_applies_exactly_once_to_the_solution(mutant):
    source = mutant_source(SOLUTION, mutant)  # raises unless `old` occurs exactly once
    assert source != SOLUTION.read_text()
    assert mutant.attacks in solution_cells(read_source())


# ----------------------------------------------------------------------------- grading (slow)

@pytest.fixture(scope="module")
def release_notebook(tmp_path_factory) -> Path:
    """nbgrader's ClearSolutions applied to the source notebook (what students receive)."""
    from nbgrader.preprocessors import ClearSolutions
    nb, _ = ClearSolutions().preprocess(read_source(), {})
    path = tmp_path_factory.mktemp("release") / f"release_{ASSIGNMENT}.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def graded(release_notebook, tmp_path_factory) -> dict[str, dict]:
    """Every submission of this file graded once: file stem -> result.

    The release copy is named release_<assignment>.ipynb, so stems are unique; results are
    matched by their submission path (the runner names them its own way). Mutants and accepted
    variants that leave the training task alone are graded without it (`functions`: every
    other graded function), which saves one training run each; the rest get everything.
    """
    from autograder.runner import GradeOptions, grade_batch
    training = "train_digits_model"
    variants = [m for m in MUTANTS + ACCEPTED if m.attacks != training]
    built = build_mutants(SOLUTION, MUTANTS + ACCEPTED, tmp_path_factory.mktemp("mutants"))
    partial = [path for path in built if path.stem in {m.name for m in variants}]
    full = [NOTEBOOK, release_notebook, SOLUTION, *ALTERNATIVES,
            *[path for path in built if path not in partial]]
    out = tmp_path_factory.mktemp("results")
    results = []
    for paths, functions in ((full, ()),
                             (partial, tuple(f for f in graded_functions() if f != training))):
        options = GradeOptions(assignment=ASSIGNMENT, source_dir=SOURCE_DIR, out_dir=out,
                               functions=functions)
        summary = grade_batch(paths, options, jobs=2, progress=False, gradebook=False)
        assert not summary.failed, summary.failed
        results += summary.results
    by_path = {Path(r["submission"]["path"]).resolve(): r for r in results}
    return {path.stem: by_path[path.resolve()] for path in full + partial}


def explain(result: dict) -> str:
    failed = [f"{t['id']}: {t['message']}" for t in result["tests"] if not t["passed"]]
    return "\n".join(failed[:10] + [e["message"][:500] for e in result["errors"][:5]])


@pytest.mark.slow
def test_source_notebook_scores_full_marks(graded):
    result = graded[ASSIGNMENT]
    assert set(result["functions"]) >= set(graded_functions())
    assert result["score"] == result["max_score"] > 0, explain(result)


@pytest.mark.slow
def test_solution_module_scores_full_marks(graded):
    result = graded["solution"]
    assert result["score"] == result["max_score"] > 0, explain(result)


@pytest.mark.slow
def test_test_cell_points_equal_the_suite_totals(graded):
    functions = graded[ASSIGNMENT]["functions"]
    points = grade_cells(read_source())
    assert {name: points[f"test_{name}"] for name in graded_functions()} == \
        {name: functions[name]["max_score"] for name in graded_functions()}


@pytest.mark.slow
def test_release_notebook_scores_zero_on_every_function(graded):
    result = graded[f"release_{ASSIGNMENT}"]
    scored = {f: s["score"] for f, s in result["functions"].items() if s["score"] > 0}
    assert not scored, scored
    assert result["max_score"] == graded[ASSIGNMENT]["max_score"]


@pytest.mark.slow
@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_loses_points_on_the_function_it_attacks(graded, mutant):
    scores = graded[mutant.name]["functions"][mutant.attacks]
    assert scores["score"] < scores["max_score"], \
        f"{mutant.name} keeps full marks on {mutant.attacks}"


LENT = set(load_suite_functions()["FullyConnectedNet"]["uses"])
LAYER_MUTANTS = [m for m in MUTANTS if m.attacks in LENT]


@pytest.mark.slow
@pytest.mark.parametrize("mutant", LAYER_MUTANTS, ids=[m.name for m in LAYER_MUTANTS])
def test_a_layer_mutant_costs_no_points_in_the_networks_graded_with_lent_layers(graded, mutant):
    for model in ("TwoLayerNet", "FullyConnectedNet"):
        scores = graded[mutant.name]["functions"][model]
        assert scores["score"] == scores["max_score"], f"{mutant.name} loses points in {model}"


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
    result = graded[variant.name]
    assert result["score"] == result["max_score"] > 0, explain(result)


@pytest.mark.slow
@pytest.mark.parametrize("path", ALTERNATIVES, ids=[p.stem for p in ALTERNATIVES])
def test_alternative_scores_full_marks(graded, path):
    result = graded[path.stem]
    assert result["score"] == result["max_score"] > 0, explain(result)


@pytest.mark.slow
def test_source_notebook_runs_top_to_bottom_in_a_kernel(tmp_path, monkeypatch):
    from nbclient import NotebookClient
    # One BLAS thread, as in the grading sandbox: the training task's time check then measures
    # what the grader sees (several BLAS threads on a busy machine are many times slower).
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "1")
    nb = read_source()
    client = NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type == "error" or (o.output_type == "stream" and o.name == "stderr")]
    assert not errors, errors[:3]
