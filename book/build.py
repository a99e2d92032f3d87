"""Build the course book: executed lecture notebooks + assignment release versions -> static HTML.

    python book/build.py [--out build/book] [--executed-dir build/executed_notebooks]

Steps:
1. every lecture notebook is executed once in a real Jupyter kernel, or reused from
   --executed-dir when a copy there was executed from the same source (its metadata holds the
   source's SHA-256; tests/test_notebooks.py leaves such copies, so `make test` executes each
   notebook once for both tests);
2. `nbgrader generate_assignment` makes the release version of each assignment (no solutions,
   no hidden tests) in a scratch course, as `make demo` does;
3. book/_config.yml, _toc.yml, intro.md, the notebooks and the releases are copied into
   OUT/src with MathJax 2.7 from jupyter-server-mathjax in _static/mathjax (maths renders
   offline), and `jupyter-book build` writes OUT/src/_build/html.
Prints the build time and the number of pages; the HTML's index is OUT/src/_build/html/index.html.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

KIT = Path(__file__).resolve().parent.parent
BOOK = KIT / "book"
NOTEBOOKS = sorted((KIT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ASSIGNMENTS = sorted(p.name for p in (KIT / "assignments" / "source").iterdir() if p.is_dir())
DEFAULT_EXECUTED_DIR = KIT / "build" / "executed_notebooks"
DIGEST_KEY = "course_kit_source_sha256"  # in an executed copy's metadata
CELL_TIMEOUT_SECONDS = 300
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"


def source_digest(path: Path) -> str:
    """SHA-256 of a notebook file's bytes: an executed copy is reused only for the same source."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def execute_notebook(path: Path) -> nbformat.NotebookNode:
    """Run `path` top to bottom in a python3 kernel started in its folder; raise on any error."""
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    os.environ.setdefault("MPLBACKEND", "Agg")
    NotebookClient(notebook, timeout=CELL_TIMEOUT_SECONDS, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    notebook.metadata[DIGEST_KEY] = source_digest(path)
    return notebook


def executed_copy(path: Path, executed_dir: Path) -> tuple[Path, bool]:
    """The executed version of `path` in executed_dir, executing it only when no copy with the
    same source digest is there. Returns (copy, reused)."""
    target = executed_dir / path.name
    if target.exists():
        cached = nbformat.read(target, as_version=4)
        if cached.metadata.get(DIGEST_KEY) == source_digest(path):
            return target, True
    executed_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(execute_notebook(path), target)
    return target, False


def release_assignments(course: Path) -> dict[str, Path]:
    """nbgrader generate_assignment for every assignment in a scratch course at `course`."""
    if course.exists():
        shutil.rmtree(course)
    (course / "assignments" / "source").mkdir(parents=True)
    shutil.copy(KIT / "nbgrader_config.py", course / "nbgrader_config.py")
    env = dict(os.environ)
    # nbgrader runs alembic (its gradebook migrations) as a command: it must be on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    releases = {}
    for assignment in ASSIGNMENTS:
        shutil.copytree(KIT / "assignments" / "source" / assignment,
                        course / "assignments" / "source" / assignment)
        done = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment",
                               assignment], cwd=course, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n"
                               f"{done.stdout}\n{done.stderr}")
        releases[assignment] = (course / "assignments" / "release" / assignment
                                / f"{assignment}.ipynb")
    return releases


def without_widget_state(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop saved ipywidgets state and widget outputs: rendering them would load the widget
    manager from a CDN, a static page cannot run a widget anyway, and the text fallback
    ("VBox(children=...)") means nothing to a reader. The notebooks draw a static figure first."""
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        if "outputs" in cell:
            cell.outputs = [o for o in cell.outputs if WIDGET_VIEW_MIME not in o.get("data", {})]
    return notebook


def mathjax_dir() -> Path:
    """MathJax 2.7 as shipped by the pinned jupyter-server-mathjax package."""
    import jupyter_server_mathjax

    return Path(jupyter_server_mathjax.__file__).parent / "static"


def build_book(out: Path, executed_dir: Path = DEFAULT_EXECUTED_DIR) -> Path:
    """Steps 1-3 of the module docstring; returns the HTML folder."""
    start = time.perf_counter()
    src = out / "src"
    if src.exists():
        shutil.rmtree(src)
    (src / "notebooks").mkdir(parents=True)
    (src / "assignments").mkdir()
    for name in ("_config.yml", "_toc.yml", "intro.md"):
        shutil.copy(BOOK / name, src / name)
    for path in NOTEBOOKS:
        copy, reused = executed_copy(path, executed_dir)
        print(f"{path.name}: {'reused' if reused else 'executed'}", flush=True)
        nbformat.write(without_widget_state(nbformat.read(copy, as_version=4)),
                       src / "notebooks" / path.name)
    for assignment, release in release_assignments(out / "course").items():
        shutil.copy(release, src / "assignments" / f"{assignment}.ipynb")
    # Not under src/_static: jupyter-book adds every .js file there to every page. Sphinx copies
    # the contents of each html_static_path folder into _static, so this lands in _static/mathjax.
    shutil.copytree(mathjax_dir(), src / "_mathjax" / "mathjax")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    done = subprocess.run([str(jupyter_book), "build", str(src), "--builder", "html",
                           "--keep-going"], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed:\n{done.stdout}\n{done.stderr}")
    html = src / "_build" / "html"
    pages = sorted(html.glob("**/*.html"))
    print(f"book: {len(pages)} HTML files in {time.perf_counter() - start:.0f} s; "
          f"open {html / 'index.html'}")
    return html


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=KIT / "build" / "book",
                        help="build folder (default build/book)")
    parser.add_argument("--executed-dir", type=Path, default=DEFAULT_EXECUTED_DIR,
                        help="where executed notebooks are kept and reused "
                             "(default build/executed_notebooks)")
    args = parser.parse_args(argv)
    build_book(args.out.resolve(), args.executed_dir.resolve())


if __name__ == "__main__":
    main()
