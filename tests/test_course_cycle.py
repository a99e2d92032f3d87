"""The instructor's whole cycle through the real nbgrader CLI, for all three assignments.

generate_assignment -> autograde (through the trusted runner) of a reference, a blank and a
buggy submission -> generate_feedback -> export, in a temporary course directory, driven by
autograder.course_demo (the same code `make demo` runs).
"""
import re

import nbformat
import pytest

from autograder.course_demo import ASSIGNMENTS, BUGS, build_course, read_grades

pytestmark = pytest.mark.slow

# Autograded points per assignment: the sum of the hidden suites' points, which
# tests/test_assignment_<a>.py ties to the notebooks' test cells.
AUTOGRADED = {"a1_linear_classifiers": 69, "a2_fully_connected": 148,
              "a3_convolutional_nets": 74}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    grades = build_course(root)
    return root, read_grades(grades)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_has_no_solution_code_and_no_hidden_tests(course, assignment):
    root, _ = course
    release = nbformat.read(root / "assignments" / "release" / assignment / f"{assignment}.ipynb",
                            as_version=4)
    text = "\n".join(cell.source for cell in release.cells)
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    # The buggy line is a line of the reference solution: it must not be handed out.
    _, reference_line, _ = BUGS[assignment]
    assert reference_line not in text
    solutions = [c for c in release.cells if c.metadata.get("nbgrader", {}).get("solution")]
    code = [c for c in solutions if c.cell_type == "code"]
    assert code and all("raise NotImplementedError()" in c.source for c in code)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exported_scores_reference_full_blank_zero_buggy_in_between(course, assignment):
    _, grades = course
    reference, maximum = grades[(assignment, "reference")]
    assert reference == AUTOGRADED[assignment]  # free-response points await formgrader
    assert maximum > reference
    assert grades[(assignment, "blank")][0] == 0
    assert 0 < grades[(assignment, "buggy")][0] < reference


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_feedback_shows_no_hidden_test_code(course, assignment):
    root, _ = course
    pages = list((root / "feedback").glob(f"*/{assignment}/*.html"))
    assert len(pages) == 3
    for page in pages:
        html = page.read_text()
        assert "BEGIN HIDDEN TESTS" not in html
        # Suite internals (fixtures and comparison helpers) never reach a student.
        assert not re.search(r"expect_array|pytest\.mark|student\.\w+\(", html)
