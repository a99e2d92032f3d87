"""An instructor in JupyterLab and formgrader, on the scratch course of conftest.py.

The tests run in file order on one course, as an instructor works: see the submission, autograde
it with the Autograde button (then edit the hidden suite and autograde again), grade the written
answer and comment on it, generate feedback, export the grades from a JupyterLab terminal. Each
asserts what the page shows and, where the page writes something, what nbgrader stored.
"""
import csv
import re
import time

import pytest
from fixtures.autograder.support import FULL, FUNCTIONS
from nbgrader.api import Gradebook
from playwright.sync_api import expect

from browser.conftest import (
    ASSIGNMENT,
    COURSE_ID,
    STUDENT,
    STUDENT_NAME,
    VENV_BIN,
    WRITTEN_ID,
    WRITTEN_POINTS,
)
from browser.ui import open_lab, run_command

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AUTOGRADE_TIMEOUT = 240_000
MANUAL_SCORE = 1.5
COMMENT = "Right count; say which axis is the batch."
EDIT_MARKER = "EDITED-SUITE"
# A check added to the hidden suite while formgrader runs; its long message must wrap.
ADDED_CHECK = f'''

@pytest.mark.points(1)
def test_relu_backward_added_after_release(student):
    pytest.fail("{EDIT_MARKER}: " + "this check was added after the release and always fails; " * 8)
'''


def submission_row(page):
    return page.locator("#main-table tr").filter(has_text=STUDENT)


def autograde_with_button(page, lab) -> str:
    """Click Autograde for the student; the success dialog's text (with nbgrader's log)."""
    page.goto(lab.page_url(f"formgrader/manage_submissions/{ASSIGNMENT}"))
    submission_row(page).locator("td.autograde a").click()
    dialog = page.locator("#success-modal")
    expect(dialog).to_be_visible(timeout=AUTOGRADE_TIMEOUT)
    text = dialog.inner_text()
    dialog.locator(".modal-footer button").click()
    expect(dialog).to_be_hidden()
    return text


def open_submission(page, lab):
    """The formgrade page of the student's notebook, reached through the gradebook."""
    page.goto(lab.page_url(f"formgrader/gradebook/{ASSIGNMENT}/{ASSIGNMENT}"))
    page.locator("#main-table tr a", has_text="Submission #1").click()
    page.wait_for_selector(f"input.score#{WRITTEN_ID}")


def checks_passed(page, function: str) -> tuple[int, int]:
    """(passed, total) from the runner's headline in the function's test cell output."""
    cell = page.locator(".cell").filter(has_text=f"# Visible check of {function}")
    expect(cell).to_contain_text(f"{function}: ")
    found = re.search(rf"{function}: (\d+) of (\d+) hidden checks passed", cell.inner_text())
    assert found, cell.inner_text()
    return int(found[1]), int(found[2])


def test_formgrader_in_jupyterlab_lists_assignment_and_named_submission(page, lab):
    open_lab(page, lab)
    run_command(page, "nbgrader:open-formgrader")
    frame = page.frame_locator("#formgrader-iframe iframe")
    row = frame.locator("#main-table tr").filter(has_text=ASSIGNMENT)
    expect(row.locator("td.status")).to_have_text("released")
    expect(row.locator("td.num-submissions")).to_have_text("1")
    row.locator("td.num-submissions a").click()
    student = frame.locator("#main-table tr").filter(has_text=STUDENT)
    expect(student.locator("td.student-name")).to_have_text(
        f"{STUDENT_NAME[1]}, {STUDENT_NAME[0]}")
    expect(student.locator("td.timestamp")).to_contain_text("2026-12-01")
    expect(student.locator("td.status")).to_have_text("needs autograding")


def test_autograde_button_grades_with_trusted_runner_and_edited_suite(page, lab, course):
    log = autograde_with_button(page, lab)
    assert f"Successfully autograded '{ASSIGNMENT}' for student '{STUDENT}'" in log
    assert "with the trusted runner" in log, log
    expect(submission_row(page).locator("td.status")).to_have_text("needs manual grading")
    open_submission(page, lab)
    before = checks_passed(page, "relu_backward")
    assert before[0] == before[1] > 0, f"relu_backward is right in this submission: {before}"
    expect(page.locator(".cell").filter(has_text="# Visible check of svm_loss")).to_contain_text(
        "svm_loss: ")
    assert EDIT_MARKER not in page.content()

    tests = course.suites / ASSIGNMENT / "test_affine_relu.py"
    tests.write_text(tests.read_text() + ADDED_CHECK)
    autograde_with_button(page, lab)
    open_submission(page, lab)
    assert checks_passed(page, "relu_backward") == (before[0], before[1] + 1)
    relu_backward = page.locator(".cell").filter(has_text="# Visible check of relu_backward")
    message = relu_backward.locator("pre", has_text=EDIT_MARKER)
    expect(message).to_be_visible()
    # The long message wraps: nothing of it is hidden beyond the right edge.
    overflow = message.evaluate("e => e.scrollWidth - e.clientWidth")
    assert overflow <= 1, f"the message runs {overflow} px past its box"


