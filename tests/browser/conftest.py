"""Browser tests of the course workflow: a real JupyterLab driven by Playwright and Chromium.

One scratch course (the a2 fixture assignment plus a maths cell and a written answer) is built
with the real nbgrader CLI; one JupyterLab server is started on it as a subprocess of the
venv (127.0.0.1, a free port, a token, the venv first on PATH as `make lab` does) and stopped
at the end; Debian's Chromium (`/usr/bin/chromium`, never a downloaded browser) runs headless
with a fresh profile and every request to anything but the loopback server is refused (and
recorded), so the pages work offline or the tests fail. A failing test leaves a screenshot and
the server log in build/test-artifacts/browser/.

Without Chromium the tests are skipped with the command that installs it; .ci/run installs it.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

KIT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(KIT / "tests"))
from fixtures.autograder.support import (  # noqa: E402
    FIXTURE_SUITES,
    SOURCE_DIR,
    student_notebook,
    write_notebook,
)

CHROMIUM = Path(os.environ.get("KIT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]       # containers often have a tiny /dev/shm
ARTIFACTS = KIT / "build" / "test-artifacts" / "browser"
VENV_BIN = Path(sys.executable).parent
ASSIGNMENT = "a2_fully_connected"
COURSE_ID = "convnets-course-kit"      # nbgrader_config.py's CourseDirectory.course_id
WRITTEN_ID = "written_affine_cost"     # the written answer graded by hand
WRITTEN_POINTS = 2
MATHS = r"A layer costs $N \times D \times M$ multiply-adds: $$\sum_{i=1}^{N} x_i w_i$$"
STUDENT = "alice"                      # a collected submission (the buggy fixture)
STUDENT_NAME = ("Alice", "Liddell")
TIMESTAMP = "2026-12-01 10:15:00.000000 UTC"
SERVER_START_TIMEOUT = 90.0


def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item, so the page fixture knows a test failed."""
    if call.when == "call":
        item.browser_failed = call.excinfo is not None


@dataclass
class Course:
    """The scratch course: nbgrader's course root and the editable copy of the hidden suite."""
    root: Path
    suites: Path
    env: dict = field(default_factory=dict)

    def nbgrader(self, *args: str, timeout: float = 300) -> str:
        """The real nbgrader CLI in the course root; AssertionError with its output on failure."""
        done = subprocess.run([str(VENV_BIN / "nbgrader"), *args], cwd=self.root, env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"nbgrader {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.stdout + done.stderr

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.root / 'gradebook.db'}"


def _source_notebook() -> nbformat.NotebookNode:
    """The a2 fixture source with a maths cell and a hand-graded written answer added, and one
    test cell's grade_id with a suffix."""
    nb = nbformat.read(SOURCE_DIR / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    maths = nbformat.v4.new_markdown_cell(f"## Cost of an affine layer\n\n{MATHS}")
    written = nbformat.v4.new_markdown_cell(
        "### BEGIN SOLUTION\nOne multiply-add per input, weight and output: $N D M$.\n"
        "### END SOLUTION")
    written.metadata["nbgrader"] = {"grade": True, "solution": True, "locked": False,
                                    "grade_id": WRITTEN_ID, "points": WRITTEN_POINTS,
                                    "schema_version": 3}
    question = nbformat.v4.new_markdown_cell(
        "How many multiply-adds does `affine_forward` do for x of shape $(N, D)$ and w of "
        "shape $(D, M)$? Answer in the next cell.")
    at = next(i for i, c in enumerate(nb.cells) if c.source.startswith("## affine_backward"))
    nb.cells[at:at] = [maths, question, written]
    # A test cell named test_<function>_<anything>: feedback must still name the function.
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_svm_loss":
            cell.metadata["nbgrader"]["grade_id"] = "test_svm_loss_visible"
    return nb


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: install it with "
                    "`apt-get update && apt-get install -y chromium` (as root), or set "
                    "KIT_CHROMIUM to a Chromium binary; CI (.ci/run) installs it")
    pytest.importorskip("playwright", reason="playwright for Python is missing: "
                        "`.venv/bin/pip install -e '.[dev]'`")
    return CHROMIUM


