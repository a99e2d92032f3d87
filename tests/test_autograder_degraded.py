"""The self-check on systems without Linux's sandbox features (issue 12): macOS, Windows and
hosted notebooks have no user namespaces or seccomp, Windows has no `resource`, no process
groups, no `pass_fds` and no `os.fork`. This Linux machine plays such a system through the
test hook AUTOGRADER_SIMULATE_MISSING (autograder/sandbox/system.py): the grader stops using
those features and deletes os.killpg/os.setsid/os.fork, and the child makes `import resource`
fail and deletes the same functions before it locks itself in; it then talks over its stdin
and stdout. Everything runs as real subprocesses (the CLI, or a script using the Sandbox) with
the real child; scores refer to the frozen fixture a2 suite (24 points).

What is checked: the self-check still scores good and buggy submissions correctly and its
report says which protections were active and which were not; a runaway submission is still
stopped by the time limit; `autograder grade` refuses the degraded sandbox unless the
instructor passes --allow-degraded-sandbox, marks such results, and regrades them on a full
sandbox; and a submission graded for marks cannot switch the hook on. macOS and Windows
themselves are not available here; a module-import check with their missing names deleted
stands in for them.
"""

import json
import os
import site
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fixtures.autograder.support import (  # noqa: E402
    FIXTURE_SUITES,
    FULL,
    HOSTILE,
    SOURCE_DIR,
    SUBMISSIONS,
    compose_attack,
    messages,
    scores,
    student_notebook,
    write_notebook,
)

KIT = Path(__file__).resolve().parents[1]
A2 = ["--assignment", "a2_fully_connected", "--source", str(SOURCE_DIR)]


def autograder(*args, simulate: str | None = "all", timeout: float = 300):
    env = dict(os.environ, AUTOGRADER_SUITES_PATH=str(FIXTURE_SUITES))
    env.pop("AUTOGRADER_SIMULATE_MISSING", None)
    env.pop("AUTOGRADER_ISOLATION", None)
    if simulate:
        env["AUTOGRADER_SIMULATE_MISSING"] = simulate
    if args[0] == "grade":
        args = (*args, "--no-progress")
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=timeout, cwd=KIT)


