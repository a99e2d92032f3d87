"""Hostile submissions against the sandbox's isolation (issue 8), graded end to end.

Every batch runs the real command line (`python -m autograder grade`) or the real
`nbgrader autograde` inside a pseudo-terminal (`script`), as an instructor starts them from a
shell, and a shell then reads a line from that terminal and runs it: keys that a submission
typed into the terminal would show up there. The hostile submissions are in
tests/fixtures/autograder/submissions/hostile/ (each docstring states its expected safe
outcome); honest classmates (reference.py) are graded in the same batches and keep full marks.

- terminal: TIOCSTI into the grader's terminal, through the CLI and through nbgrader, and an
  unsandboxed control showing that this machine lets TIOCSTI through at all;
- escape: as root and as an ordinary user (an unused uid in user-namespace mode, see
  `Unprivileged`): unmounting, remounting, nested namespaces, a planted .pth, classmates'
  results, stealing a reference solution;
- secrets, IPC, /dev and session: what the sandbox lets a submission see and leave behind;
- stall: submissions that make the trusted side do unbounded work, in nbgrader autograde.

Needs `script`, `unshare` and `setpriv` (util-linux); root sets the ordinary user up (run by
an ordinary user, the module grades as that user and skips the root batch). Small limits keep
the module to about a minute and a half on an idle 2-core machine; slow.
"""

import csv
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fixtures.autograder.support import (  # noqa: E402
    FIXTURE_SUITES,
    FULL,
    FUNCTIONS,
    HOSTILE,
    SOURCE_DIR,
    SOURCE_NOTEBOOK,
    SUBMISSIONS,
    compose_attack,
    messages,
    scores,
    student_notebook,
    write_notebook,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not all(shutil.which(t) for t in ("script", "unshare", "setpriv")),
                       reason="needs script, unshare and setpriv (util-linux)"),
]

KIT = Path(__file__).resolve().parents[1]
A2 = "a2_fully_connected"
UID = 64123                    # an unused uid: the ordinary user who grades
CALL_TIMEOUT = 10              # the first call of a file-system walker takes a few seconds
HONEST = (SUBMISSIONS / "reference.py").read_text()
# What the hostile fixtures leave behind when the sandbox fails (names as in the fixtures).
ESCAPE_MARKER = "AUTOGRADER_ISOLATION_ESCAPED"
PTH = "zz_autograder_isolation_escape.pth"
HOST_MARKERS = [Path("/tmp", ESCAPE_MARKER), Path("/var/tmp", ESCAPE_MARKER), KIT / ESCAPE_MARKER,
                Path("/tmp/AUTOGRADER_ISOLATION_PTH_RAN")]
SHM_KEY = 0x41475348
POSIX_SHM = Path("/dev/shm/autograder_isolation_shm")
TYPED = 'touch "$AUTOGRADER_TIOCSTI_MARKER"'


def hostile(name: str) -> str:
    return compose_attack(name, HOSTILE)


def tiny_statements(code: str, count: int = 10_000) -> str:
    """`code` followed by `v0 = 0`, `v1 = 1`, ... (about 135 KB for 10,000)."""
    return code + "".join(f"v{i} = {i}\n" for i in range(count))


def result_of(out: Path, student: str) -> dict:
    path = out / f"{student}__{A2}.json"
    assert path.is_file(), f"no result for {student}: {sorted(p.name for p in out.iterdir())}"
    return json.loads(path.read_text())


def expected(zeros=()) -> dict:
    return {f: 0 if f in zeros else FULL[f] for f in FUNCTIONS}


