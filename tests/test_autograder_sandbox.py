"""The sandbox on its own: a real child process per test, driven through `Sandbox`.

Checks the isolation it reports (network, file system, user, limits), timeouts and crashes
(with restart and replay of the loaded code), caches kept in the child, capped output, the
forbidden-import guard, and that no process outlives the sandbox or a dead grader.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from autograder.forbidden import Policy
from autograder.protocol import Handle, Rejected
from autograder.sandbox import Limits, Sandbox, SandboxFailure, isolation_mode

LIMITS = Limits(call_timeout=2, load_timeout=5, submission_timeout=60)
POLICY = Policy({"course_lib": "it is the reference", "torch": "no frameworks"},
                ["course_lib.gradient_check"])
NAMESPACES = isolation_mode()[0] != "none"


def unit(code: str, name: str = "u") -> dict:
    return {"id": name, "file": "module", "code": textwrap.dedent(code)}


@pytest.fixture
def sandbox():
    box = Sandbox(assignment="a2_fully_connected", policy=POLICY.as_config(), limits=LIMITS)
    yield box
    box.close()


def processes_of(marker: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if b"autograder.sandbox.child" in cmdline and marker.encode() in cmdline:
            pids.append(int(entry))
    return pids


def test_functions_are_called_and_caches_stay_in_the_child(sandbox, rng):
    sandbox.load([unit("""
        import numpy as np
        def forward(x):
            return 2 * x, {"secret": x, "obj": object()}
        def backward(dout, cache):
            return dout * cache["secret"]
    """)])
    x = rng.standard_normal((3, 2))
    outcome = sandbox.call("forward", (x,), opaque=[1], echo=[0])
    out, cache = outcome.value
    assert type(out) is np.ndarray and np.array_equal(out, 2 * x)
    assert isinstance(cache, Handle)
    np.testing.assert_array_equal(outcome.args_after[0], x)
    dx = sandbox.call("backward", (np.ones_like(x), cache)).value
    np.testing.assert_array_equal(dx, x)


def test_a_raising_unit_is_reported_and_loading_goes_on(sandbox):
    results = sandbox.load([unit("def f():\n    return 1\n", "a"),
                            unit("raise ValueError('nope')\n", "b"),
                            unit("def g():\n    return 2\n", "c")])
    assert results["a"]["ok"] and results["c"]["ok"]
    assert results["b"]["error"]["type"] == "ValueError"
    assert results["b"]["error"]["where"]["line"] == 1
    assert sandbox.inspect(["f", "g", "h"]) == {"f": "function", "g": "function", "h": "missing"}


def test_a_hanging_call_times_out_and_the_sandbox_restarts_with_the_code_loaded(sandbox):
    sandbox.load([unit("def spin():\n    while True:\n        pass\n"),
                  unit("def one():\n    return 1\n", "v")])
    start = time.monotonic()
    with pytest.raises(SandboxFailure) as failure:
        sandbox.call("spin")
    assert failure.value.kind == "timeout" and time.monotonic() - start < 10
    assert sandbox.call("one").value == 1
    assert sandbox.restarts == 1


def test_a_call_given_more_time_than_the_default_finishes_and_is_still_bounded(sandbox):
    sandbox.load([unit("import time\ndef train(seconds):\n    time.sleep(seconds)\n"
                       "    return seconds\n")])
    assert sandbox.call("train", (3.0,), timeout=6).value == 3.0     # default limit: 2 s
    start = time.monotonic()
    with pytest.raises(SandboxFailure) as failure:
        sandbox.call("train", (30.0,), timeout=4)
    assert failure.value.kind == "timeout" and "4 s" in failure.value.message
    assert 4 <= time.monotonic() - start < 10


def test_a_suite_gives_a_function_more_time_but_never_less_than_the_instructor(sandbox):
    from autograder.grading import Verdicts
    from autograder.plugin import Student
    functions = {"train": {"call_timeout": 30}, "quick": {"call_timeout": 0.5}, "other": {}}
    student = Student(sandbox, functions, Verdicts())
    assert student._call_timeout("train") == 30
    assert student._call_timeout("quick") == LIMITS.call_timeout
    assert student._call_timeout("other") is None          # the sandbox's default


def test_exit_and_os_exit_in_a_call_are_reported(sandbox):
    sandbox.load([unit("import os, sys\ndef leave():\n    sys.exit(3)\n"
                       "def vanish():\n    os._exit(5)\n")])
    outcome = sandbox.call("leave")
    assert not outcome.ok and outcome.error["type"] == "SystemExit"
    with pytest.raises(SandboxFailure) as failure:
        sandbox.call("vanish")
    assert failure.value.kind == "crashed" and "code 5" in failure.value.message


def test_a_unit_that_kills_or_hangs_the_child_is_skipped_and_the_rest_loads(sandbox):
    results = sandbox.load([unit("def f():\n    return 1\n", "a"),
                            unit("import os\nos._exit(1)\n", "b"),
                            unit("while True:\n    pass\n", "c"),
                            unit("def g():\n    return 2\n", "d")])
    assert results["b"]["failure"] == "crashed" and results["c"]["failure"] == "timeout"
    assert sandbox.call("f").value == 1 and sandbox.call("g").value == 2


def test_values_that_cannot_cross_are_rejected_by_type(sandbox):
    sandbox.load([unit("""
        import os
        import numpy as np
        class Liar(np.ndarray):
            def __eq__(self, other):
                return True
        class Payload:
            def __reduce__(self):
                return (os.system, ("touch /tmp/AUTOGRADER_SANDBOX_UNPICKLED",))
        def liar():
            return np.zeros(3).view(Liar)
        def payload():
            return Payload()
    """)])
    assert isinstance(sandbox.call("liar").value, Rejected)
    assert isinstance(sandbox.call("payload").value, Rejected)
    assert not os.path.exists("/tmp/AUTOGRADER_SANDBOX_UNPICKLED")


def test_memory_limit_turns_a_bomb_into_memory_error(sandbox):
    sandbox.load([unit("def bomb():\n    return bytearray(64 * 1024 ** 3)\n")])
    outcome = sandbox.call("bomb")
    assert not outcome.ok and outcome.error["type"] == "MemoryError"


def test_output_is_drained_and_capped(sandbox):
    sandbox.load([unit("print('x' * (30 * 1024 * 1024))\n")])
    sandbox.close()
    assert sandbox.stdout_bytes >= 30 * 1024 * 1024
    assert len(sandbox.stdout_head) == LIMITS.output_kb * 1024


def test_forbidden_imports_are_refused_and_recorded(sandbox):
    sandbox.load([unit("""
        import importlib, sys
        def framework():
            import torch
        def reference():
            import course_lib
            return sys.modules["course_lib"].affine_forward(1, 2, 3)
        def allowed():
            from course_lib.gradient_check import rel_error
            return float(rel_error(1.0, 1.0))
    """)])
    outcome = sandbox.call("framework", function="framework")
    assert outcome.error["type"] in ("ImportError", "ModuleNotFoundError")
    assert "no frameworks" in outcome.error["message"]
    outcome = sandbox.call("reference", function="reference")
    assert not outcome.ok and "not allowed here" in outcome.error["message"]
    assert sandbox.call("allowed").value == 0.0
    seen = {(e["context"], e["what"]) for e in sandbox.events}
    assert ("call:framework", "torch") in seen
    assert ("call:reference", "course_lib.layers.affine.affine_forward") in seen


@pytest.mark.skipif(not NAMESPACES, reason="no namespaces: " + isolation_mode()[2])
def test_no_network_and_a_read_only_file_system_outside_the_workdir(sandbox, tmp_path):
    target = Path(__file__).resolve().parent / "AUTOGRADER_SANDBOX_WRITTEN"
    sandbox.load([unit(f"""
        import os, socket
        def probe():
            s = socket.socket()
            s.settimeout(1)
            network = s.connect_ex(("1.1.1.1", 53))
            try:
                open({str(target)!r}, "w").write("x")
                outside = "written"
            except OSError as exc:
                outside = exc.strerror
            open("inside.txt", "w").write("fine")
            return network, outside, os.getcwd(), len(os.listdir("/proc")) < 80
    """)])
    network, outside, cwd, few_processes = sandbox.call("probe").value
    # The kit's tests/ folder is not in the allow-list: it does not exist in there.
    assert network != 0 and outside == "No such file or directory" and not target.exists()
    assert few_processes            # its own PID namespace: no other process is visible
    assert sandbox.isolation["filesystem"].startswith("allow-list root, read-only")
    assert sandbox.isolation["network"].startswith("none")


@pytest.mark.skipif(os.geteuid() != 0 or isolation_mode()[0] != "root",
                    reason="only root can drop to a user id of its own")
def test_root_drops_to_an_unprivileged_user_with_a_real_process_limit(sandbox):
    sandbox.load([unit("""
        import os, time
        def fork_fifty():
            started = 0
            for _ in range(50):
                try:
                    pid = os.fork()
                except OSError:
                    break
                if pid == 0:
                    time.sleep(60)
                    os._exit(0)
                started += 1
            return os.getuid(), started
    """)])
    uid, started = sandbox.call("fork_fifty").value
    assert uid != 0 and started < LIMITS.nproc
    assert "uid of its own" in sandbox.isolation["user"]
    sandbox.close()

    def alive() -> list[str]:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.stat(f"/proc/{pid}").st_uid == uid:
                    found.append(Path(f"/proc/{pid}/stat").read_text().split()[2])
            except OSError:
                pass
        return found

    deadline = time.monotonic() + 5          # the kernel tears the namespace down
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive() == []


DEAD_GRADER = """
import sys, time
from autograder.sandbox import Sandbox, Limits
box = Sandbox(assignment=sys.argv[1], limits=Limits(call_timeout=600, load_timeout=600))
box.load([{"id": "u", "file": "module", "code": "def spin():\\n    while True:\\n        pass\\n"}])
print(box.process.proc.pid, flush=True)
box.call("spin")
"""


def test_sandbox_dies_with_its_grader(tmp_path):
    marker = str(tmp_path / "dead-grader-marker")
    grader = subprocess.Popen([sys.executable, "-c", DEAD_GRADER, marker],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        int(grader.stdout.readline())
        time.sleep(0.5)
        assert processes_of(marker), "the sandbox did not start"
        os.kill(grader.pid, signal.SIGKILL)       # the grader dies mid-call
        grader.wait(timeout=10)
        deadline = time.monotonic() + 10
        while processes_of(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert processes_of(marker) == []
    finally:
        if grader.poll() is None:
            grader.kill()


# ----------------------------------------------------------------------------- the trust boundary
# Hostile code run directly in the sandbox, in both modes a grader runs in: as root, and in a
# user namespace (what an ordinary user gets; forced here with AUTOGRADER_ISOLATION=userns).

MODES = ["root", "userns"] if os.geteuid() == 0 else ["userns"]
KIT = Path(__file__).resolve().parents[1]

ESCAPE = """
import ctypes, errno, fcntl, os, termios
libc = ctypes.CDLL(None, use_errno=True)