def sandbox_children() -> set[int]:
    """Simulated sandboxes' child processes (to see that none is left behind; other test runs
    on the machine start full ones)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    line = f.read()
                if b"autograder.sandbox.child" in line and b'"simulate_missing": ["' in line:
                    found.add(int(entry))
            except OSError:
                pass
    return found


def test_in_a_simulated_system_the_child_lacks_resource_fork_and_process_groups(tmp_path):
    """The hook is real on both sides: the grader process has no os.killpg/os.setsid/os.fork
    any more, and student code in the child cannot import resource nor find them. A sandbox
    for grading for marks (nbgrader, Dask and Gradescope use the same class) is refused."""
    script = tmp_path / "probe.py"
    script.write_text(
        "import json, os, sys\n"
        "from autograder.sandbox import DegradedSandboxRefused, Limits, Sandbox\n"
        "try:\n"
        "    Sandbox(assignment='a2_fully_connected')       # grading for marks\n"
        "    refused = ''\n"
        "except DegradedSandboxRefused as exc:\n"
        "    refused = str(exc)\n"
        "box = Sandbox(assignment='a2_fully_connected', limits=Limits(call_timeout=20),\n"
        "              degraded_ok=True)\n"
        "parent = [hasattr(os, n) for n in ('killpg', 'setsid', 'fork')]\n"
        "box.load([{'id': 'u', 'file': 'probe', 'line': 1, 'code': '''\n"
        "import os\n"
        "def probe():\n"
        "    try:\n"
        "        import resource\n"
        "        has_resource = True\n"
        "    except ImportError:\n"
        "        has_resource = False\n"
        "    status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
        "    return [has_resource, hasattr(os, 'fork'), hasattr(os, 'killpg'),\n"
        "            hasattr(os, 'setsid'), status['Seccomp'].strip(),\n"
        "            status['NoNewPrivs'].strip()]\n"
        "'''}])\n"
        "child = box.call('probe').value\n"
        "transport = box.process.transport\n"
        "box.close()\n"
        "print(json.dumps({'parent': parent, 'child': child, 'transport': transport,\n"
        "                  'isolation': box.isolation, 'refused': refused}))\n")
    env = dict(os.environ, AUTOGRADER_SIMULATE_MISSING="all")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=120, cwd=KIT)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)
    assert seen["parent"] == [False, False, False]
    assert seen["child"] == [False, False, False, False, "0", "0"]
    assert seen["transport"] == "stdio"
    assert "refusing to grade for marks" in seen["refused"]    # every route, not only the CLI
    assert seen["isolation"]["degraded"] is True
    assert all(str(v).startswith("not set") for v in seen["isolation"]["rlimits"].values())


def test_self_check_in_a_simulated_system_scores_and_says_what_was_not_active(tmp_path):
    before = sandbox_children()
    done = autograder("check", SUBMISSIONS / "buggy.py", *A2, "--call-timeout", "5",
                      "--json", tmp_path / "buggy.json")
    assert done.returncode == 0, done.stderr[-3000:]
    report = done.stdout
    assert "Score: 13 / 24" in report
    assert "Sandbox on this system: DEGRADED" in report
    for missing in ("not active: no namespaces: the code ran with the file access",
                    "not active: no resource limits", "not active: no process groups",
                    "not active: no seccomp filter"):
        assert missing in report, report
    assert "active:     time limits per call and per submission" in report
    assert "marks are given only by the instructor's grading" in report
    result = json.loads((tmp_path / "buggy.json").read_text())
    assert result["sandbox"]["degraded"] is True and result["run"]["purpose"] == "self-check"
    notebook = write_notebook(student_notebook("reference.py"),
                              tmp_path / "a2_fully_connected.ipynb")
    good = autograder("check", notebook, *A2, "--call-timeout", "5")
    assert good.returncode == 0 and "Score: 24 / 24" in good.stdout, good.stderr[-3000:]
    assert sandbox_children() <= before


def test_self_check_in_a_simulated_system_lends_the_reference_layers_to_a_network():
    """a3's ThreeLayerConvNet calls back to the grader's layers: requests in both directions
    over the child's stdin and stdout while the student's code runs."""
    solution = KIT / "tests" / "fixtures" / "assignments" / "a3_convolutional_nets" / \
        "solution.py"
    env = dict(os.environ, AUTOGRADER_SIMULATE_MISSING="all")
    env.pop("AUTOGRADER_SUITES_PATH", None)             # the real a3 suite
    done = subprocess.run(
        [sys.executable, "-m", "autograder", "check", str(solution), "--assignment",
         "a3_convolutional_nets", "--function", "ThreeLayerConvNet", "--function",
         "conv_forward_naive"], capture_output=True, text=True, timeout=300, cwd=KIT, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[ok  ] ThreeLayerConvNet" in done.stdout and "[ok  ] conv_forward_naive" in \
        done.stdout and "DEGRADED" in done.stdout, done.stdout


def test_self_check_in_a_simulated_system_stops_a_runaway_submission(tmp_path):
    before = sandbox_children()
    loop = tmp_path / "loop.py"
    loop.write_text(compose_attack("infinite_loop_in_function.py"))
    clock = time.monotonic()
    done = autograder("check", loop, *A2, "--call-timeout", "3", "--json", tmp_path / "r.json")
    seconds = time.monotonic() - clock
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "r.json").read_text())
    assert scores(result) == dict(FULL, svm_loss=0)
    assert "did not finish within 3 s" in messages(result, "svm_loss")
    assert result["sandbox"]["degraded"] is True
    at_import = tmp_path / "loop_at_import.py"
    at_import.write_text(compose_attack("infinite_loop_at_import.py"))
    done = autograder("check", at_import, *A2, "--call-timeout", "3")
    seconds += time.monotonic() - clock
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Score: 24 / 24" in done.stdout, done.stdout      # the loop is skipped, see fixture
    assert seconds < 120, f"the runaway submissions took {seconds:.0f} s"
    assert sandbox_children() <= before, "a runaway sandbox process was left running"


def test_grade_refuses_a_degraded_sandbox_unless_the_instructor_opts_in(tmp_path):
    out = tmp_path / "out"
    refused = autograder("grade", SUBMISSIONS / "reference.py", *A2, "--out", out)
    assert refused.returncode == 2
    assert "refusing to grade for marks" in refused.stderr
    assert "--allow-degraded-sandbox" in refused.stderr
    assert not out.exists() or not list(out.glob("*.json"))
    allowed = autograder("grade", SUBMISSIONS / "reference.py", *A2, "--out", out,
                         "--allow-degraded-sandbox")
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    result = json.loads((out / "reference.json").read_text())
    assert result["score"] == 24 and result["sandbox"]["degraded"] is True
    assert result["run"]["purpose"] == "grading"
    # Graded on the full sandbox later, a degraded result is not "up to date".
    full = autograder("grade", SUBMISSIONS / "reference.py", *A2, "--out", out, simulate=None)
    assert full.returncode == 0 and "1 graded, 0 up to date" in full.stdout, full.stdout
    assert json.loads((out / "reference.json").read_text())["sandbox"]["degraded"] is False
    # Only the protections grading relies on make it degraded: no namespaces (a container)
    # or no pass_fds alone is graded as before.
    container = autograder("grade", SUBMISSIONS / "reference.py", *A2, "--out", tmp_path / "c",
                           simulate="namespaces,pass_fds,fork")
    assert container.returncode == 0, container.stderr[-3000:]
    result = json.loads((tmp_path / "c" / "reference.json").read_text())
    assert result["score"] == 24 and result["sandbox"]["degraded"] is False


def test_a_submission_graded_for_marks_cannot_switch_on_the_simulation(tmp_path):
    """Through the real CLI, without the hook: the hostile submission sets the hook's
    variables and plants code that would hide `resource`, then makes the grader restart its
    sandbox; the restarted sandbox still has everything (see the fixture's docstring)."""
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "switch_on_simulation.py").write_text(compose_attack("switch_on_simulation.py",
                                                                 HOSTILE))
    (subs / "honest.py").write_text((SUBMISSIONS / "reference.py").read_text())
    planted = [Path(d) / f for d in {*site.getsitepackages(), *sys.path} if d
               for f in ("zz_autograder_simulate.pth", "sitecustomize.py")]
    existed = {p for p in planted if p.exists()}
    out = tmp_path / "out"
    try:
        done = autograder("grade", subs, *A2, "--out", out, "--jobs", "2", "--call-timeout", "10",
                          simulate=None)
        left = {p for p in planted if p.exists()} - existed
    finally:
        for path in {p for p in planted if p.exists()} - existed:
            path.unlink()
    assert done.returncode == 0, done.stderr[-3000:]
    assert not left, f"the submission planted files on the host: {left}"
    honest = json.loads((out / "honest.json").read_text())
    hostile = json.loads((out / "switch_on_simulation.json").read_text())
    assert honest["score"] == 24
    assert scores(hostile) == dict(FULL, relu_backward=0, svm_loss=0)
    report = messages(hostile, "svm_loss")
    assert "report: resource=yes RLIMIT_AS=" in report and "RLIMIT_AS=-1" not in report
    assert "fork=yes killpg=yes Seccomp=2 NoNewPrivs=1" in report, report
    assert hostile["run"]["restarts"] >= 1
    assert hostile["sandbox"]["degraded"] is False
    assert all(type(v) is int for v in hostile["sandbox"]["rlimits"].values())