def grader_env() -> dict:
    env = dict(os.environ, AUTOGRADER_SUITES_PATH=str(FIXTURE_SUITES),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("AUTOGRADER_ISOLATION", None)          # the real isolation, whatever the caller set
    return env


def grade_command(out: Path, files: list[Path], jobs: int = 2) -> list[str]:
    return [sys.executable, "-m", "autograder", "grade", "--assignment", A2,
            "--source", str(SOURCE_DIR), "--out", str(out), "--jobs", str(jobs),
            "--call-timeout", str(CALL_TIMEOUT), "--no-progress", *map(str, files)]


# ----------------------------------------------------------------------------- the terminal

def kill_tree(pid: int) -> None:
    """SIGKILL `pid` and every process below it, each by its id."""
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    todo, found = [pid], []
    while todo:
        found.append(todo.pop())
        todo += children.get(found[-1], [])
    for each in found:
        try:
            os.kill(each, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass
class TerminalRun:
    output: str            # what the terminal showed
    seconds: float         # wall time of the whole run
    exit_code: int | None  # the grader's exit status as the shell saw it (130: interrupted)
    interrupted: bool      # the shell got a SIGINT (a ^C reached the terminal)
    typed: str | None      # the line the shell read from the terminal afterwards (None: no shell)
    ran_typed: bool        # the shell ran a typed command (its marker file exists)

    def tail(self) -> str:
        return self.output[-3000:]


def in_terminal(command: str, folder: Path, env: dict, timeout: float) -> TerminalRun:
    """Run shell `command` in a new pseudo-terminal; then, as the instructor's shell would,
    read a line from that terminal (3 s) and run it. Like an interactive shell, the one
    running `command` survives a ^C (and says so); the command itself does not."""
    marker = folder / "typed-command-ran"
    script = folder / "terminal.sh"
    script.write_text(f"trap 'echo SHELL-GOT-SIGINT' INT\n{command}\n"
                      'echo "GRADER-EXIT:$?"\nread -t 3 line\necho "AFTER:$line"\neval "$line"\n')
    started = time.monotonic()
    # script's stdin stays open until the end: at its end of input, script would discard
    # what was typed into the terminal and not read yet.
    proc = subprocess.Popen(["script", "-qec", f"bash {shlex.quote(str(script))}", "/dev/null"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            env=dict(env, AUTOGRADER_TIOCSTI_MARKER=str(marker)))
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True)
    reader.start()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)
        proc.wait()
    finally:
        proc.stdin.close()
        reader.join(timeout=30)
    output = b"".join(chunks).decode(errors="replace").replace("\r", "")
    seconds = time.monotonic() - started
    if seconds >= timeout:
        pytest.fail(f"`{command[:200]}` did not finish within {timeout:g} s:\n{output[-3000:]}")
    code = re.findall(r"GRADER-EXIT:(\d+)", output)
    after = re.findall(r"^AFTER:(.*)$", output, flags=re.MULTILINE)
    return TerminalRun(output=output, seconds=seconds,
                       exit_code=int(code[-1]) if code else None,
                       interrupted="SHELL-GOT-SIGINT" in output,
                       typed=after[-1].strip() if after else None,
                       ran_typed=marker.exists())


# ----------------------------------------------------------------------------- courses

def build_course(root: Path, students: dict[str, str], template: Path = SOURCE_NOTEBOOK,
                 decoys: bool = True) -> list[Path]:
    """nbgrader's layout: submitted/<student>/a2_fully_connected/a2_fully_connected.ipynb with
    each student's code in the solution cells; with `decoys`, what an instructor keeps next to
    it (grades.csv, gradebook.db, autograded/, feedback/)."""
    notebooks = []
    for student, code in students.items():
        scratch = root / f".{student}.py"       # read by student_notebook, then gone
        scratch.parent.mkdir(parents=True, exist_ok=True)
        scratch.write_text(code)
        nb = student_notebook(scratch, template)
        scratch.unlink()
        notebooks.append(write_notebook(nb, root / "submitted" / student / A2 / f"{A2}.ipynb"))
    if not decoys:
        return notebooks
    (root / "grades.csv").write_text("student_id,score\nhonest1,24.0\n")
    (root / "gradebook.db").write_bytes(b"SQLite format 3\x00" + bytes(4080))
    for folder in ("autograded", "feedback"):
        decoy = root / folder / "someone" / A2 / f"{A2}.ipynb"
        decoy.parent.mkdir(parents=True, exist_ok=True)
        decoy.write_text("{}")
    return notebooks


def nbgrader_course(root: Path, limits: str) -> Path:
    """A course with the kit's nbgrader_config.py (plus `limits`) and the fixture source;
    returns the released notebook."""
    root.mkdir(parents=True, exist_ok=True)
    config = (KIT / "nbgrader_config.py").read_text() + "\n# The test's small limits.\n" + limits
    (root / "nbgrader_config.py").write_text(config)
    shutil.copytree(SOURCE_DIR, root / "assignments" / "source")
    done = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", A2],
                          cwd=root, env=grader_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return root / "assignments" / "release" / A2 / f"{A2}.ipynb"


def nbgrader_scores(course: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {s.student.id: s.score for s in gb.assignment_submissions(A2)}


# ----------------------------------------------------------------------------- leftovers

def shm_segments(key: int) -> list[str]:
    """Lines of /proc/sysvipc/shm for System V segments with this key (host IPC namespace)."""
    lines = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    return [line for line in lines if int(line.split()[0]) == key]


def remove_leftovers() -> None:
    """Remove what a failed run leaves on the host (markers, shared memory)."""
    import ctypes
    for marker in HOST_MARKERS:
        marker.unlink(missing_ok=True)
    POSIX_SHM.unlink(missing_ok=True)
    libc = ctypes.CDLL(None, use_errno=True)
    for line in shm_segments(SHM_KEY):
        libc.shmctl(int(line.split()[1]), 0, None)          # IPC_RMID


def leftovers() -> dict:
    return {"markers": [str(m) for m in HOST_MARKERS if m.exists()],
            "shm": shm_segments(SHM_KEY), "posix_shm": POSIX_SHM.exists()}


def site_dirs() -> list[str]:
    import site
    dirs = {*site.getsitepackages(), *(p for p in sys.path if p.endswith("site-packages"))}
    return sorted({os.path.realpath(d) for d in dirs if os.path.isdir(d)})


# ----------------------------------------------------------------------------- an ordinary user

class Unprivileged:
    """Runs commands as `uid` (no passwd entry, no groups, no capabilities) in a private mount
    namespace prepared by root: root-only directories on the way to the interpreter or the
    kit (e.g. /root, 0700, above /root/.pyenv) are covered by an empty tmpfs with just those
    trees moved back in, and every site-packages gets an overlay whose upper layer belongs to
    `uid`, so the ordinary user owns "their" venv as an instructor does, while whatever is
    written there lands in `upper_dirs` instead of the real venv."""

    def __init__(self, work: Path, uid: int):
        self.work, self.uid = work, uid
        self.home = work / "home"
        self.home.mkdir()
        os.chown(self.home, uid, uid)
        self.upper_dirs: dict[str, Path] = {}
        self._setup: list[str] | None = None

    def _blocked(self, path: str) -> str | None:
        """The highest directory above `path` that the user cannot traverse."""
        parts = Path(path).parts
        for i in range(2, len(parts)):
            ancestor = str(Path(*parts[:i]))
            st = os.stat(ancestor)
            if not st.st_mode & 0o001 and st.st_uid != self.uid:
                return ancestor
        return None

    def prepare(self) -> list[str]:
        """Shell lines (run as root in the new mount namespace) that set the user's view up."""
        if self._setup is None:
            self._setup = self._prepare()
        return self._setup

    def _prepare(self) -> list[str]:
        trees = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix,
                                               os.path.dirname(os.path.realpath(sys.executable)),
                                               KIT, *site_dirs())}
        for tree in trees:
            if (os.stat(tree).st_mode & 0o005) != 0o005:
                pytest.skip(f"{tree} is not readable by other users, so an ordinary user "
                            f"could not run the grader from it")
        covers: dict[str, list[str]] = {}
        for tree in sorted(trees):
            ancestor = self._blocked(tree)
            if ancestor and not any(tree.startswith(t + "/") for t in covers.get(ancestor, [])):
                covers.setdefault(ancestor, []).append(tree)
        lines = ["set -e"]
        for n, (ancestor, moved) in enumerate(sorted(covers.items())):
            stashes = []
            for m, tree in enumerate(moved):
                stash = self.work / f"stash-{n}-{m}"
                stash.mkdir()
                stashes.append((stash, tree))
                lines.append(f"mount --rbind {shlex.quote(tree)} {shlex.quote(str(stash))}")
            lines.append(f"mount -t tmpfs -o mode=755,size=1m tmpfs {shlex.quote(ancestor)}")
            for stash, tree in stashes:
                lines += [f"mkdir -p {shlex.quote(tree)}",
                          f"mount --move {shlex.quote(str(stash))} {shlex.quote(tree)}"]
        for n, site in enumerate(site_dirs()):
            layer = self.work / f"overlay-{n}"
            upper, scratch = layer / "upper", layer / "work"
            upper.mkdir(parents=True)
            scratch.mkdir()
            os.chown(upper, self.uid, self.uid)
            self.upper_dirs[site] = upper
            lines.append(f"mount -t overlay overlay -o lowerdir={site},upperdir={upper},"
                         f"workdir={scratch} {shlex.quote(site)}")
        return lines + ["set +e"]

    def as_user(self, command: list[str]) -> str:
        return shlex.join(["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}",
                           "--clear-groups", "--inh-caps=-all", "env", f"HOME={self.home}",
                           f"USER=u{self.uid}", *command])

    def command(self, *commands: list[str]) -> str:
        """Shell command: the commands, one after the other, as the user in the prepared
        namespace; its exit status is the first one's."""
        body = self.prepare() + [self.as_user(commands[0]), "status=$?"]
        body += [self.as_user(c) for c in commands[1:]] + ["exit $status"]
        script = self.work / f"as-user-{len(list(self.work.glob('as-user-*')))}.sh"
        script.write_text("\n".join(body) + "\n")
        return f"unshare --mount --propagation private bash {shlex.quote(str(script))}"

    def planted(self) -> dict[str, list[str]]:
        """What was written into each site-packages during the run (Python's own bytecode
        caches aside)."""
        written = {site: sorted(str(p.relative_to(upper)) for p in upper.rglob("*")
                                if p.is_file() and "__pycache__" not in p.parts)
                   for site, upper in self.upper_dirs.items()}
        return {site: files for site, files in written.items() if files}


