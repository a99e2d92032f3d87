"""Extraction of the student's code from notebooks and .py files, and the static check of
forbidden imports. Nothing here runs student code."""

import json
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.extraction import (
    clean_source,
    compute_checksum,
    describe_submission,
    extract,
    split_units,
)
from autograder.forbidden import Policy, reference_names, static_violations

sys.path.insert(0, str(Path(__file__).parent))
from fixtures.autograder.support import (  # noqa: E402
    FUNCTIONS,
    SOURCE_NOTEBOOK,
    student_notebook,
)


def source_nb() -> dict:
    return json.loads(SOURCE_NOTEBOOK.read_text())


def notebook_bytes(nb) -> bytes:
    return nbformat.writes(nb).encode()


def code_of(program, origin=None) -> str:
    return "\n".join(u["code"] for u in program.units if origin in (None, u["origin"]))


# ----------------------------------------------------------------------------- magics

def test_line_magics_and_shell_escapes_become_inert_calls():
    code, note = clean_source("%matplotlib inline\n!rm -rf /\nfiles = !ls\nx = 1\nx?\n")
    assert "!" not in code.replace("get_ipython()", "") and "%" not in code
    assert "get_ipython().system('rm -rf /')" in code and "x = 1" in code
    assert note == "IPython magics / shell escapes made inert"


def test_magics_inside_functions_keep_the_indentation_valid():
    code, _ = clean_source("def f(x):\n    %timeit x + 1\n    return x\n")
    compile(code, "cell", "exec")


def test_timing_cell_magic_keeps_its_body_and_other_cell_magics_drop_the_cell():
    code, note = clean_source("%%time\ndef f():\n    return 1\n")
    assert code.strip() == "def f():\n    return 1" and "%%time" in note
    code, note = clean_source("%%bash\ntouch /tmp/x\n")
    assert code is None and "%%bash" in note


def test_plain_python_is_left_alone():
    text = "a = (1\n     % 2)\nb = 'x!'\n"
    assert clean_source(text) == (text, None)


# ----------------------------------------------------------------------------- units

def test_each_top_level_statement_is_a_unit_with_its_own_line_numbers():
    units, problems = split_units("import numpy as np\n\n@decorate\ndef f(x):\n    return x\n"
                                  "a = 1; b = 2\nprint(a)\n", "c1", "student")
    assert problems == []
    assert [u["defines"] for u in units] == [["np"], ["f"], ["a", "b"], []]
    assert units[1]["line"] == 3 and units[1]["code"].startswith("@decorate")
    assert units[1]["id"] == "student:c1:2" and units[1]["file"] == "student cell c1"


def test_a_syntax_error_costs_only_the_definition_it_is_in():
    code = '"""Docstring over\ntwo lines."""\nimport numpy as np\n\ndef f(x)\n    return x\n\n' \
           'def g(x):\n    return 2 * x\n'
    units, problems = split_units(code, "module", "module")
    assert [u["defines"] for u in units] == [[], ["np"], ["g"]]
    assert problems == [(["f"], "syntax error on line 5: expected ':'")]


def test_declarative_filter_keeps_imports_definitions_and_constants_only():
    code = ("import numpy as np\nnp.random.seed(1)\ndata = load()\nEPS = 1e-8\n"
            "def helper():\n    pass\nplt.plot([1])\ntry:\n    import torch\nexcept ImportError:\n"
            "    torch = None\n")
    units, _ = split_units(code, "setup", "setup", declarative_only=True)
    assert [u["defines"] for u in units] == [["np"], ["EPS"], ["helper"], ["torch"]]


# ----------------------------------------------------------------------------- notebooks

def test_solution_cells_are_taken_and_test_cells_never():
    nb = student_notebook("reference.py")
    program = extract(notebook_bytes(nb), "notebook", source_nb())
    student = [u for u in program.units if u["origin"] == "student"]
    assert {u["cell"] for u in student} == set(FUNCTIONS)
    assert "HIDDEN-MARKER" not in code_of(program) and "assert" not in code_of(program)
    assert program.fatal is None