def test_manual_score_and_comment_are_saved(page, lab, course, network):
    open_submission(page, lab)
    answer = page.locator(".nbgrader_cell").filter(has=page.locator(f"input#{WRITTEN_ID}"))
    # The student's maths is typeset by the locally served MathJax (the network is closed).
    expect(answer.locator("span.MathJax").first).to_be_visible()
    with page.expect_response(lambda r: "/formgrader/api/grade/" in r.url
                              and r.request.method == "PUT"):
        page.locator(f"input.score#{WRITTEN_ID}").fill(str(MANUAL_SCORE))
        page.keyboard.press("Tab")
    with page.expect_response(lambda r: "/formgrader/api/comment/" in r.url
                              and r.request.method == "PUT"):
        page.locator(f"textarea#{WRITTEN_ID}-comment").fill(COMMENT)
        page.keyboard.press("Tab")
    page.reload()
    expect(page.locator(f"input.score#{WRITTEN_ID}")).to_have_value(str(MANUAL_SCORE))
    expect(page.locator(f"textarea#{WRITTEN_ID}-comment")).to_have_value(COMMENT)
    with Gradebook(course.db_url, COURSE_ID) as gradebook:
        grade = gradebook.find_grade(WRITTEN_ID, ASSIGNMENT, ASSIGNMENT, STUDENT)
        comment = gradebook.find_comment(WRITTEN_ID, ASSIGNMENT, ASSIGNMENT, STUDENT)
        assert (grade.manual_score, grade.max_score) == (MANUAL_SCORE, WRITTEN_POINTS)
        assert comment.manual_comment == COMMENT
    assert network.refused == [], f"pages tried to reach the network: {network.refused}"


def test_feedback_renders_maths_names_functions_and_hides_tests(page, lab, network):
    page.goto(lab.page_url(f"formgrader/manage_submissions/{ASSIGNMENT}"))
    submission_row(page).locator("td.generate-feedback a").click()
    dialog = page.locator("#success-modal")
    expect(dialog).to_be_visible(timeout=AUTOGRADE_TIMEOUT)
    expect(dialog).to_contain_text("Successfully generated feedback")

    page.goto(lab.page_url(f"files/feedback/{STUDENT}/{ASSIGNMENT}/{ASSIGNMENT}.html"))
    expect(page.locator("span.MathJax").first).to_be_visible()
    assert page.locator("span.MathJax").count() >= 3      # question, display sum, answer
    shown = page.locator("body").inner_text()
    assert "\\times" not in shown and "Math Processing Error" not in shown, "raw or broken TeX"
    expect(page.locator("#toc li.test-cell code.function-name")).to_have_text(FUNCTIONS)
    expect(page.locator("#toc")).to_contain_text("Comment")
    expect(page.locator(".panel-footer")).to_contain_text(COMMENT)
    text = page.locator("body").inner_text()
    for hidden in ("HIDDEN-MARKER", "BEGIN HIDDEN TESTS", "def test_", "student.call"):
        assert hidden not in text, f"feedback shows hidden test code ({hidden!r})"
    message = page.locator("pre", has_text=EDIT_MARKER).first
    expect(message).to_be_visible()
    overflow = message.evaluate("e => e.scrollWidth - e.clientWidth")
    assert overflow <= 1, f"the message runs {overflow} px past its box"
    assert network.refused == [], f"pages tried to reach the network: {network.refused}"


def test_export_from_jupyterlab_terminal_has_manual_score(page, lab, course):
    open_lab(page, lab)
    run_command(page, "terminal:create-new")
    terminal = page.locator(".jp-Terminal .xterm-screen")
    expect(terminal).to_be_visible()
    terminal.click()
    # The terminal's shell finds the venv's nbgrader (make lab puts the venv first on PATH).
    page.keyboard.type("command -v nbgrader > export.log; nbgrader export --to grades.csv "
                       ">> export.log 2>&1; echo $? > export.status\n")
    status = lab.root / "export.status"
    deadline = time.monotonic() + 120
    while not (status.exists() and status.read_text().strip()):
        assert time.monotonic() < deadline, "the export command did not finish in 120 s"
        time.sleep(0.5)
    log = (lab.root / "export.log").read_text()
    assert status.read_text().strip() == "0", log
    assert log.splitlines()[0] == str(VENV_BIN / "nbgrader"), log
    with (lab.root / "grades.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["student_id"] == STUDENT]
    assert len(rows) == 1, rows
    with Gradebook(course.db_url, COURSE_ID) as gradebook:
        submission = gradebook.find_submission(ASSIGNMENT, STUDENT)
        autograded = submission.code_score
        assert submission.written_score == MANUAL_SCORE
    assert float(rows[0]["score"]) == pytest.approx(autograded + MANUAL_SCORE)
    assert float(rows[0]["max_score"]) == sum(FULL.values()) + WRITTEN_POINTS
