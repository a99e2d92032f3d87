"""The sandboxed child as a process: how it is started, limited, watched and killed.

`ChildProcess` starts `python -m autograder.sandbox.child` under `unshare` (new PID, mount,
network, IPC and UTS namespaces, plus a user namespace when the grader is not root) in a new
session with no controlling terminal, with a minimal environment, and tells it by `layout`
exactly which host paths to show read-only in its allow-list root (see
`autograder.sandbox.lockdown`). Its stdout and stderr are drained into capped buffers; it is
killed as a whole process group (and, with a PID namespace, everything it started dies with
it).

Where the system lacks some of that (macOS, Windows, a hosted notebook; see
`autograder.sandbox.system`) the child is started without what is missing: without `pass_fds`
it talks over its stdin and stdout, without process groups a time-out kills the child (and on
Windows its process tree, with taskkill), and it is refused for grading for marks unless the
instructor opted in.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import site
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from autograder.sandbox import system as host
from autograder.sandbox.channel import Channel, ThreadedChannel

__all__ = ["ChildProcess", "isolation_mode", "sandbox_layout", "describe_exit"]

_NAMESPACES = ["--pid", "--fork", "--kill-child", "--mount-proc", "--net", "--ipc", "--uts"]
_UNSHARE = {"root": ["unshare", *_NAMESPACES],
            "userns": ["unshare", "--user", "--map-root-user", *_NAMESPACES]}


@functools.lru_cache(maxsize=1)
def isolation_mode() -> tuple[str, tuple[str, ...], str]:
    """('root' | 'userns' | 'none', command prefix, explanation), probed once per process.

    `AUTOGRADER_ISOLATION=userns` makes a root grader use the unprivileged mode, and `none`
    what a container without namespaces gets (both for tests).
    """
    wanted = os.environ.get("AUTOGRADER_ISOLATION")
    if wanted == "none":
        return "none", (), "no namespaces (AUTOGRADER_ISOLATION=none)"
    here = host.current()
    if not here.has("namespaces"):
        return "none", (), ("no namespaces (simulated by " + host.SIMULATE_VARIABLE + ")"
                            if "namespaces" in here.simulated else
                            f"no namespaces ({here.name} has none)")
    modes = ["root"] if _euid() == 0 and wanted != "userns" else []
    modes.append("userns")
    problems = []
    for mode in modes:
        prefix = _UNSHARE[mode]
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=20,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            problems.append(f"{' '.join(prefix[:2])}: {exc}")
            continue
        if done.returncode == 0:
            return mode, tuple(prefix), "namespaces: pid, mount, net, ipc, uts" + (
                ", user" if mode == "userns" else "")
        problems.append(done.stderr.decode(errors="replace").strip()[:200])
    return "none", (), "no namespaces (" + "; ".join(problems) + ")"


# ----------------------------------------------------------------------------- the allow-list

_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime")
# Parts of the autograder package the child never needs to see: the hidden suites, and the
# instructor's nbgrader templates (formgrader and feedback pages).
_AUTOGRADER_HIDDEN = {"suites", "nbgrader_templates"}


def _inside(path: str, trees) -> bool:
    return any(path == t or path.startswith(t.rstrip("/") + "/") for t in trees)


def _package_dir(name: str) -> str | None:
    try:
        module = __import__(name)
    except ImportError:
        return None
    return os.path.dirname(os.path.realpath(module.__file__))


@functools.lru_cache(maxsize=1)
def sandbox_layout() -> tuple[tuple[str, str, str], ...]:
    """What the child's root shows, as ('bind', path, host path) | ('link', path, target) |
    ('empty', path, '') operations, in order. Everything else does not exist in there."""
    ops: list[tuple[str, str, str]] = []
    for path in _SYSTEM + _ETC:
        if os.path.islink(path):
            ops.append(("link", path, os.readlink(path)))
            real = os.path.realpath(path)
            if os.path.exists(real) and not _inside(real, _SYSTEM):
                ops.append(("bind", real, real))
        elif os.path.exists(path):
            ops.append(("bind", path, path))
    bound = [op[1] for op in ops if op[0] == "bind"]
    trees = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, *site.getsitepackages(),
                                           os.path.dirname(os.path.realpath(sys.executable)))}
    course_lib = _package_dir("course_lib")
    if course_lib:
        trees.add(course_lib)
    for tree in sorted(trees, key=len):
        if os.path.isdir(tree) and not _inside(tree, bound):
            ops.append(("bind", tree, tree))
            bound.append(tree)
    autograder = str(Path(__file__).resolve().parents[1])
    if _inside(autograder, bound):
        ops.append(("empty", autograder, ""))        # covers the bound copy, suites included
    for entry in sorted(os.listdir(autograder)):
        if entry not in _AUTOGRADER_HIDDEN:
            ops.append(("bind", f"{autograder}/{entry}", f"{autograder}/{entry}"))
    return tuple(ops)


def layout_summary(ops) -> str:
    """The allow-list in a line: each bound tree, with autograder's many entries as one."""
    autograder = str(Path(__file__).resolve().parents[1])
    shown = [path for op, path, _ in ops if op == "bind" and not _inside(path, [autograder])]
    hidden = " and ".join(f"{name}/" for name in sorted(_AUTOGRADER_HIDDEN))
    return ", ".join([*shown, f"{autograder} (without {hidden})"])