def test_setup_cells_come_from_the_source_and_only_their_declarations():
    nb = student_notebook("reference.py", edit={"setup": "import os\nos.system('echo hi')\n"})
    program = extract(notebook_bytes(nb), "notebook", source_nb())
    setup = code_of(program, "setup")
    assert "from course_lib.gradient_check import rel_error" in setup and "EPS = 1e-12" in setup
    assert "os.system" not in code_of(program) and "np.random.seed" not in setup
    assert "matplotlib" not in setup


def released(nb):
    """Locked cells carry their checksum, as in nbgrader's release version."""
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("locked"):
            cell.metadata.nbgrader["checksum"] = compute_checksum(cell)
    return nb


def test_without_a_source_only_intact_locked_setup_cells_are_used():
    intact = extract(notebook_bytes(released(student_notebook("reference.py"))), "notebook", None)
    assert "rel_error" in code_of(intact, "setup")
    edited = released(student_notebook("reference.py"))
    edited.cells[1].source = "import numpy as np\nEVIL = 1\n"
    program = extract(notebook_bytes(edited), "notebook", None)
    assert code_of(program, "setup") == ""
    assert any("setup cell setup was edited" in n for n in program.notes)


def test_checksum_matches_nbgrader_for_the_source_cells():
    for cell in source_nb()["cells"]:
        meta = cell["metadata"].get("nbgrader")
        if meta and meta.get("locked"):
            cell = json.loads(json.dumps(cell))
            cell["source"] = "".join(cell["source"])
            assert len(compute_checksum(cell)) == 32


def test_duplicated_and_missing_cells_are_noted():
    nb = student_notebook("reference.py", drop={"svm_loss"},
                          duplicate={"relu_forward": "def relu_forward(x):\n    return x, x\n"})
    program = extract(notebook_bytes(nb), "notebook", source_nb())
    cells = [u["cell"] for u in program.units if u["origin"] == "student"]
    assert cells.index("relu_forward") < cells.index("relu_forward (copy 2)")
    assert "solution cell svm_loss is missing from the submission" in program.notes
    assert any("relu_forward appears 2 times" in n for n in program.notes)


def test_solution_cell_with_stripped_metadata_is_still_found_by_its_grade_id():
    nb = student_notebook("reference.py")
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "svm_loss":
            cell.metadata.nbgrader["solution"] = False
    program = extract(notebook_bytes(nb), "notebook", source_nb())
    assert any(u["cell"] == "svm_loss" for u in program.units)


@pytest.mark.parametrize("data", [b"{not json", b'{"cells": 3}', b"\xff\xfe", b"[]",
                                  b'{"nbformat": 3, "cells": []}'])
def test_unreadable_notebooks_give_a_fatal_message_not_an_exception(data):
    program = extract(data, "notebook", source_nb())
    assert program.fatal and "could not be read" in program.fatal and program.units == []


def test_unreadable_file_is_reported():
    program = extract(b"the file could not be read (Permission denied)", "unreadable")
    assert program.fatal.startswith("the file could not be read")


def test_nbgrader_layout_gives_the_student_and_loose_files_do_not(tmp_path):
    sub = describe_submission(tmp_path / "submitted" / "alice" / "a2" / "a2.ipynb", "a2")
    assert (sub.student, sub.notebook, sub.kind) == ("alice", "a2", "notebook")
    assert sub.course_root == tmp_path
    loose = describe_submission(tmp_path / "mine.py", "a2")
    assert (loose.student, loose.kind, loose.course_root) == (None, "python", None)


# ----------------------------------------------------------------------------- forbidden

A2_POLICY = Policy({"course_lib": "reference", "torch": "framework", "scipy.special": "no"},
                   ["course_lib.gradient_check", "course_lib.data"])