def test_the_sandbox_modules_import_without_posix_only_names(tmp_path):
    """A stand-in for Windows (not available here): with resource, fcntl, os.killpg,
    os.setsid, os.fork, os.geteuid and the POSIX-only signals gone, the grader's modules
    import and describe a killed child, and the system probe reports the features missing."""
    code = (
        "import os, signal, sys\n"
        "for name in ('resource', 'fcntl'):\n"
        "    sys.modules[name] = None\n"
        "for name in ('killpg', 'setsid', 'fork', 'geteuid', 'getpgid', 'setpgid'):\n"
        "    if hasattr(os, name):\n"
        "        delattr(os, name)\n"
        "for name in ('SIGKILL', 'SIGXCPU', 'SIGXFSZ', 'SIGSYS'):\n"
        "    delattr(signal, name)\n"
        "import autograder.cli, autograder.notebook_check, autograder.runner\n"
        "from autograder.sandbox import describe_exit, system\n"
        "here = system.current()\n"
        "print(sorted(here.missing), here.degraded, describe_exit(-11))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=KIT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == ("['fork', 'process_groups', 'resource'] True crashed the "
                                   "sandbox process (segmentation fault)"), done.stdout


@pytest.mark.parametrize("feature", ["bogus"])
def test_the_hook_names_only_known_features(feature):
    done = autograder("check", SUBMISSIONS / "reference.py", *A2, simulate=feature)
    assert done.returncode != 0 and "AUTOGRADER_SIMULATE_MISSING must name" in done.stderr