# ----------------------------------------------------------------------------- exit and output

# Windows has only some of these signals.
_SIGNALS = {getattr(signal, name): text for name, text in (
    ("SIGKILL", "it was killed (memory or process limit)"),
    ("SIGXCPU", "it used up its CPU-time limit"),
    ("SIGXFSZ", "it wrote a file larger than the file-size limit"),
    ("SIGSEGV", "segmentation fault"),
    ("SIGSYS", "a forbidden system call"),
    ("SIGABRT", "it aborted")) if hasattr(signal, name)}


def describe_exit(code: int | None) -> str:
    """A predicate for '<function> ...': how the sandbox process ended."""
    if code is None:
        return "made the sandbox process stop answering"
    signum = -code if code < 0 else code - 128 if code > 128 else None
    if signum:
        try:
            reason = _SIGNALS.get(signal.Signals(signum), f"signal {signal.Signals(signum).name}")
        except ValueError:
            reason = f"signal {signum}"
        return f"crashed the sandbox process ({reason})"
    return f"made the sandbox process exit with code {code} (sys.exit or os._exit?)"


class _CappedReader(threading.Thread):
    """Drains a pipe, keeping the first `cap` bytes and counting the rest."""

    def __init__(self, stream, cap: int):
        super().__init__(daemon=True)
        self.stream, self.cap = stream, cap
        self.kept = bytearray()
        self.total = 0

    def run(self) -> None:
        try:
            while chunk := self.stream.read1(1 << 16):
                self.total += len(chunk)
                room = self.cap - len(self.kept)
                if room > 0:
                    self.kept += chunk[:room]
        except (OSError, ValueError):
            pass


def _euid() -> int | None:
    """The effective uid (None on Windows)."""
    return os.geteuid() if hasattr(os, "geteuid") else None


def _sandbox_uid() -> int:
    # One unprivileged uid per grading process, so RLIMIT_NPROC counts only this sandbox.
    return 1_000_000 + os.getpid()


def _reachable_by_others(paths) -> bool:
    """Whether a user of its own could traverse to every path (needed without a new root)."""
    for path in paths:
        parts = Path(path).parts
        for i in range(2, len(parts) + 1):
            if not os.stat(Path(*parts[:i])).st_mode & 0o001:
                return False
    return True


