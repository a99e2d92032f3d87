"""`from autograder import check` inside a real Jupyter kernel (nbclient executes a notebook):
the kernel's current definitions are graded in a separate process and the report appears in
the cell as HTML; a later definition replaces an earlier one; the course's
nbgrader_config.py can switch the check off or limit it to some functions; without
namespaces the report says what isolation it had. Scores refer to the frozen fixture a2
suite (24 points)."""

import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.notebook_check import definitions_source

sys.path.insert(0, str(Path(__file__).parent))
from fixtures.autograder.support import FIXTURE_SUITES, SUBMISSIONS  # noqa: E402

A2 = "a2_fully_connected"


def run_notebook(folder: Path, cells: list[str], **env) -> list[str]:
    """Execute `cells` in a fresh kernel started in `folder`; the HTML or text each cell shows."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    old = dict(os.environ)
    os.environ.update(AUTOGRADER_SUITES_PATH=str(FIXTURE_SUITES), **env)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(folder)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    shown = []
    for cell in nb.cells:
        parts = []
        for output in cell.outputs:
            data = output.get("data", {})
            parts.append(data.get("text/html") or data.get("text/plain") or
                         output.get("text", "") or "\n".join(output.get("traceback", [])))
        shown.append("\n".join(parts))
    return shown


def test_definitions_source_keeps_imports_and_the_last_definitions():
    cells = ["import numpy as np\nx = np.ones(3)\nSTEP = 1\n",
             "def f(a):\n    return a + STEP\n\nprint(f(1))\n",
             "STEP = 2\n",
             "%time y = 2\n@staticmethod\ndef g():\n    return 0\n",
             "def f(a):\n    return a + STEP + 1\n",
             "this is not python"]
    source = definitions_source(cells)
    namespace: dict = {}
    exec(compile(source, "defs", "exec"), namespace)          # noqa: S102 - our own text
    assert namespace["f"](1) == 1 + 2 + 1 and "np" in namespace    # the last f, the last STEP
    assert "x = " not in source and "print" not in source and "%time" not in source
    assert source.count("def f") == 1 and source.count("STEP =") == 1


@pytest.mark.slow
def test_check_in_a_kernel_grades_the_current_definitions_and_shows_html(tmp_path):
    reference = (SUBMISSIONS / "reference.py").read_text()
    buggy = (SUBMISSIONS / "buggy.py").read_text()
    shown = run_notebook(tmp_path, [
        reference,
        "from autograder import check\n"
        f"check('affine_forward', assignment='{A2}')",
        buggy,                                  # redefined: now the buggy versions count
        f"check(assignment='{A2}')",
    ])
    one, everything = shown[1], shown[3]
    assert "autograder-check" in one and "affine_forward" in one
    assert "4 / 4 points" in one and "relu_forward" not in one
    assert "13 / 24 points" in everything and "<pre" in everything


@pytest.mark.slow
def test_the_course_can_switch_the_check_off_or_limit_it(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.NotebookCheck.functions = {{'{A2}': ['relu_forward']}}\n")
    reference = (SUBMISSIONS / "reference.py").read_text()
    shown = run_notebook(tmp_path, [
        reference,
        f"from autograder import check\ncheck('affine_forward', assignment='{A2}')",
    ])
    assert "allows checking only these functions" in shown[1] and "relu_forward" in shown[1]
    (tmp_path / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.NotebookCheck.disabled_assignments = ['{A2}']\n")
    shown = run_notebook(tmp_path, [f"from autograder import check\ncheck(assignment='{A2}')"])
    assert "switched off by the course" in shown[0]


@pytest.mark.slow
def test_without_namespaces_the_report_says_which_isolation_it_had(tmp_path):
    reference = (SUBMISSIONS / "reference.py").read_text()
    shown = run_notebook(tmp_path, [
        reference,
        f"from autograder import check\ncheck('relu_forward', assignment='{A2}')",
    ], AUTOGRADER_ISOLATION="none")
    assert "3 / 3 points" in shown[1]
    assert "sandbox: none" in shown[1] or "no namespaces" in shown[1], shown[1]


def test_without_the_resource_module_the_sandbox_reports_its_limits_as_not_set():
    """As on Windows: `resource` cannot be imported; the child's lock-down still loads and
    records that no limit was set instead of failing to start (real interpreter)."""
    import json
    import subprocess
    code = ("import json, sys\nsys.modules['resource'] = None\n"
            "from autograder.sandbox import lockdown\n"
            "print(json.dumps(lockdown._set_limits({'memory_mb': 512, 'cpu_seconds': 10, "
            "'file_mb': 1, 'nproc': 8})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    limits = json.loads(done.stdout)
    assert set(limits) >= {"RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NPROC"}
    assert all(value.startswith("not set (this system has no resource limits)")
               for value in limits.values())


@pytest.mark.slow
def test_in_a_simulated_system_without_sandbox_features_the_cell_says_what_was_missing(tmp_path):
    """As on Windows or a hosted notebook (AUTOGRADER_SIMULATE_MISSING, see
    tests/test_autograder_degraded.py): the check still runs and scores, and the HTML in the
    cell lists the protections that were not active and says that it gives no marks."""
    reference = (SUBMISSIONS / "reference.py").read_text()
    shown = run_notebook(tmp_path, [
        reference,
        f"from autograder import check\ncheck('relu_forward', assignment='{A2}')",
    ], AUTOGRADER_SIMULATE_MISSING="all")
    cell = shown[1]
    assert "3 / 3 points" in cell, cell
    assert "Not active on this system" in cell and "no resource limits" in cell
    assert "no seccomp filter" in cell and "no process groups" in cell
    assert "marks are given only by the instructor&#x27;s grading" in cell
    assert "DEGRADED" in cell
