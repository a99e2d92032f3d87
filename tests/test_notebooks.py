"""Every lecture notebook runs top to bottom in a real Jupyter kernel without an error."""
import hashlib
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
# Executed copies go here, stamped with their source's SHA-256: book/build.py (and so
# tests/test_book.py) reuses them instead of executing every notebook a second time.
EXECUTED_DIR = NOTEBOOK_DIR.parent / "build" / "executed_notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
# The design allows two minutes per notebook; a cell taking longer than this is a hang.
CELL_TIMEOUT_SECONDS = 300


def test_the_course_has_ten_lecture_notebooks_in_order():
    numbers = [int(path.name[:2]) for path in NOTEBOOKS]
    assert numbers == list(range(1, 11)), [path.name for path in NOTEBOOKS]


def test_lecture_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        with_outputs = [i for i, cell in enumerate(notebook.cells)
                        if cell.cell_type == "code" and (cell.outputs or cell.execution_count)]
        assert not with_outputs, f"{path.name}: clear the outputs of cells {with_outputs}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # Threaded BLAS on small matrices is slower on 2 shared cores; the Makefile sets this too.
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", os.environ.get("OPENBLAS_NUM_THREADS", "1"))
    source = path.read_bytes()
    notebook = nbformat.reads(source.decode("utf-8"), as_version=4)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_SECONDS, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError with the cell and traceback on any error
    elapsed = time.perf_counter() - start
    notebook.metadata["course_kit_source_sha256"] = hashlib.sha256(source).hexdigest()
    EXECUTED_DIR.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, EXECUTED_DIR / path.name)
    # Reported, not asserted: timing belongs to benchmarks, the budget to the notebook's author.
    print(f"{path.name}: {elapsed:.1f} s (pid {os.getpid()})")
