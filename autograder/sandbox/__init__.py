"""The trusted parent's side of the sandbox: start, feed, call, time out and kill the child.

A `Sandbox` owns one child process (`autograder.sandbox.child`) that holds the student's code.
The parent sends requests over a pipe and reads replies with a deadline; it never runs student
code and never unpickles anything (see `autograder.protocol`). Isolation, strongest first:

* Linux namespaces through `unshare`: a PID namespace (the whole process tree dies with the
  child), a network namespace (no network), a mount namespace (private /tmp working directory,
  every file system read-only, the course's hidden directories covered). As root the child
  then drops to an unprivileged user id of its own, so RLIMIT_NPROC really limits it (root
  ignores RLIMIT_NPROC). Without root, a user namespace (`unshare -r`) gives the same.
* Resource limits set by the child on itself before any student code runs: address space,
  CPU seconds, file size, processes, open files, no core dumps.
* A wall-clock timeout per call and per loaded statement, a time budget per submission, its
  own process group killed whole with `os.killpg`, a minimal environment, and stdout/stderr
  read into capped buffers (the rest is counted and dropped).

What could be applied is recorded in `Sandbox.isolation`, so a result says how it was graded.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder import protocol

__all__ = ["Limits", "Sandbox", "SandboxFailure", "CallOutcome", "isolation_mode"]


@dataclass
class Limits:
    """Resource limits for one submission's sandbox (the CLI exposes the useful ones)."""

    call_timeout: float = 10.0          # seconds of wall clock per call of a student function
    load_timeout: float = 10.0          # seconds per top-level statement while loading
    submission_timeout: float = 180.0   # total wall-clock budget for one submission
    start_timeout: float = 60.0         # starting the interpreter and importing numpy
    memory_mb: int = 1024               # RLIMIT_AS
    cpu_seconds: int = 240              # RLIMIT_CPU of one child process
    file_mb: int = 16                   # RLIMIT_FSIZE
    nproc: int = 32                     # RLIMIT_NPROC (processes and threads)
    tmpfs_mb: int = 64                  # size of the private /tmp
    output_kb: int = 64                 # stdout/stderr kept per stream
    max_restarts: int = 4               # restarts after a crash or timeout

    def as_dict(self) -> dict:
        return dict(vars(self))


class SandboxFailure(Exception):
    """The sandbox could not answer: kind is 'timeout', 'crashed', 'budget' or 'protocol'."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class CallOutcome:
    """What a call returned (`ok`) or raised (`error`: type, message, where)."""

    ok: bool
    value: object = None
    args_after: list = field(default_factory=list)
    error: dict | None = None
    stage: str = "call"


# ----------------------------------------------------------------------------- isolation

_UNSHARE_ROOT = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--net"]
_UNSHARE_USER = ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--kill-child",
                 "--mount-proc", "--net"]


@functools.lru_cache(maxsize=1)
def isolation_mode() -> tuple[str, tuple[str, ...], str]:
    """('root' | 'userns' | 'none', command prefix, explanation), probed once per process."""
    candidates = [("root", _UNSHARE_ROOT)] if os.geteuid() == 0 else []
    candidates.append(("userns", _UNSHARE_USER))
    problems = []
    for mode, prefix in candidates:
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=20,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            problems.append(f"{' '.join(prefix[:2])}: {exc}")
            continue
        if done.returncode == 0:
            return mode, tuple(prefix), "namespaces: pid, net, mount" + (
                ", user" if mode == "userns" else "")
        problems.append(done.stderr.decode(errors="replace").strip()[:200])
    return "none", (), "no namespaces (" + "; ".join(problems) + ")"


def _needed_paths() -> list[str]:
    """Directories the child's interpreter must be able to read."""
    import numpy
    paths = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable)),
             os.path.dirname(os.path.dirname(numpy.__file__)),
             str(Path(__file__).resolve().parents[1])}
    try:
        import course_lib
        paths.add(str(Path(course_lib.__file__).resolve().parents[1]))
    except Exception:  # noqa: BLE001 - course_lib is optional for the sandbox itself
        pass
    return sorted(os.path.realpath(p) for p in paths)


