"""`make book` builds the course book: every page of the table of contents exists, no notebook
has an execution error, the assignments appear as released (no solutions), and maths renders
offline (MathJax from the build itself, no script from the network).

The build reuses the notebooks tests/test_notebooks.py executed in the same run (conftest.py runs
this file last); alone, it executes them itself (about five minutes).
"""
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
import yaml

KIT = Path(__file__).resolve().parent.parent
BUILD_TIMEOUT_SECONDS = 1800


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    done = subprocess.run([sys.executable, str(KIT / "book" / "build.py"), "--out", str(out)],
                          capture_output=True, text=True, timeout=BUILD_TIMEOUT_SECONDS)
    assert done.returncode == 0, f"book build failed:\n{done.stdout[-5000:]}\n{done.stderr[-5000:]}"
    print(done.stdout.splitlines()[-1])  # "book: N HTML files in T s; open ..."
    return out / "src"


def toc_files() -> list[str]:
    toc = yaml.safe_load((KIT / "book" / "_toc.yml").read_text())
    return [toc["root"]] + [chapter["file"] for part in toc["parts"]
                            for chapter in part["chapters"]]


def test_toc_lists_every_lecture_notebook_and_assignment_in_course_order():
    files = toc_files()
    notebooks = [f"notebooks/{p.stem}"
                 for p in sorted((KIT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
    assignments = [f"assignments/{p.name}"
                   for p in sorted((KIT / "assignments" / "source").iterdir()) if p.is_dir()]
    assert [f for f in files if f.startswith("notebooks/")] == notebooks
    assert [f for f in files if f.startswith("assignments/")] == assignments
    # Each assignment comes after the notebooks of its weeks: a1 after 02, a2 after 09, a3 after 10.
    position = {name: i for i, name in enumerate(files)}
    assert position["assignments/a1_linear_classifiers"] > position[
        "notebooks/02_losses_optimisation"]
    assert position["assignments/a2_fully_connected"] > position[
        "notebooks/09_babysitting_hyperparameters"]
    assert position["assignments/a3_convolutional_nets"] > position[
        "notebooks/10_architectures_transfer"]


@pytest.mark.slow
def test_every_page_of_the_table_of_contents_is_built(book):
    html = book / "_build" / "html"
    missing = [f for f in toc_files() if not (html / f"{f}.html").is_file()]
    assert not missing, f"pages missing from the built book: {missing}"
    assert (html / "index.html").is_file()


@pytest.mark.slow
def test_no_notebook_in_the_book_has_an_execution_error(book):
    for path in sorted((book / "notebooks").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        code_cells = [c for c in notebook.cells if c.cell_type == "code"]
        assert all(c.execution_count for c in code_cells), f"{path.name}: not fully executed"
        errors = [o for c in code_cells for o in c.outputs if o.output_type == "error"]
        assert not errors, f"{path.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
        page = (book / "_build" / "html" / "notebooks" / f"{path.stem}.html").read_text()
        assert "Traceback (most recent call last)" not in page, path.stem
        assert "<img" in page, f"{path.stem}: no figure on the page"
        assert "VBox(children=" not in page, f"{path.stem}: a widget's text stands in the page"


@pytest.mark.slow
def test_assignments_appear_as_released_without_solutions(book):
    for path in sorted((book / "assignments").glob("*.ipynb")):
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, path.name
        assert "YOUR CODE HERE" in text, path.name
        page = (book / "_build" / "html" / "assignments" / f"{path.stem}.html").read_text()
        assert "YOUR CODE HERE" in page, path.stem


@pytest.mark.slow
def test_maths_renders_offline_with_the_bundled_mathjax(book):
    html = book / "_build" / "html"
    assert (html / "_static" / "mathjax" / "MathJax.js").is_file()
    assert (html / "_static" / "mathjax" / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()
    for page in sorted(html.glob("notebooks/*.html")):
        text = page.read_text()
        remote = re.findall(r'<script[^>]*\ssrc="(https?://[^"]+)"', text)
        assert not remote, f"{page.name} loads scripts from the network: {remote}"
        assert 'src="../_static/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"' in text, \
            page.name
        assert r"\(" in text or r"\[" in text, f"{page.name}: no maths for MathJax to render"


CHROMIUM = Path(os.environ.get("KIT_CHROMIUM", "/usr/bin/chromium"))


@pytest.mark.slow
def _typeset_count(sync_api, page_file, source_spans: int) -> tuple[list[str], int]:
    """(every URL the page requested, the number of typeset formulas) in Chromium."""
    requests: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                             args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_file.as_uri())
            # Typeset formulas become .MathJax (HTML-CSS) or .MathJax_CHTML elements.
            rendered = ("document.querySelectorAll('.MathJax, .MathJax_CHTML, .MathJax_SVG')"
                        ".length")
            page.wait_for_function(f"{rendered} >= {source_spans}", timeout=90_000)
            return requests, page.evaluate(rendered)
        finally:
            browser.close()


def test_maths_is_typeset_in_a_browser_without_network(book):
    """Debian's Chromium opens a page from disk; MathJax typesets its maths; no request leaves
    the file system (the same Chromium and skip rule as tests/browser/)."""
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: `apt-get install -y chromium`, or set "
                    "KIT_CHROMIUM; CI (.ci/run) installs it")
    sync_api = pytest.importorskip("playwright.sync_api")
    page_file = book / "_build" / "html" / "notebooks" / "02_losses_optimisation.html"
    source_spans = page_file.read_text().count('class="math notranslate nohighlight"')
    # In a thread of its own: the browser tests' session-wide Playwright (tests/browser) may
    # still hold this thread's event loop, and the sync API refuses to run inside one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        requests, typeset = pool.submit(_typeset_count, sync_api, page_file,
                                        source_spans).result()
    outside = [url for url in requests if not url.startswith(("file://", "data:"))]
    assert not outside, f"the page requested {outside}"
    assert source_spans > 50 and typeset >= source_spans, (typeset, source_spans)