def _kill_uid(uid: int) -> None:
    """Kill every process of `uid` (the fallback when there is no PID namespace)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass


# ----------------------------------------------------------------------------- the process

class ChildProcess:
    """One sandboxed interpreter: start it, account for its output, kill it.

    `degraded_ok`: the caller accepts a degraded sandbox (a self-check, or grading for marks
    with the instructor's opt-in); otherwise a system that lacks a protection grading relies
    on raises `DegradedSandboxRefused` here, before any child exists.
    """

    def __init__(self, *, assignment: str, policy: dict, limits, degraded_ok: bool = False):
        self.assignment, self.policy, self.limits = assignment, policy, limits
        self.system = host.current()
        if self.system.degraded and not degraded_ok:
            raise host.DegradedSandboxRefused(self.system.refusal())
        self.proc: subprocess.Popen | None = None
        self.last_exit: int | None = None
        self.stdout_bytes = self.stderr_bytes = 0
        self.stdout_head = self.stderr_head = b""
        self._readers: dict[str, _CappedReader] = {}
        self._folder: tempfile.TemporaryDirectory | None = None
        mode, self._prefix, explanation = isolation_mode()
        self.mode = mode
        # Without pass_fds (Windows) the child's stdin and stdout are the channel, and what
        # the student prints goes to stderr.
        self.transport = "fds" if self.system.has("pass_fds") else "stdio"
        self.isolation = {"namespaces": explanation,
                          "network": "none (network namespace)" if mode != "none" else
                          "not isolated (no network namespace available)",
                          "session": "a session of its own (setsid)"
                          if self.system.has("process_groups") else
                          "no session of its own (this system has no process groups)",
                          "degraded": self.system.degraded,
                          "active": self.system.active(mode != "none"),
                          "inactive": self.system.inactive(mode != "none")}

    def _config(self, req_r: int | None, resp_w: int | None) -> dict:
        uid = None
        if _euid() == 0 and self.mode != "userns" and self.system.kernel_calls():
            # Without a new root the drop needs the interpreter to be reachable as it is.
            python = [sys.prefix, sys.base_prefix, *site.getsitepackages()]
            if self.mode == "root" or _reachable_by_others(python):
                uid = _sandbox_uid()
        if self._folder is None:
            # With namespaces: the empty mount point of the child's new root (host side it
            # stays empty). Without: the child's working directory.
            self._folder = tempfile.TemporaryDirectory(prefix="autograder-")
            if uid is not None and self.mode == "none":
                os.chown(self._folder.name, uid, uid)
        limits = self.limits
        return {"fds": [req_r, resp_w], "transport": self.transport,
                "simulate_missing": sorted(self.system.simulated),
                "kernel_calls": self.system.kernel_calls(),
                "assignment": self.assignment, "policy": self.policy,
                "namespaces": self.isolation["namespaces"], "mode": self.mode, "uid": uid,
                "root": self._folder.name if self.mode != "none" else None,
                "workdir": self._folder.name if self.mode == "none" else None,
                "layout": sandbox_layout() if self.mode != "none" else [],
                "layout_summary": layout_summary(sandbox_layout())
                if self.mode != "none" else "",
                "memory_mb": limits.memory_mb, "cpu_seconds": limits.cpu_seconds,
                "file_mb": limits.file_mb, "nproc": limits.nproc, "tmpfs_mb": limits.tmpfs_mb}

    def _env(self) -> dict:
        home = self._folder.name if self.mode == "none" else "/tmp/work"
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
               "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
               "PYTHONUNBUFFERED": "1",
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "NUMBA_NUM_THREADS": "1", "MPLBACKEND": "Agg", "HOME": home, "TMPDIR": home}
        if os.name == "nt":
            # Python and numpy's DLLs need these on Windows (not tested here: no Windows).
            for name in ("SYSTEMROOT", "WINDIR", "PATH", "PATHEXT", "COMSPEC"):
                if name in os.environ:
                    env[name] = os.environ[name]
            env.update(TEMP=home, TMP=home, USERPROFILE=home)
        return env

    def spawn(self) -> Channel | ThreadedChannel:
        """Start a fresh child; returns the channel to it."""
        self.kill()
        cfg_fds: tuple[int | None, int | None] = (None, None)
        pipes: tuple[int, ...] = ()
        if self.transport == "fds":
            req_r, req_w = os.pipe()
            resp_r, resp_w = os.pipe()
            cfg_fds, pipes = (req_r, resp_w), (req_r, resp_w)
        try:
            cfg = self._config(*cfg_fds)
            command = [*self._prefix, sys.executable, "-s", "-P", "-m",
                       "autograder.sandbox.child", json.dumps(cfg)]
            session = {"start_new_session": True} if self.system.has("process_groups") else \
                {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
            self.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL if pipes else subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=pipes,
                env=self._env(), cwd="/" if os.name == "posix" else self._folder.name,
                close_fds=True, **session)
        except BaseException:
            if pipes:
                for fd in (req_w, resp_r):
                    os.close(fd)
            raise
        finally:
            for fd in pipes:
                os.close(fd)
        cap = self.limits.output_kb * 1024
        self._readers = {"stderr": _CappedReader(self.proc.stderr, cap)}
        if pipes:
            self._readers["stdout"] = _CappedReader(self.proc.stdout, cap)
        for reader in self._readers.values():
            reader.start()
        if pipes:
            return Channel(req_w, resp_r)
        return ThreadedChannel(self.proc.stdin, self.proc.stdout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def last_words(self, size: int = 600) -> str:
        """The end of what the child wrote to stderr (why it could not start)."""
        reader = self._readers.get("stderr")
        kept = self.stderr_head if reader is None else bytes(reader.kept)
        return kept[-size:].decode(errors="replace").strip()

    def _kill_tree(self, proc: subprocess.Popen) -> None:
        """The child and what it started: its process group, or on Windows its process tree;
        elsewhere (no process groups) the child alone."""
        if self.system.has("process_groups"):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            return
        if os.name == "nt":
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)],
                           capture_output=True, check=False)
        try:
            proc.kill()
        except OSError:
            pass

    def kill(self) -> None:
        """Kill the child and everything it started; account for its output."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        self._kill_tree(proc)
        try:
            self.last_exit = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.last_exit = None
        if self.mode == "none" and _euid() == 0 and self.system.kernel_calls():
            _kill_uid(_sandbox_uid())
        for stream, reader in self._readers.items():
            reader.join(timeout=2)
            if stream == "stdout":
                self.stdout_bytes += reader.total
                self.stdout_head = (self.stdout_head + bytes(reader.kept))[:reader.cap]
            else:
                self.stderr_bytes += reader.total
                self.stderr_head = (self.stderr_head + bytes(reader.kept))[:reader.cap]
        self._readers = {}

    def close(self) -> None:
        self.kill()
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