def attempt(call, *args):
    if call(*args) == 0:
        return "SUCCEEDED"
    return errno.errorcode.get(ctypes.get_errno(), "?")

def escape():
    points = [line.split()[4] for line in open("/proc/self/mountinfo")]
    tried = {}
    tried["umount"] = sorted({attempt(libc.umount2, p.encode(), 2) for p in points})
    tried["remount rw"] = sorted({attempt(libc.mount, b"none", p.encode(), None,
                                          ctypes.c_ulong(32 | 4096), None) for p in points})
    tried["mount tmpfs"] = attempt(libc.mount, b"tmpfs", b"/tmp", b"tmpfs", ctypes.c_ulong(0),
                                   None)
    tried["unshare"] = attempt(libc.unshare, 0x10000000 | 0x00020000)
    tried["chroot"] = attempt(libc.chroot, b"/tmp")
    injected = []
    for fd in range(3):
        try:
            fcntl.ioctl(fd, termios.TIOCSTI, b"x")
            injected.append(fd)
        except OSError as exc:
            injected.append(errno.errorcode.get(exc.errno))
    tried["TIOCSTI"] = sorted(set(map(str, injected)))
    try:
        os.open("/dev/tty", os.O_RDWR)
        tried["/dev/tty"] = "SUCCEEDED"
    except OSError as exc:
        tried["/dev/tty"] = errno.errorcode.get(exc.errno)
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    tried["caps"] = sorted({status[k].strip() for k in ("CapEff", "CapPrm", "CapBnd")})
    tried["nnp"] = status["NoNewPrivs"].strip()
    tried["seccomp"] = status["Seccomp"].strip()
    tried["dev"] = sorted(os.listdir("/dev"))
    tried["uid"] = os.getuid()
    return tried