def chown_tree(root: Path, uid: int) -> None:
    for top, dirs, files in os.walk(root):
        for name in [top, *(os.path.join(top, n) for n in dirs + files)]:
            os.chown(name, uid, uid)


# ----------------------------------------------------------------------------- batches

@dataclass
class Batch:
    run: TerminalRun
    course: Path
    out: Path
    leftovers: dict                      # on the host once the grader is done
    planted: dict                        # site-packages -> files written into it

    def result(self, student: str) -> dict:
        return result_of(self.out, student)


STUDENTS = ["honest1", "honest2", "escape", "find_secrets", "dev_and_session"]


def isolation_students() -> dict[str, str]:
    return {"honest1": HONEST, "honest2": HONEST, "escape": hostile("escape.py"),
            "find_secrets": hostile("find_secrets.py"),
            "dev_and_session": hostile("dev_and_session.py")}


def scratch_dir() -> Path:
    """A fresh directory (mode 755) outside /tmp, which the sandbox replaces by its own: a
    course under /tmp would be out of a submission's sight for the wrong reason."""
    base = "/var/tmp" if os.access("/var/tmp", os.W_OK) else None
    folder = Path(tempfile.mkdtemp(prefix="autograder-isolation-", dir=base))
    folder.chmod(0o755)
    return folder


