"""Every instructor solution file (notebooks/solutions/*.py or *.ipynb) runs without an error.

The solution files compute and check their answers (asserts), so running them tests both the
answers and that the exercises still match the library. Parametrised over the folder: a new
solution file is picked up without editing this test.
"""
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

SOLUTION_DIR = Path(__file__).resolve().parent.parent / "notebooks" / "solutions"
SOLUTIONS = sorted(p for p in SOLUTION_DIR.glob("*") if p.suffix in (".py", ".ipynb"))
TIMEOUT_SECONDS = 300


def test_every_lecture_notebook_has_a_solution_file():
    notebooks = sorted(p.stem for p in SOLUTION_DIR.parent.glob("[0-9][0-9]_*.ipynb"))
    solved = {p.stem.removesuffix("_solutions") for p in SOLUTIONS}
    missing = [name for name in notebooks if name not in solved]
    assert not missing, f"no solution file in notebooks/solutions/ for {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_solution_file_runs(path):
    env = dict(os.environ, MPLBACKEND="Agg",
               OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS", "1"))
    if path.suffix == ".py":
        done = subprocess.run([sys.executable, str(path)], cwd=SOLUTION_DIR.parent, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
        assert done.returncode == 0, f"{path.name} failed:\n{done.stdout}\n{done.stderr}"
    else:
        notebook = nbformat.read(path, as_version=4)
        NotebookClient(notebook, timeout=TIMEOUT_SECONDS, kernel_name="python3",
                       resources={"metadata": {"path": str(SOLUTION_DIR.parent)}}).execute()