@pytest.fixture(scope="session")
def course(tmp_path_factory, chromium) -> Course:
    """Released assignment in the course exchange, one collected submission with a name and a
    timestamp; the hidden suite is a copy the tests may edit."""
    base = tmp_path_factory.mktemp("browser")
    root, suites = base / "course", base / "suites"
    shutil.copytree(FIXTURE_SUITES, suites)
    root.mkdir()
    shutil.copy(KIT / "nbgrader_config.py", root / "nbgrader_config.py")
    write_notebook(_source_notebook(),
                   root / "assignments" / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    home = base / "home"
    home.mkdir()
    env = dict(os.environ, AUTOGRADER_SUITES_PATH=str(suites),
               PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
               JUPYTER_CONFIG_DIR=str(base / "jupyter-config"),
               JUPYTER_RUNTIME_DIR=str(base / "jupyter-runtime"),
               # nbgrader's submission cache (the Assignment List's history) lives here.
               JUPYTER_DATA_DIR=str(base / "jupyter-data"),
               IPYTHONDIR=str(base / "ipython"), MPLBACKEND="Agg")
    course = Course(root=root, suites=suites, env=env)
    course.nbgrader("generate_assignment", ASSIGNMENT)
    course.nbgrader("release_assignment", ASSIGNMENT)

    release = root / "assignments" / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    submission = student_notebook("buggy.py", release)
    for cell in submission.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == WRITTEN_ID:
            cell.source = r"It does $N \cdot D \cdot M$ multiply-adds."
    folder = root / "submitted" / STUDENT / ASSIGNMENT
    write_notebook(submission, folder / f"{ASSIGNMENT}.ipynb")
    (folder / "timestamp.txt").write_text(TIMESTAMP)
    from nbgrader.api import Gradebook
    with Gradebook(course.db_url, COURSE_ID) as gradebook:
        gradebook.update_or_create_student(STUDENT, first_name=STUDENT_NAME[0],
                                           last_name=STUDENT_NAME[1])
    return course


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    url: str          # http://127.0.0.1:PORT/
    token: str
    root: Path
    log: Path

    def page_url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.url}{path}{sep}token={self.token}"


@pytest.fixture(scope="session")
def lab(course, tmp_path_factory) -> Lab:
    """JupyterLab on the course, started by `make lab`'s own command line."""
    token = os.urandom(16).hex()
    port = _free_port()
    settings = tmp_path_factory.mktemp("lab-settings")
    # No "receive Jupyter news?" toast over the page (it would also fetch from the network).
    notification = settings / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}')
    shutil.rmtree(ARTIFACTS, ignore_errors=True)      # only this run's failures are kept
    ARTIFACTS.mkdir(parents=True)
    log = ARTIFACTS / "jupyterlab-server.log"
    options = [f"--ServerApp.root_dir={course.root}", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={token}", f"--LabApp.user_settings_dir={settings}",
               f"--LabApp.workspaces_dir={tmp_path_factory.mktemp('lab-workspaces')}",
               "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None"]
    if os.geteuid() == 0:           # CI and containers run as root
        options.append("--allow-root")
    # Exactly what `make lab` runs (printed by make -n, the install step taken as done), from
    # the course folder (nbgrader reads nbgrader_config.py there) and without the venv on
    # PATH: the command itself must put it there, for the server and for its terminals.
    printed = subprocess.run(
        ["make", "-s", "--no-print-directory", "-n", "-o", ".venv/.installed", "lab",
         "LAB_ARGS=" + " ".join(shlex.quote(o) for o in options)],
        cwd=KIT, capture_output=True, text=True, check=True).stdout
    assert "jupyter lab" in printed, printed
    env = dict(course.env, PATH=os.pathsep.join(
        p for p in course.env["PATH"].split(os.pathsep) if Path(p) != VENV_BIN))
    with log.open("w") as out:
        server = subprocess.Popen(["bash", "-c", printed], cwd=course.root, env=env,
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while True:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}api/status?token={token}", timeout=5):
                break
        except OSError:
            if time.monotonic() > deadline:
                os.killpg(server.pid, signal.SIGKILL)
                pytest.fail(f"JupyterLab did not answer in {SERVER_START_TIMEOUT:.0f} s:\n"
                            f"{log.read_text()[-3000:]}")
            time.sleep(0.5)
    yield Lab(url=url, token=token, root=course.root, log=log)
    os.killpg(server.pid, signal.SIGTERM)     # bash and the server it started
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


@dataclass
class Network:
    """Requests the browser tried to send anywhere but the loopback server (all refused)."""
    refused: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def network() -> Network:
    return Network()


@pytest.fixture(scope="session")
def browser_context(chromium, tmp_path_factory, network):
    """Headless Chromium with a fresh profile; the network beyond 127.0.0.1 is closed."""
    from playwright.sync_api import expect, sync_playwright

    def only_loopback(route):
        url = urlparse(route.request.url)
        if url.scheme in ("data", "blob") or url.hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            network.refused.append(route.request.url)
            route.abort("internetdisconnected")

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(chromium),
            headless=True, args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})
        for blank in context.pages:       # the empty first tab of a persistent profile
            blank.close()
        context.set_default_timeout(60_000)
        expect.set_options(timeout=30_000)       # a shared, busy CPU: pages may be slow
        context.route("**/*", only_loopback)
        yield context
        context.close()


@pytest.fixture
def page(browser_context, request, lab):
    """A fresh tab; on failure the screenshots of the open tabs and the browser console go to
    build/test-artifacts/browser/<test>-N.png and <test>-console.log."""
    tab = browser_context.new_page()
    messages: list[str] = []
    tab.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    yield tab
    if getattr(request.node, "browser_failed", False):
        name = re.sub(r"[^\w.-]", "_", request.node.name)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for number, open_page in enumerate(browser_context.pages):
            try:
                open_page.screenshot(path=str(ARTIFACTS / f"{name}-{number}.png"),
                                     full_page=True)
            except Exception as error:  # noqa: BLE001 - a screenshot must not hide the failure
                messages.append(f"screenshot failed: {error}")
        (ARTIFACTS / f"{name}-console.log").write_text("\n".join(messages))
    tab.close()