def planted_pth() -> dict[str, list[str]]:
    return {site: [PTH] for site in site_dirs() if Path(site, PTH).exists()}


def graded_batch(work: Path, students: dict[str, str], user: "Unprivileged | None") -> Batch:
    """Grade the students' notebooks with the CLI in a terminal, as root or as `user`."""
    course = work / "course"
    notebooks = build_course(course, students)
    out = course / "autograder-results" / A2
    grade = grade_command(out, notebooks)
    after = [sys.executable, "-c", "pass"]       # the instructor's next Python (runs any .pth)
    if user is None:
        command = f"{shlex.join(grade)}; status=$?; {shlex.join(after)}; (exit $status)"
    else:
        chown_tree(course, user.uid)
        command = user.command(grade, after)
    remove_leftovers()
    run = in_terminal(f"cd {shlex.quote(str(work))} && {command}", work, grader_env(),
                      timeout=300)
    found = leftovers()
    remove_leftovers()
    batch = Batch(run, course, out, found, user.planted() if user else planted_pth())
    namespaces = batch.result("honest1")["sandbox"].get("namespaces", "")
    if namespaces.startswith("no namespaces"):
        pytest.skip(f"the sandbox has no namespaces on this machine ({namespaces}); the "
                    f"README promises no isolation then")
    return batch


