"""A student in JupyterLab: Assignment List fetch, a stub that stops with NotImplementedError,
a solution typed in the browser, the visible checks passing, nbgrader's Validate reporting
success (no version-check dialog), and the submission arriving in the course exchange."""
import os
import re
import subprocess
import time

import pytest
from fixtures.autograder.support import student_notebook, write_notebook
from playwright.sync_api import expect

from browser.conftest import ASSIGNMENT, COURSE_ID, VENV_BIN
from browser.ui import open_lab, run_command, wait_for_kernel_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RELU = "def relu_forward(x):\n    out = np.maximum(0, x)\n    return out, x\n"
ANSWER = r"One multiply-add per input, weight and output: $N \cdot D \cdot M$."
ERROR_OUTPUT = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"


def cell_with(page, text: str):
    return page.locator(".jp-Notebook .jp-Cell").filter(has_text=text)


def test_student_fetches_solves_validates_and_submits(page, lab, course):
    open_lab(page, lab)
    run_command(page, "nbgrader:open-assignment-list")
    page.locator("#refresh_assignments_list").click()
    released = page.locator("#released_assignments_list > .list_item")
    expect(released).to_have_count(1)
    expect(page.locator("#released_assignments_list_error")).to_be_hidden()
    expect(released.first.locator(".item_name")).to_have_text(ASSIGNMENT)
    expect(released.first.locator(".item_course")).to_have_text(COURSE_ID)
    released.first.locator(".item_status button").click()          # "Fetch"
    fetched = page.locator("#fetched_assignments_list > .list_item")
    expect(fetched).to_have_count(1)
    notebook = lab.root / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert notebook.is_file(), "Fetch did not put the assignment into the student's folder"

    # The student has solved everything but relu_forward, which is still the stub.
    fetched_nb = student_notebook("reference.py", notebook)
    stub = next(c for c in student_notebook("blank.py", notebook).cells
                if c.metadata.get("nbgrader", {}).get("grade_id") == "relu_forward")
    for cell in fetched_nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "relu_forward":
            cell.source = stub.source
    write_notebook(fetched_nb, notebook)

    run_command(page, "docmanager:open", {"path": f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb"})
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    wait_for_kernel_idle(page)
    run_command(page, "notebook:run-all-cells")
    check = cell_with(page, "# Visible check of relu_forward")
    expect(check.locator(ERROR_OUTPUT)).to_contain_text("NotImplementedError")

    # Type the solution into the stub's cell, as the student does, and run everything again.
    editor = cell_with(page, "def relu_forward(x):").filter(
        has_not_text="Visible check").locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(RELU)
    # ... and the written answer (a markdown cell: double-click to edit).
    answer = cell_with(page, "YOUR ANSWER HERE")
    answer.dblclick()
    answer.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(ANSWER)
    run_command(page, "notebook:run-all-cells")
    wait_for_kernel_idle(page)
    expect(page.locator(".jp-Notebook " + ERROR_OUTPUT)).to_have_count(0)
    # JupyterLab's own MathJax renders the maths of the question and of the answer, offline.
    expect(cell_with(page, "multiply-adds").locator("mjx-container").first).to_be_visible()
    for function in ("affine_forward", "relu_forward", "svm_loss"):
        prompt = cell_with(page, f"# Visible check of {function}").locator(
            ".jp-InputArea-prompt")
        expect(prompt).to_have_text(re.compile(r"^\s*\[\d+\]:\s*$"))
    run_command(page, "docmanager:save")

    page.locator("jp-button.validate-button").click()
    success = page.locator(".nbgrader-SuccessDialog .validation-success")
    expect(success).to_be_visible(timeout=180_000)
    dialog_text = page.locator(".jp-Dialog").inner_text()
    assert "Cannot check version" not in dialog_text and "Mismatch" not in dialog_text
    page.locator(".jp-Dialog .jp-mod-accept").click()

    run_command(page, "nbgrader:open-assignment-list")
    fetched.first.locator(".item_status button", has_text="Submit").click()
    submitted = page.locator("#submitted_assignments_list > .list_item")
    expect(submitted).to_have_count(1)
    expect(submitted.first.locator(".item_name").first).to_have_text(ASSIGNMENT)
    expect(submitted.first).to_contain_text(time.strftime("%Y-%m-%d", time.gmtime()))
    inbound = list((lab.root / "exchange" / COURSE_ID / "inbound").glob(
        f"*+{ASSIGNMENT}+*/{ASSIGNMENT}.ipynb"))
    assert len(inbound) == 1, inbound
    handed_in = inbound[0].read_text()
    assert "out = np.maximum(0, x)" in handed_in and "N \\\\cdot D" in handed_in


def test_nbgrader_lab_extension_is_enabled_and_compatible():
    """JupyterLab flags an extension built for another version with X (nbgrader issue 1948)."""
    listed = subprocess.run([str(VENV_BIN / "jupyter"), "labextension", "list"],
                            capture_output=True, text=True, env=dict(os.environ, NO_COLOR="1"),
                            timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr)
    line = next((x for x in text.splitlines() if "@jupyter/nbgrader" in x), None)
    assert line is not None, text
    assert re.search(r"\benabled\s+OK\b", line), line