def violations(code: str, setup: str = "") -> dict:
    units = [{"code": setup, "origin": "setup"}, {"code": code, "origin": "student"}]
    return static_violations(units, FUNCTIONS, A2_POLICY, reference_names(A2_POLICY))


def test_policy_keeps_allowed_parts_and_their_packages_importable():
    assert A2_POLICY.hit("course_lib") is None
    assert A2_POLICY.hit("course_lib.gradient_check") is None
    assert A2_POLICY.hit("course_lib.layers.affine") == "course_lib"
    assert A2_POLICY.hit("torch.nn") == "torch" and A2_POLICY.hit("numpy") is None
    partial = Policy({"course_lib": "x"}, ["course_lib.layers.affine"])
    assert partial.hit("course_lib.layers") is None
    assert partial.hit("course_lib.layers.conv") == "course_lib"


def test_reference_names_are_the_library_reexports_of_forbidden_modules():
    names = reference_names(A2_POLICY)
    assert {"course_lib.affine_forward", "course_lib.svm_loss", "course_lib.layers"} <= names
    assert "course_lib.rel_error" not in names and "course_lib.load_digits" not in names


def test_static_check_finds_each_way_of_reaching_the_reference():
    found = violations(
        "import course_lib\nimport course_lib.layers as L\nimport numpy as np\n"
        "from course_lib import rel_error, affine_forward as ref\n"
        "def helper(x):\n    return L.relu_forward(x)\n"
        "def relu_forward(x):\n    return helper(x)\n"
        "def affine_forward(x, w, b):\n    return ref(x, w, b)\n"
        "def affine_backward(d, c):\n    import torch\n    return d, d, d\n"
        "def softmax_loss(x, y):\n    return __import__('scipy.special'), rel_error(x, x)\n"
        "svm_loss = course_lib.svm_loss\n"
        "def relu_backward(d, c):\n    return d * np.ones(1)\n")
    assert found["affine_forward"] == ["uses course_lib.affine_forward"]
    assert found["affine_backward"] == ["imports torch"]
    assert found["relu_forward"] == ["calls helper, which uses course_lib.layers.relu_forward"]
    assert found["softmax_loss"] == ["imports scipy.special"]
    assert found["svm_loss"] == ["is course_lib.svm_loss itself"]
    assert found["relu_backward"] == []


def test_a_later_definition_replaces_a_forbidden_binding():
    found = violations("from course_lib import *\ndef affine_forward(x, w, b):\n    return x\n"
                       "def relu_forward(x):\n    return relu_backward(x, x)\n")
    assert found["affine_forward"] == []
    assert found["relu_forward"] == ["uses course_lib.relu_backward"]


def test_setup_imports_count_when_student_code_uses_them():
    found = violations("def affine_forward(x, w, b):\n    return ref(x, w, b)\n",
                       setup="from course_lib import affine_forward as ref\n")
    assert found["affine_forward"] == ["uses course_lib.affine_forward"]


def test_parent_side_work_is_linear_in_the_number_of_statements(monkeypatch):
    """A submission of many tiny statements (a stall attack on the trusted side): extraction
    copies each line once, and the static check consults each name a bounded number of times
    (counted, not timed)."""
    from autograder import forbidden
    n = 2000
    code = "".join(f"from m{i} import *\n" for i in range(n)) + "def affine_forward(x):\n" \
        + "".join(f"    a{i} = b{i}\n" for i in range(n))
    program = extract(code.encode(), "python")
    assert len(program.units) == n + 1
    assert sum(len(u["code"]) for u in program.units) <= len(code) + n
    calls = {"forbidden": 0}
    original = forbidden._Checker.forbidden

    def counted(self, dotted):
        calls["forbidden"] += 1
        return original(self, dotted)

    monkeypatch.setattr(forbidden._Checker, "forbidden", counted)
    policy = Policy({"course_lib": "reference"}, ["course_lib.gradient_check"])
    static_violations(program.units, ["affine_forward"], policy, {"course_lib.affine_forward"})
    assert calls["forbidden"] <= 4 * n