@pytest.fixture(scope="module")
def root_batch():
    if os.geteuid() != 0:
        pytest.skip("the grader is not root here (the ordinary-user batch covers this machine)")
    work = scratch_dir()
    try:
        yield graded_batch(work, {**isolation_students(),
                                  "ipc_leftovers": hostile("ipc_leftovers.py")}, None)
    finally:
        for site in planted_pth():
            Path(site, PTH).unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def user_batch():
    """As an ordinary user: uid 64123 set up by root, or the caller when it is not root."""
    work = scratch_dir()
    try:
        user = None
        if os.geteuid() == 0:
            user = Unprivileged(work, UID)
            probe = subprocess.run(
                user.command([sys.executable, "-c", "import autograder.suites, course_lib, "
                              f"nbgrader; autograder.suites.load_suite('{A2}')"]),
                shell=True, capture_output=True, text=True, env=grader_env(), timeout=120)
            if probe.returncode != 0:
                pytest.skip(f"uid {UID} cannot run the grader here: {probe.stderr[-800:]}")
        yield graded_batch(work, isolation_students(), user)
    finally:
        for site in planted_pth():
            Path(site, PTH).unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(params=["root", "user"])
def batch(request) -> Batch:
    return request.getfixturevalue(f"{request.param}_batch")


# ----------------------------------------------------------------------------- 1. terminal

# Runs a fixture statement by statement, as the sandbox does, then calls its relu_forward.
CONTROL = """import ast, sys
import numpy as np
namespace = {"__name__": "control"}
for statement in ast.parse(open(sys.argv[1]).read()).body:
    try:
        exec(compile(ast.Module([statement], []), sys.argv[1], "exec"), namespace)
    except RuntimeError as exc:
        print(exc)
try:
    namespace["relu_forward"](np.zeros(3))
except RuntimeError as exc:
    print(exc)
"""


def test_control_tiocsti_reaches_the_terminal_when_not_sandboxed(tmp_path):
    """The fixture's code run directly (no sandbox), with its import-time part and then
    relu_forward: the line and the ^C do arrive, so the terminal tests below can fail."""
    command = shlex.join([sys.executable, "-c", CONTROL, str(HOSTILE / "terminal_injection.py")])
    run = in_terminal(command, tmp_path, grader_env(), timeout=60)
    if run.typed != TYPED or not run.ran_typed or not run.interrupted:
        legacy = Path("/proc/sys/dev/tty/legacy_tiocsti")
        setting = legacy.read_text().strip() if legacy.exists() else "absent"
        pytest.skip(f"TIOCSTI does not reach a terminal on this machine (legacy_tiocsti: "
                    f"{setting}); the shell read {run.typed!r}, interrupted: "
                    f"{run.interrupted}:\n{run.tail()}")


@pytest.fixture(scope="module")
def terminal_cli(tmp_path_factory):
    work = tmp_path_factory.mktemp("terminal-cli")
    folder = work / "submissions"
    folder.mkdir()
    files = [folder / "eve.py"]
    files[0].write_text(hostile("terminal_injection.py"))
    for k in (1, 2, 3):
        files.append(folder / f"honest{k}.py")
        files[-1].write_text(HONEST)
    out = work / "out"
    command = [sys.executable, "-m", "autograder", "grade", "--assignment", A2, "--source",
               str(SOURCE_DIR), "--out", str(out), "--jobs", "2", "--call-timeout", "3",
               "--no-progress", *map(str, files)]
    run = in_terminal(f"cd {shlex.quote(str(work))} && {shlex.join(command)}", work,
                      grader_env(), timeout=240)
    return run, out


def test_terminal_injection_through_the_cli_types_nothing(terminal_cli):
    run, _ = terminal_cli
    assert run.typed == "" and not run.ran_typed, run.tail()
    assert not run.interrupted, run.tail()


def test_terminal_injection_does_not_abort_the_cli_batch(terminal_cli):
    run, out = terminal_cli
    assert run.exit_code == 0, run.tail()
    names = sorted(p.stem for p in out.glob("*.json"))
    assert names == ["eve", "honest1", "honest2", "honest3"], run.tail()
    assert len((out / "gradebook.csv").read_text().splitlines()) == 5
    for name in names:
        result = json.loads((out / f"{name}.json").read_text())
        assert scores(result) == FULL, [t["message"] for t in result["tests"] if not t["passed"]]
        assert not any("TIOCSTI" in n for n in result["notes"]), result["notes"]