"""


@pytest.fixture(params=MODES)
def mode_sandbox(request, monkeypatch):
    from autograder.sandbox import process
    monkeypatch.setenv("AUTOGRADER_ISOLATION", request.param)
    process.isolation_mode.cache_clear()
    if isolation_mode()[0] != request.param:
        pytest.fail(f"{request.param} mode is not available here: {isolation_mode()[2]}")
    box = Sandbox(assignment="a2_fully_connected", policy=POLICY.as_config(), limits=LIMITS)
    yield box
    box.close()
    monkeypatch.delenv("AUTOGRADER_ISOLATION")
    process.isolation_mode.cache_clear()


def test_student_code_cannot_unmount_remount_unshare_or_inject_keystrokes(mode_sandbox):
    mode_sandbox.load([unit(ESCAPE)])
    tried = mode_sandbox.call("escape").value
    assert "SUCCEEDED" not in tried["umount"] and "SUCCEEDED" not in tried["remount rw"]
    assert tried["mount tmpfs"] == "EPERM" and tried["unshare"] == "EPERM"
    assert tried["chroot"] == "EPERM"
    assert tried["TIOCSTI"] == ["EPERM"]          # the seccomp filter, on every descriptor
    assert tried["/dev/tty"] == "ENOENT"          # no such device in its /dev
    assert tried["caps"] == ["0000000000000000"] and tried["nnp"] == "1"
    assert tried["seccomp"] == "2"
    assert tried["dev"] == ["fd", "full", "null", "random", "shm", "stderr", "stdin", "stdout",
                            "urandom", "zero"]
    assert tried["uid"] != 0
    report = mode_sandbox.isolation
    assert report["capabilities"] == "none" and report["no_new_privs"] is True
    assert report["terminal"] == "no controlling terminal"
    assert report["seccomp"].startswith("filter")


def test_the_root_shows_only_the_allow_list(mode_sandbox):
    mode_sandbox.load([unit(f"""
        import os
        def look():
            kit = {str(KIT)!r}
            return (sorted(os.listdir("/")), sorted(os.listdir(kit)),
                    os.path.exists(kit + "/autograder/suites"),
                    os.path.exists(kit + "/autograder/sandbox/child.py"),
                    os.path.exists("/etc/passwd"), os.path.exists("/root/.bashrc"))
    """)])
    top, kit, suites, child, passwd, bashrc = mode_sandbox.call("look").value
    assert ".git" not in kit and "tests" not in kit and "assignments" not in kit
    assert "build" not in kit and "autograder" in kit and "course_lib" in kit
    assert not suites and child and not passwd and not bashrc
    assert "home" not in top and "var" not in top and "sys" not in top


def test_shared_memory_does_not_outlive_the_sandbox(mode_sandbox):
    key = 0x5AFE0000 + os.getpid() % 0xFFFF
    mode_sandbox.load([unit(f"""
        import ctypes
        def hoard():
            libc = ctypes.CDLL(None, use_errno=True)
            shmid = libc.shmget({key}, 64 * 1024 * 1024, 0o1000 | 0o666)   # IPC_CREAT
            return shmid
    """)])
    assert mode_sandbox.call("hoard").value >= 0
    keys = {int(line.split()[0]) for line in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]}
    assert key not in keys            # its own IPC namespace: not even visible from here
    mode_sandbox.close()
    keys = {int(line.split()[0]) for line in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]}
    assert key not in keys


def test_seccomp_numbers_match_the_kernel_headers():
    from autograder.sandbox import seccomp
    header = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
    if seccomp.supported() != "x86_64" or not header.is_file():
        pytest.skip("the x86_64 kernel headers are needed to check the table")
    import re
    numbers = dict(re.findall(r"#define __NR_(\w+) (\d+)", header.read_text()))
    table = seccomp.SYSCALLS["x86_64"]
    checked = [name for name in table if name in numbers]
    assert len(checked) >= len(table) - 1                    # open_tree_attr is newer
    assert {n: table[n] for n in checked} == {n: int(numbers[n]) for n in checked}


def test_without_namespaces_the_filter_and_lost_capabilities_still_hold(monkeypatch):
    """What a container without namespaces gets: no new root, but no capabilities, no
    controlling terminal, no_new_privs and the seccomp filter."""
    from autograder.sandbox import process
    monkeypatch.setenv("AUTOGRADER_ISOLATION", "none")
    process.isolation_mode.cache_clear()
    try:
        with Sandbox(assignment="a2", policy=POLICY.as_config(), limits=LIMITS) as box:
            box.load([unit(ESCAPE)])
            tried = box.call("escape").value
            report = box.isolation
    finally:
        monkeypatch.delenv("AUTOGRADER_ISOLATION")
        process.isolation_mode.cache_clear()
    assert tried["mount tmpfs"] == "EPERM" and tried["unshare"] == "EPERM"
    assert tried["TIOCSTI"] == ["EPERM"] and tried["/dev/tty"] == "ENXIO"
    assert tried["caps"] == ["0000000000000000"] and tried["seccomp"] == "2"
    assert report["filesystem"].startswith("not isolated")


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="i386 system calls exist on x86_64")
def test_a_32_bit_system_call_cannot_slip_past_the_filter(mode_sandbox):
    """mount(2) by its i386 number through `int 0x80` from the 64-bit child: a filter that
    checked only x86_64 numbers would let it through; ours kills the process (SIGSYS), the
    sandbox restarts and the student's other functions still answer."""
    mode_sandbox.load([unit("""
        import ctypes, mmap
        def int80_mount():
            code = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
            code.write(bytes.fromhex("b815000000" "31db" "31c9" "31d2" "cd80" "c3"))
            address = ctypes.addressof(ctypes.c_char.from_buffer(code))
            return ctypes.CFUNCTYPE(ctypes.c_int)(address)()
        def still_here():
            return 1
    """)])
    with pytest.raises(SandboxFailure, match="a forbidden system call"):
        mode_sandbox.call("int80_mount")
    assert mode_sandbox.call("still_here").value == 1