def _blocked(paths: list[str], uid: int) -> bool:
    for path in paths:
        parts = Path(path).parts
        for i in range(2, len(parts) + 1):
            st = os.stat(Path(*parts[:i]))
            if not st.st_mode & 0o001 and st.st_uid != uid:
                return True
    return False


def _sandbox_uid() -> int:
    # One unprivileged uid per grading process, so RLIMIT_NPROC counts only this sandbox.
    return 1_000_000 + os.getpid()


def _kill_uid(uid: int) -> None:
    """Kill every process of `uid` (the fallback when there is no PID namespace)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass


_SIGNALS = {signal.SIGKILL: "it was killed (memory or process limit)",
            signal.SIGXCPU: "it used up its CPU-time limit",
            signal.SIGXFSZ: "it wrote a file larger than the file-size limit",
            signal.SIGSEGV: "segmentation fault",
            signal.SIGABRT: "it aborted"}


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


# ----------------------------------------------------------------------------- the sandbox

class Sandbox:
    """One child process holding one submission's code; restarted (and replayed) on demand."""

    def __init__(self, *, assignment: str, policy: dict | None = None,
                 limits: Limits | None = None, hide: list[str] | tuple = ()):
        self.assignment = assignment
        self.policy = policy or {"forbidden": {}, "allowed": []}
        self.limits = limits or Limits()
        self.hide = [str(p) for p in hide]
        self.generation = 0
        self.restarts = 0
        self.proc: subprocess.Popen | None = None
        self.units_ok: list[dict] = []
        self.events: list[dict] = []
        self.isolation: dict = {}
        self.stdout_bytes = self.stderr_bytes = 0
        self.stdout_head = self.stderr_head = b""
        self.deadline = time.monotonic() + self.limits.submission_timeout
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._stage: tempfile.TemporaryDirectory | None = None
        self._preloaded: list[dict] | None = None
        self._fresh = True          # the next start is the first one, not a restart
        self._readers: list[_CappedReader] = []
        self._last_exit: int | None = None

    # --- context manager
    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- process management
    def _config(self, req_r: int, resp_w: int) -> tuple[list[str], dict]:
        mode, prefix, explanation = isolation_mode()
        needed = _needed_paths()
        uid = None
        if os.geteuid() == 0 and (mode == "root" or not _blocked(needed, _sandbox_uid())):
            uid = _sandbox_uid()
        hide = [p for p in self.hide
                if not any(n == p or n.startswith(p.rstrip("/") + "/") for n in needed)]
        mount_ns = mode != "none"
        # Trees under /tmp (a kit cloned there) survive the child's private /tmp: it builds the
        # new /tmp on this empty staging directory, binds them in, then moves it over /tmp.
        if mount_ns and self._stage is None and any(n.startswith("/tmp/") for n in needed):
            self._stage = tempfile.TemporaryDirectory(prefix="autograder-stage-")
        if self._tmp is None and not mount_ns:
            # Without a mount namespace the child works in a directory made here.
            self._tmp = tempfile.TemporaryDirectory(prefix="autograder-")
            if uid is not None:
                os.chown(self._tmp.name, uid, uid)
        cfg = {"fds": [req_r, resp_w], "assignment": self.assignment,
               "policy": self.policy,
               "namespaces": explanation, "mount_ns": mount_ns,
               "mode": mode if uid is None else "dropped", "uid": uid, "gid": uid,
               "needed_paths": needed, "hide": hide,
               "workdir": self._tmp.name if self._tmp else "/tmp/work",
               "stage": self._stage.name if self._stage else None,
               "memory_mb": self.limits.memory_mb, "cpu_seconds": self.limits.cpu_seconds,
               "file_mb": self.limits.file_mb, "nproc": self.limits.nproc,
               "tmpfs_mb": self.limits.tmpfs_mb}
        if mode == "root":
            prefix = (*prefix, "--mount")
        command = [*prefix, sys.executable, "-s", "-P", "-m", "autograder.sandbox.child",
                   json.dumps(cfg)]
        self.isolation = {"namespaces": explanation,
                          "network": "none (network namespace)" if mode != "none" else
                          "not isolated (no network namespace available)"}
        return command, cfg

    def _env(self) -> dict:
        return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
                "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
                "PYTHONUNBUFFERED": "1",
                "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "NUMBA_NUM_THREADS": "1", "MPLBACKEND": "Agg",
                "HOME": self._tmp.name if self._tmp else "/tmp/work",
                "TMPDIR": self._tmp.name if self._tmp else "/tmp/work"}

    def start(self) -> None:
        """Start a fresh child and wait for its hello (isolation report)."""
        self._spawn()
        self._await_hello()

    def _spawn(self) -> None:
        self._kill()
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        try:
            command, _ = self._config(req_r, resp_w)
            self.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, pass_fds=(req_r, resp_w), env=self._env(), cwd="/",
                process_group=0, close_fds=True)
        finally:
            os.close(req_r)
            os.close(resp_w)
        self._req, self._resp = req_w, resp_r
        os.set_blocking(req_w, False)
        cap = self.limits.output_kb * 1024
        self._readers = [_CappedReader(self.proc.stdout, cap), _CappedReader(self.proc.stderr, cap)]
        for reader in self._readers:
            reader.start()
        self.generation += 1

    def _await_hello(self) -> None:
        deadline = min(time.monotonic() + self.limits.start_timeout, self.deadline)
        try:
            hello, _ = protocol.read_message(self._resp, deadline)
        except protocol.ChannelTimeout:
            self._kill()
            raise SandboxFailure("timeout", "could not run: the sandbox did not start in "
                                 "time") from None
        except protocol.ProtocolError:
            readers = self._readers
            self._kill()  # empties self._readers: read the child's last words first
            detail = bytes(readers[1].kept[-600:]).decode(errors="replace").strip() \
                if readers else ""
            raise SandboxFailure("crashed", f"could not run: the sandbox did not start "
                                 f"(exit code {self._last_exit}) {detail}") from None
        self.isolation.update(hello.get("isolation", {}))

    def prestart(self, units: list[dict]) -> None:
        """Start the child and queue `units` (the instructor's setup) without waiting.

        A batch worker prepares the next submission's sandbox this way while it grades the
        current one; `load` then only waits for what is already done. Nothing of a student
        is in it until `load`.
        """
        self._spawn()
        self._preloaded = list(units)
        try:
            protocol.write_message(self._req, {"op": "load", "units": self._preloaded}, (),
                                   time.monotonic() + 5)
        except (protocol.ProtocolError, protocol.ChannelTimeout):
            self._kill()
            self._preloaded = None

    def claim(self) -> None:
        """The submission's time budget starts now (for a sandbox started in advance)."""
        self.deadline = time.monotonic() + self.limits.submission_timeout

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _kill(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self._last_exit = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._last_exit = None
        if isolation_mode()[0] == "none" and os.geteuid() == 0:
            _kill_uid(_sandbox_uid())
        for fd in (self._req, self._resp):
            try:
                os.close(fd)
            except OSError:
                pass
        for reader in self._readers:
            reader.join(timeout=2)
            if reader is self._readers[0]:
                self.stdout_bytes += reader.total
                self.stdout_head = (self.stdout_head + bytes(reader.kept))[:reader.cap]
            else:
                self.stderr_bytes += reader.total
                self.stderr_head = (self.stderr_head + bytes(reader.kept))[:reader.cap]
        self._readers = []

    def close(self) -> None:
        """Kill the child (and everything it started) and remove the working directory."""
        if self.alive():
            try:
                protocol.write_message(self._req, {"op": "exit"},
                                       deadline=time.monotonic() + 0.5)
            except (protocol.ProtocolError, protocol.ChannelTimeout):
                pass
        self._kill()
        for folder in (self._tmp, self._stage):
            if folder is not None:
                folder.cleanup()
        self._tmp = self._stage = None

    # --- messaging
    def _exchange_deadline(self, seconds: float) -> float:
        return min(time.monotonic() + seconds, self.deadline)

    def _request(self, header: dict, buffers=(), timeout: float = 10.0) -> tuple[dict, list]:
        deadline = self._exchange_deadline(timeout)
        try:
            protocol.write_message(self._req, header, buffers, deadline)
            reply, out = protocol.read_message(self._resp, deadline)
        except protocol.ChannelTimeout:
            raise self._fail_timeout(timeout) from None
        except protocol.ChannelClosed:
            raise self._fail_crash() from None
        except protocol.ProtocolError as exc:
            self._kill()
            raise SandboxFailure("protocol", f"made the sandbox send a malformed reply ({exc})"
                                 ) from None
        self._note_events(reply)
        return reply, out

    def _read(self, deadline: float, timeout: float) -> tuple[dict, list]:
        try:
            reply, out = protocol.read_message(self._resp, deadline)
        except protocol.ChannelTimeout:
            raise self._fail_timeout(timeout) from None
        except protocol.ChannelClosed:
            raise self._fail_crash() from None
        except protocol.ProtocolError as exc:
            self._kill()
            raise SandboxFailure("protocol", f"made the sandbox send a malformed reply ({exc})"
                                 ) from None
        self._note_events(reply)
        return reply, out

    def _note_events(self, reply: dict) -> None:
        for event in reply.get("forbidden", []) if isinstance(reply, dict) else []:
            if isinstance(event, dict) and event not in self.events:
                self.events.append({k: str(event.get(k, ""))[:200]
                                    for k in ("context", "what", "how")})

    def _fail_timeout(self, timeout: float) -> SandboxFailure:
        self._kill()
        if time.monotonic() >= self.deadline - 1e-3:
            return SandboxFailure("budget", f"ran out of the time budget for this submission "
                                  f"({self.limits.submission_timeout:g} s)")
        return SandboxFailure("timeout", f"did not finish within {timeout:g} s")

    def _fail_crash(self) -> SandboxFailure:
        self._kill()
        return SandboxFailure("crashed", describe_exit(self._last_exit))

    def _ensure_alive(self) -> None:
        if self.alive():
            return
        if time.monotonic() >= self.deadline:
            raise SandboxFailure("budget", f"could not run: the time budget for this "
                                 f"submission ({self.limits.submission_timeout:g} s) ran out")
        if self.generation > 0 and not self._fresh:
            if self.restarts >= self.limits.max_restarts:
                raise SandboxFailure("budget", "could not run: the sandbox had to be restarted "
                                     "too many times")
            self.restarts += 1
        self._fresh = False
        self.start()
        if self.units_ok:
            self._send_units(self.units_ok, replay=True)

    def _send_units(self, units: list[dict], replay: bool = False) -> list[dict]:
        """Execute units in order; stops at the first unit that hangs or kills the child."""
        results = []
        deadline = self._exchange_deadline(self.limits.load_timeout)
        try:
            protocol.write_message(self._req, {"op": "load", "units": units}, (), deadline)
        except protocol.ChannelTimeout:
            raise self._fail_timeout(self.limits.load_timeout) from None
        except protocol.ChannelClosed:
            raise self._fail_crash() from None
        for unit in units:
            deadline = self._exchange_deadline(self.limits.load_timeout)
            try:
                reply, _ = self._read(deadline, self.limits.load_timeout)
            except SandboxFailure as failure:
                if replay:
                    raise
                results.append({"unit": unit["id"], "ok": False, "failure": failure.kind,
                                "error": {"type": "SandboxFailure", "message": failure.message,
                                          "where": None}})
                return results
            results.append(reply)
        self._read(self._exchange_deadline(self.limits.load_timeout), self.limits.load_timeout)
        return results

    # --- public operations
    def load(self, units: list[dict]) -> dict[str, dict]:
        """Run the student's units (dicts with id, file, code); returns a result per unit id.

        A unit that raises is reported and loading goes on. A unit that hangs or kills the
        process is reported, the child is restarted with the units that worked, and loading
        goes on with the next one, so one bad statement costs only what it defines.
        """
        results: dict[str, dict] = {}
        pending = list(units)
        if self._preloaded is not None:
            pending = self._finish_preload(pending, results)
        while pending:
            try:
                self._ensure_alive()
                batch = self._send_units(pending)
            except SandboxFailure as failure:
                for unit in pending:
                    results[unit["id"]] = {"unit": unit["id"], "ok": False,
                                           "failure": failure.kind,
                                           "error": {"type": "SandboxFailure",
                                                     "message": failure.message, "where": None}}
                break
            for unit, reply in zip(pending, batch, strict=False):
                results[unit["id"]] = reply
                if reply.get("ok"):
                    self.units_ok.append(unit)
            pending = pending[len(batch):]
        return results

    def _finish_preload(self, units: list[dict], results: dict) -> list[dict]:
        """Collect the replies of `prestart`; returns the units still to load."""
        preloaded, self._preloaded = self._preloaded, None
        n = len(preloaded)
        if units[:n] != preloaded or not self.alive():
            self._kill()
            return units
        try:
            self._await_hello()
            replies = [self._read(self._exchange_deadline(self.limits.load_timeout),
                                  self.limits.load_timeout)[0] for _ in range(n + 1)]
        except SandboxFailure:
            self._kill()
            return units
        self._fresh = False
        for unit, reply in zip(preloaded, replies, strict=False):
            results[unit["id"]] = reply
            if reply.get("ok"):
                self.units_ok.append(unit)
        return units[n:]

    def inspect(self, names: list[str]) -> dict[str, str]:
        """What each name is in the student's namespace: function, class, missing, ..."""
        self._ensure_alive()
        reply, _ = self._request({"op": "inspect", "names": names}, timeout=10)
        kinds = reply.get("kinds", {})
        return {n: str(kinds.get(n, "missing"))[:80] for n in names}

    def call(self, target: str, args=(), kwargs=None, *, opaque=(), echo=(), handle=None,
             function: str | None = None, getattr_only: bool = False) -> CallOutcome:
        """Call `target(*args, **kwargs)` in the child (a method of `handle` if given).

        `opaque`: positions of the returned tuple kept in the child as handles (-1: the whole
        value). `echo`: argument positions sent back after the call (to detect modification).
        Raises SandboxFailure on timeout, crash or exhausted budget.
        """
        if handle is not None and handle.generation != self.generation:
            return CallOutcome(ok=False, error={
                "type": "LostValue", "where": None,
                "message": "a value from an earlier call was lost when the sandbox restarted"})
        self._ensure_alive()
        buffers: list = []
        header = {"op": "call", "target": target, "function": function or target,
                  "handle": handle.id if handle is not None else None,
                  "args": [protocol.encode_for_child(a, buffers) for a in args],
                  "kwargs": [[k, protocol.encode_for_child(v, buffers)]
                             for k, v in (kwargs or {}).items()],
                  "opaque": list(opaque), "echo": list(echo), "getattr": getattr_only}
        reply, out = self._request(header, buffers, timeout=self.limits.call_timeout)
        try:
            if not reply.get("ok"):
                error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
                return CallOutcome(ok=False, stage=str(reply.get("stage", "call")), error={
                    "type": str(error.get("type", "Error"))[:80],
                    "message": str(error.get("message", ""))[:400],
                    "where": error.get("where") if isinstance(error.get("where"), dict) else None})
            value = protocol.decode_value(reply.get("value"), out, generation=self.generation)
            after = [protocol.decode_value(node, out, generation=self.generation)
                     for node in reply.get("args_after", [])]
        except protocol.ProtocolError as exc:
            self._kill()
            raise SandboxFailure("protocol", f"made the sandbox send a malformed reply ({exc})"
                                 ) from None
        return CallOutcome(ok=True, value=value, args_after=after)