def test_terminal_injection_through_nbgrader_types_nothing_and_grades_everyone(tmp_path):
    course = tmp_path / "course"
    release = nbgrader_course(course, "c.GradeWithTrustedRunner.call_timeout = 3.0\n")
    build_course(course, {"eve": hostile("terminal_injection.py"), "frank": HONEST,
                          "grace": HONEST}, template=release, decoys=False)
    command = shlex.join([sys.executable, "-m", "nbgrader", "autograde", A2])
    run = in_terminal(f"cd {shlex.quote(str(course))} && {command}", tmp_path, grader_env(),
                      timeout=300)
    assert run.typed == "" and not run.ran_typed and not run.interrupted, run.tail()
    assert run.exit_code == 0, run.tail()
    assert nbgrader_scores(course) == {"eve": 24.0, "frank": 24.0, "grace": 24.0}, run.tail()


# ----------------------------------------------------------------------------- 2. escape

def test_the_ordinary_user_graded_in_user_namespace_mode(user_batch):
    assert user_batch.run.exit_code == 0, user_batch.run.tail()
    for student in STUDENTS:
        namespaces = user_batch.result(student)["sandbox"]["namespaces"]
        assert "user" in namespaces, namespaces


def test_escape_finds_no_reference_to_copy(batch):
    assert batch.run.exit_code == 0, batch.run.tail()
    escape = batch.result("escape")
    assert scores(escape) == expected({"affine_forward", "affine_backward"}), \
        messages(escape, "affine_forward")
    assert "no reference found" in messages(escape, "affine_forward")


def test_escape_leaves_classmates_results_untouched(batch):
    for student in ("honest1", "honest2"):
        result = batch.result(student)
        assert "tampered" not in result and scores(result) == FULL and result["score"] == 24
    with (batch.out / "gradebook.csv").open() as f:
        book = {row["name"]: row["score"] for row in csv.DictReader(f)}
    assert book[f"honest1__{A2}"] == book[f"honest2__{A2}"] == "24.0", book


def test_escape_changes_nothing_outside_the_sandbox(batch):
    assert batch.leftovers["markers"] == [], messages(batch.result("escape"), "affine_forward")
    assert batch.planted == {}, "written into site-packages"
    for folder in (batch.course, batch.out, batch.course / "submitted"):
        assert not (folder / ESCAPE_MARKER).exists(), folder


def test_escape_through_nbgrader_changes_nothing_and_classmates_keep_their_grades():
    """The escape submission graded by the real `nbgrader autograde` (the grader's own mode on
    this machine), in a course outside /tmp so nothing is hidden merely by the private /tmp."""
    course = Path(tempfile.mkdtemp(prefix="autograder-isolation-", dir="/var/tmp")) / "course"
    try:
        release = nbgrader_course(course, f"c.GradeWithTrustedRunner.call_timeout = "
                                          f"{CALL_TIMEOUT:.1f}\n")
        build_course(course, {"eve": hostile("escape.py"), "frank": HONEST, "grace": HONEST},
                     template=release, decoys=False)          # nbgrader keeps a real gradebook
        (course / "grades.csv").write_text("student_id,score\nfrank,24.0\n")
        before = {"grades.csv": (course / "grades.csv").read_bytes()}
        done = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", A2], cwd=course,
                              env=grader_env(), capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        attacked = FULL["affine_forward"] + FULL["affine_backward"]
        assert nbgrader_scores(course) == {"eve": 24.0 - attacked, "frank": 24.0,
                                           "grace": 24.0}
        results = course / "autograder-results" / A2
        for student in ("frank", "grace"):
            result = json.loads((results / f"{student}__{A2}.json").read_text())
            assert result["score"] == 24 and "tampered" not in result
        assert "no reference found" in messages(
            json.loads((results / f"eve__{A2}.json").read_text()), "affine_forward")
        assert before["grades.csv"] == (course / "grades.csv").read_bytes()
        assert leftovers()["markers"] == []
        assert not any(Path(d, PTH).exists() for d in site_dirs())
        assert not list(course.rglob(ESCAPE_MARKER))
    finally:
        remove_leftovers()
        shutil.rmtree(course.parent, ignore_errors=True)


# ----------------------------------------------------------------------------- 3. secrets

def test_no_secret_is_visible_in_the_sandbox(batch):
    found = messages(batch.result("find_secrets"), "svm_loss")
    assert "visible: nothing" in found, found
    assert scores(batch.result("find_secrets")) == expected({"svm_loss"})


# ----------------------------------------------------------------------------- 4. IPC

def test_shared_memory_does_not_outlive_the_sandbox(root_batch):
    assert root_batch.leftovers["shm"] == [], "System V segment left on the host"
    assert not root_batch.leftovers["posix_shm"], f"{POSIX_SHM} left on the host"
    assert scores(root_batch.result("ipc_leftovers")) == FULL


