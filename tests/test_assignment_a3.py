"""The a3_convolutional_nets assignment is valid: its hidden suite grades what it should.

* the source notebook's own solutions score 100% through the runner, and so does the fixture
  module tests/fixtures/assignments/a3_convolutional_nets/solution.py (those same solutions);
* the release notebook (nbgrader's ClearSolutions applied to the source) scores 0 on every
  graded function;
* every mutant (mutants.toml: the solution with ONE documented substitution) loses points on
  the function it attacks; a mutant that follows another tie rule (PINNED) loses exactly the
  one test that pins the course's, and the messages of the mutants in MESSAGES name the cause;
* the backward derivations are progressive hints in collapsed cells, not in the visible text
  or the stubs' docstrings;
* every alternative (alternatives/*.py: im2col, stride tricks and einsum, four loops, einsum
  over kernel offsets with gamma reshaped to (1, C, 1, 1) inside; other
  caches, loop orders and backward derivations) scores 100%;
* a submission that delegates its convolution to course_lib (forbidden/) gets 0 for it and
  for everything that calls it, and keeps full marks elsewhere;
* each test cell's points equal the suite's total for its function, and the notebook runs top
  to bottom in a real kernel.

The submissions are graded in two batches (`grade_batch`, two worker processes): whole ones
(the notebook, the solution, the alternatives and the training mutants: each trains a ConvNet on
MNIST, about 10 s) and the layer and model mutants without the training task. A mutant of a
layer must cost no point in ThreeLayerConvNet, which is graded with the grader's layers lent to
it (autograder/sandbox/references.py).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
from mutants import build_mutants, load_mutants, mutant_source

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "a3_convolutional_nets"
SOURCE_DIR = ROOT / "assignments" / "source"
NOTEBOOK = SOURCE_DIR / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
FIXTURES = Path(__file__).parent / "fixtures" / "assignments" / ASSIGNMENT
SOLUTION = FIXTURES / "solution.py"
MUTANTS = load_mutants(FIXTURES)
ALTERNATIVES = sorted((FIXTURES / "alternatives").glob("*.py"))
FORBIDDEN = FIXTURES / "forbidden" / "uses_the_library_conv.py"
LAYERS = ("conv_forward_naive", "conv_backward_naive", "max_pool_forward_naive",
          "max_pool_backward_naive")
GRADED_FUNCTIONS = ["conv_forward_naive", "conv_backward_naive", "max_pool_forward_naive",
                    "max_pool_backward_naive", "spatial_batchnorm_forward",
                    "spatial_batchnorm_backward", "spatial_groupnorm_forward",
                    "spatial_groupnorm_backward", "ThreeLayerConvNet", "train_digits_convnet"]
# Another tie rule for max pooling: each loses exactly the test that pins the course's rule.
TIE_TEST = "test_max_pool_backward_naive_sends_ties_to_the_first_maximum"
PINNED = {"pool_backward_last_maximum": TIE_TEST, "pool_backward_every_maximum": TIE_TEST}
# Words the student must see in at least one failure message of these mutants (the cause).
MESSAGES = {
    "pool_backward_last_maximum": "FIRST maximum in row-major order",
    "sgn_forward_gamma_shaped_1c11": "not (1, C, 1, 1)",
    "sgn_backward_dgamma_keepdims": "not (1, C, 1, 1)",
    "conv_forward_stores_its_output_size_in_conv_param": "changed conv_param",
    "pool_forward_stores_its_input_shape_in_pool_param": "changed pool_param",
    "sbn_backward_scales_the_cached_xhat_in_place": "second backward call with the same cache",
    "convnet_pool_size_rounds_up": "floors odd sizes",
}
# The closed forms students derive: only in the last collapsed hint of each group, never in
# the visible text or in a stub (what is left of a solution cell without its solution).
CLOSED_FORMS = [r"\sum_f \text{dout}[n, f, i, j]\; w[f, c, k, l]",
                r"M\,\text{dout} - \sum \text{dout} - \hat x \sum \text{dout}\cdot\hat x",
                r"\text{d}\hat x - \operatorname{mean}(\text{d}\hat x)",
                "M * dout - dbeta - xhat * dgamma", "dxhat - mean(dxhat) - xhat * mean(",
                "dx_pad[n, c, i*s + k, j*s + l] +="]


def read_source() -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def solution_cells(nb) -> dict[str, str]:
    return {nbgrader_meta(c)["grade_id"]: c.source for c in nb.cells
            if c.cell_type == "code" and nbgrader_meta(c).get("solution")}


def grade_cells(nb) -> dict[str, float]:
    return {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c)["points"]) for c in nb.cells
            if c.cell_type == "code" and nbgrader_meta(c).get("grade")}


def without_markers(source: str) -> str:
    return "".join(line for line in source.splitlines(keepends=True)
                   if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


def code_after_docstring(path: Path) -> str:
    """The module's code after its docstring (and after a mutant's `# ruff: noqa` line)."""
    text = path.read_text()
    code = text[text.index('"""\n', 3) + 4:]
    return code.split("\n", 1)[1] if code.startswith("# ruff: noqa") else code




# ----------------------------------------------------------------------------- structure (fast)

def test_every_graded_function_has_a_solution_cell_and_a_test_cell():
    nb = read_source()
    solutions, tests = solution_cells(nb), grade_cells(nb)
    assert list(solutions) == GRADED_FUNCTIONS
    assert {f"test_{name}" for name in solutions} == set(tests)
    for name, source in solutions.items():
        assert "### BEGIN SOLUTION" in source and "### END SOLUTION" in source, name
        assert re.search(rf"^(def|class) {name}\b", source, re.M), name


def test_hidden_suite_registers_every_graded_function_and_allows_the_a2_layers():
    from autograder.forbidden import Policy
    from autograder.suites import load_suite
    suite = load_suite(ASSIGNMENT)
    assert list(suite.functions) == GRADED_FUNCTIONS
    policy = Policy(suite.forbidden, suite.allowed)
    # The given layers' and optimizers' kernels (threads over the batch, ReLU's backward, Adam)
    # are allowed with them; the conv and pooling kernels are not.
    for module in ("course_lib.layers.affine", "course_lib.layers.activations",
                   "course_lib.losses", "course_lib.solver", "course_lib.optim",
                   "course_lib.kernels.threads", "course_lib.kernels.elementwise",
                   "course_lib.kernels.optim"):
        assert policy.hit(module) is None, f"{module} should be allowed in {ASSIGNMENT}"
    for module in ("course_lib.layers.conv", "course_lib.layers.pooling",
                   "course_lib.layers.normalization", "course_lib.layers.composite",
                   "course_lib.models", "course_lib.kernels.conv", "course_lib.kernels.pooling",
                   "course_lib.kernels.normalization", "scipy.signal"):
        assert policy.hit(module), f"{module} must be forbidden in {ASSIGNMENT}"


def test_fixture_solution_module_is_the_notebook_solutions():
    cells = [without_markers(source).strip("\n") + "\n"
             for source in solution_cells(read_source()).values()]
    preamble, functions = code_after_docstring(SOLUTION).split("\n\n\n", 1)
    assert "import numpy as np" in preamble and "from course_lib import (" in preamble
    assert functions == "\n\n".join(cells)


def test_free_response_questions_are_manually_graded_markdown_cells():
    questions = [c for c in read_source().cells if c.cell_type == "markdown"
                 and nbgrader_meta(c).get("solution") and nbgrader_meta(c).get("grade")]
    assert len(questions) == 5
    assert all(float(nbgrader_meta(c)["points"]) > 0 for c in questions)
    # The two experiment questions ask about the student's own plots and carry a rubric.
    cells = read_source().cells
    experiments = [i for i, c in enumerate(cells) if c.cell_type == "markdown"
                   and "about your" in c.source and nbgrader_meta(c).get("locked")
                   and nbgrader_meta(c).get("grade_id", "").startswith("question")]
    assert len(experiments) == 2
    for i in experiments:
        assert cells[i - 1].cell_type == "code" and "plt.show()" in cells[i - 1].source
        assert "Grading:" in cells[i + 1].source and nbgrader_meta(cells[i + 1]).get("grade")