# ----------------------------------------------------------------------------- 5. /dev, session

def report(batch: Batch, function: str, tag: str) -> dict[str, str]:
    """key=value pairs of the report the dev_and_session fixture raised in `function`."""
    text = messages(batch.result("dev_and_session"), function)
    assert tag in text, text
    return dict(re.findall(r"(\w+)=(\S+)", text.split(tag, 1)[1]))


def test_student_code_has_no_capabilities_no_new_privs_and_seccomp(batch):
    status = report(batch, "softmax_loss", "STATUS")
    assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0, status
    assert status["NoNewPrivs"] == "1", status
    assert status["Seccomp"] == "2", status


def test_student_code_has_no_controlling_terminal(batch):
    status = report(batch, "softmax_loss", "STATUS")
    assert status["tty_nr"] == "0" and status["devtty"] != "opened", status


def test_dev_holds_no_terminal_fuse_or_other_device(batch):
    text = messages(batch.result("dev_and_session"), "svm_loss")
    assert "terminals=0 " in text and "fuse=0 " in text, text
    assert "other=0 " in text, text
    assert scores(batch.result("dev_and_session")) == expected({"softmax_loss", "svm_loss"})


# ----------------------------------------------------------------------------- 6. stall

STALL_LIMITS = """c.GradeWithTrustedRunner.call_timeout = 3.0
c.GradeWithTrustedRunner.submission_timeout = 30.0
c.GradeWithTrustedRunner.worker_margin = 30.0
"""
STALL_SECONDS = 40          # per stalling notebook: its 30 s budget and some margin
AUTOGRADE_SECONDS = 90      # the whole autograde of the four notebooks (about 30 s when fixed)
MAX_RSS_MB = 1500           # largest process of the autograde (nbgrader, worker, sandboxes)


@pytest.fixture(scope="module")
def stalled(tmp_path_factory):
    work = tmp_path_factory.mktemp("stall")
    course = work / "course"
    release = nbgrader_course(course, STALL_LIMITS)
    build_course(course, {"eve_events": hostile("stall_events.py"),
                          "eve_units": tiny_statements(hostile("stall_units.py")),
                          "frank": HONEST, "grace": HONEST}, template=release, decoys=False)
    timing = work / "time.txt"
    command = [sys.executable, "-m", "nbgrader", "autograde", A2]
    if Path("/usr/bin/time").exists():
        command = ["/usr/bin/time", "-v", "-o", str(timing), *command]
    run = in_terminal(f"cd {shlex.quote(str(course))} && {shlex.join(command)}", work,
                      grader_env(), timeout=AUTOGRADE_SECONDS + 60)
    rss = re.findall(r"Maximum resident set size \(kbytes\): (\d+)",
                     timing.read_text() if timing.exists() else "")
    return {"run": run, "course": course, "out": course / "autograder-results" / A2,
            "max_rss_mb": int(rss[0]) / 1024 if rss else None}


def test_stalling_notebooks_do_not_hold_up_honest_ones_in_nbgrader(stalled):
    run = stalled["run"]
    assert run.seconds < AUTOGRADE_SECONDS, f"autograde took {run.seconds:.0f} s\n{run.tail()}"
    graded = nbgrader_scores(stalled["course"])
    assert graded.get("frank") == 24.0 and graded.get("grace") == 24.0, (graded, run.tail())


def test_stalling_notebooks_are_graded_within_their_bound(stalled):
    events = result_of(stalled["out"], "eve_events")
    units = result_of(stalled["out"], "eve_units")
    for result in (events, units):
        assert result["run"]["seconds"] < STALL_SECONDS, (result["name"], result["run"])
    assert scores(events)["affine_forward"] == 0
    assert {f: s for f, s in scores(events).items() if f != "affine_forward"} == \
        {f: p for f, p in FULL.items() if f != "affine_forward"}
    assert scores(units) == FULL, [t["message"] for t in units["tests"] if not t["passed"]]


def test_stalling_notebooks_keep_the_graders_memory_small(stalled):
    if stalled["max_rss_mb"] is None:
        pytest.skip("/usr/bin/time is not installed: memory not measured")
    assert stalled["max_rss_mb"] < MAX_RSS_MB, f"{stalled['max_rss_mb']:.0f} MB"