def test_cells_outside_the_solutions_import_nothing_forbidden_from_course_lib():
    """Setup, demo and visible-check cells may use the a2 layers, gradient checks, data,
    plots and Solver, never the reference layers the students are writing."""
    import course_lib
    from autograder.forbidden import Policy
    from autograder.suites import load_suite
    suite = load_suite(ASSIGNMENT)
    policy = Policy(suite.forbidden, suite.allowed)
    for cell in read_source().cells:
        if cell.cell_type != "code" or nbgrader_meta(cell).get("solution"):
            continue
        source = "\n".join(line for line in cell.source.splitlines()
                           if not line.lstrip().startswith("%"))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.module == "course_lib":
                for alias in node.names:
                    origin = getattr(course_lib, alias.name).__module__
                    assert policy.hit(origin) is None, f"{alias.name} comes from {origin}"
            elif isinstance(node, ast.ImportFrom) and node.module.startswith("course_lib"):
                assert policy.hit(node.module) is None, node.module
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("course_lib") for a in node.names)


def hint_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("#### Hint ")]


def test_derivations_are_progressive_hints_in_collapsed_cells():
    nb = read_source()
    hints = hint_cells(nb)
    assert len(hints) == 11         # conv 3, pool 2, spatial batch norm 3, group norm 3
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


def test_pinned_conventions_are_stated_next_to_their_functions():
    text = "\n".join(c.source for c in read_source().cells)
    for words in ("**first** maximum in row-major order", "**not** $(1, C, 1, 1)$",
                  "odd sizes are floored", "never write into it", "the same cache"):
        assert words in text, words


def test_source_notebook_is_committed_without_outputs():
    cells = [i for i, c in enumerate(read_source().cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not cells, f"clear the outputs of cells {cells}"


def test_release_removes_every_solution_and_model_answer(release_notebook):
    nb = nbformat.read(release_notebook, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    assert "BEGIN SOLUTION" not in text and "Conv layer: each filter has" not in text
    # The hints stay, collapsed; outside them the release has no closed form.
    hints = hint_cells(nb)
    assert len(hints) == len(hint_cells(read_source()))
    assert all(c.metadata.get("jupyter", {}).get("source_hidden") is True for c in hints)
    outside = "\n".join(c.source for c in nb.cells if c not in hints)
    assert not [form for form in CLOSED_FORMS if form in outside]
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    # One stub per function, three in ThreeLayerConvNet (__init__, scores, loss and grads).
    assert code.count("raise NotImplementedError()") == len(GRADED_FUNCTIONS) + 2
    assert set(grade_cells(nb)) == set(grade_cells(read_source()))


def test_there_are_enough_mutants_and_alternatives():
    attacked = {mutant.attacks for mutant in MUTANTS}
    assert len(MUTANTS) >= 35 and len(ALTERNATIVES) >= 4
    assert set(PINNED) | set(MESSAGES) <= {m.name for m in MUTANTS}
    assert attacked == set(GRADED_FUNCTIONS), "every graded function has a mutant"


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_substitution_applies_exactly_once_to_the_solution(mutant):
    source = mutant_source(SOLUTION, mutant)  # raises unless `old` occurs exactly once
    assert source != SOLUTION.read_text()
    assert mutant.attacks in GRADED_FUNCTIONS


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
    """Every submission of this file graded once: file stem -> result."""
    from autograder.runner import GradeOptions, grade_batch
    mutants = build_mutants(SOLUTION, MUTANTS, tmp_path_factory.mktemp("mutants"))
    trains = {m.name for m in MUTANTS if m.attacks == "train_digits_convnet"}
    whole = [NOTEBOOK, release_notebook, SOLUTION, FORBIDDEN, *ALTERNATIVES,
             *[p for p in mutants if p.stem in trains]]
    # A mutant of a layer or the model is graded without the training task (its bug is
    # elsewhere, and training takes most of a submission's time).
    layers = [p for p in mutants if p.stem not in trains]
    by_path = {}
    for paths, functions in ((whole, ()), (layers, tuple(GRADED_FUNCTIONS[:-1]))):
        options = GradeOptions(assignment=ASSIGNMENT, source_dir=SOURCE_DIR,
                               out_dir=tmp_path_factory.mktemp("results"), functions=functions)
        summary = grade_batch(paths, options, jobs=2, progress=False, gradebook=False)
        assert not summary.failed, summary.failed
        by_path.update({Path(r["submission"]["path"]).resolve(): r for r in summary.results})
    return {path.stem: by_path[path.resolve()] for path in [*whole, *layers]}


def explain(result: dict) -> str:
    failed = [f"{t['id']}: {t['message']}" for t in result["tests"] if not t["passed"]]
    return "\n".join(failed[:10] + [e["message"][:500] for e in result["errors"][:5]])


@pytest.mark.slow
def test_source_notebook_scores_full_marks(graded):
    result = graded[ASSIGNMENT]
    assert list(result["functions"]) == GRADED_FUNCTIONS
    assert result["score"] == result["max_score"] > 0, explain(result)
    assert not result["notes"], result["notes"]     # e.g. a setup line that fails to load


@pytest.mark.slow
def test_solution_module_scores_full_marks(graded):
    result = graded["solution"]
    assert result["score"] == result["max_score"] > 0, explain(result)


@pytest.mark.slow
def test_test_cell_points_equal_the_suite_totals(graded):
    functions = graded[ASSIGNMENT]["functions"]
    points = grade_cells(read_source())
    assert {name: points[f"test_{name}"] for name in GRADED_FUNCTIONS} == \
        {name: functions[name]["max_score"] for name in GRADED_FUNCTIONS}


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


@pytest.mark.slow
@pytest.mark.parametrize("mutant", list(PINNED), ids=list(PINNED))
def test_other_tie_rule_loses_only_the_test_that_pins_ours(graded, mutant):
    failed = [t["id"] for t in graded[mutant]["tests"] if not t["passed"]]
    assert [test.split("::")[-1] for test in failed] == [PINNED[mutant]], failed


@pytest.mark.slow
@pytest.mark.parametrize("mutant", list(MESSAGES), ids=list(MESSAGES))
def test_failure_message_names_the_likely_cause(graded, mutant):
    messages = [t["message"] for t in graded[mutant]["tests"] if not t["passed"]]
    assert any(MESSAGES[mutant] in message for message in messages), messages[:3]


@pytest.mark.slow
@pytest.mark.parametrize("path", ALTERNATIVES, ids=[p.stem for p in ALTERNATIVES])
def test_alternative_scores_full_marks(graded, path):
    result = graded[path.stem]
    assert result["score"] == result["max_score"] > 0, explain(result)


@pytest.mark.slow
@pytest.mark.parametrize("mutant", [m for m in MUTANTS if m.attacks in LAYERS],
                         ids=[m.name for m in MUTANTS if m.attacks in LAYERS])
def test_a_layer_mutant_costs_no_points_in_the_model_graded_with_lent_layers(graded, mutant):
    model = graded[mutant.name]["functions"]["ThreeLayerConvNet"]
    assert model["score"] == model["max_score"], f"{mutant.name} loses points in the model"


@pytest.mark.slow
def test_delegating_to_the_library_conv_scores_zero_where_it_is_used(graded):
    # The model is graded with the grader's own layers lent to it, so it keeps its marks;
    # the training task runs the student's (forbidden) convolution.
    functions = graded[FORBIDDEN.stem]["functions"]
    uses_conv = ["conv_forward_naive", "conv_backward_naive", "train_digits_convnet"]
    assert {f: functions[f]["score"] for f in uses_conv} == dict.fromkeys(uses_conv, 0.0)
    others = [f for f in GRADED_FUNCTIONS if f not in uses_conv]
    assert all(functions[f]["score"] == functions[f]["max_score"] for f in others), functions


@pytest.mark.slow
def test_source_notebook_runs_top_to_bottom_in_a_kernel(tmp_path, monkeypatch):
    from nbclient import NotebookClient
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = read_source()
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()   # raises CellExecutionError (cell and traceback) on any error
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert not errors, errors[:3]
