"""The sandboxed child: runs the student's code and answers calls. It decides nothing.

Started by `autograder.sandbox.Sandbox` as a fresh interpreter (never a fork of the grader):

    [unshare --pid --fork --mount-proc --net ...] python -s -P -m autograder.sandbox.child CONFIG

It first locks itself down while it is still our own code (see `lock_down`): private /tmp,
read-only file systems, hidden course directories, resource limits, an unprivileged user id
when started as root, no new privileges. Then it imports numpy, installs the import guard and
serves requests on two pipes (never stdout/stderr, which belong to the student's prints).

Requests and replies use `autograder.protocol` (JSON headers + raw array bytes, no pickle).
Student code is executed into one namespace, unit by unit (a unit is one top-level statement
of a notebook cell or module), each with its own error report, like "Restart and run all".
"""

from __future__ import annotations

import builtins
import ctypes
import json
import os
import re
import resource
import sys
import traceback

from autograder.sandbox.guard import STUDENT_FILE_PREFIX, STUDENT_MODULE, Guard

# ============================================================================ lock-down

_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_NOATIME, _MS_NODIRATIME = 32, 1024, 2048
_MS_BIND, _MS_MOVE, _MS_REC = 4096, 8192, 16384
_MS_PRIVATE, _MS_RELATIME = 1 << 18, 1 << 21
_PR_SET_NO_NEW_PRIVS = 38
_MOUNT_FLAGS = {"nosuid": _MS_NOSUID, "nodev": _MS_NODEV, "noexec": _MS_NOEXEC,
                "noatime": _MS_NOATIME, "nodiratime": _MS_NODIRATIME, "relatime": _MS_RELATIME}


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _bytes(text):
    return text.encode() if isinstance(text, str) else text


def _mount(source, target, fstype, flags, data=None) -> None:
    enc = _bytes
    if _libc().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {target}: {os.strerror(errno)}")


def _mount_points() -> list[tuple[str, int]]:
    """(mount point, flags to keep on a remount) from /proc/self/mountinfo."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape")
            keep = 0
            for option in fields[5].split(","):
                keep |= _MOUNT_FLAGS.get(option, 0)
            points.append((point, keep))
    return points


def _blocked_ancestor(path: str, uid: int) -> str | None:
    """The highest directory above `path` that user `uid` cannot traverse."""
    parts = os.path.realpath(path).split(os.sep)
    for i in range(2, len(parts)):
        ancestor = os.sep.join(parts[:i])
        st = os.stat(ancestor)
        if not st.st_mode & 0o001 and st.st_uid != uid:
            return ancestor
    return None


def _private_tmp(cfg: dict) -> None:
    """A fresh tmpfs on /tmp that still shows the needed trees living under /tmp."""
    size = f"size={cfg['tmpfs_mb']}m,mode=0755"
    under_tmp = sorted(p for p in cfg["needed_paths"] if p.startswith("/tmp/"))
    tops = [p for p in under_tmp if not any(p.startswith(q + "/") for q in under_tmp)]
    if not tops or not cfg.get("stage"):
        _mount("tmpfs", "/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, size)
        return
    stage = cfg["stage"]
    _mount("tmpfs", stage, "tmpfs", _MS_NOSUID | _MS_NODEV, size)
    for tree in tops:
        inside = os.path.join(stage, os.path.relpath(tree, "/tmp"))
        os.makedirs(inside, mode=0o755, exist_ok=True)
        _mount(tree, inside, None, _MS_BIND | _MS_REC)
    _mount(stage, "/tmp", None, _MS_MOVE)


def _setup_mounts(cfg: dict, notes: dict) -> str:
    """Private /tmp, interpreter reachable by the sandbox user, hidden paths, read-only rest."""
    _mount("none", "/", None, _MS_REC | _MS_PRIVATE)
    _private_tmp(cfg)
    uid = cfg.get("uid")
    # A root-only parent directory (e.g. /root/.pyenv) would lock the unprivileged sandbox user
    # out of its own interpreter: bind the needed trees aside, cover the parent with an empty
    # tmpfs and move the trees back into it.
    if uid is not None:
        moves: dict[str, list[str]] = {}
        for needed in cfg["needed_paths"]:
            ancestor = _blocked_ancestor(needed, uid)
            if ancestor:
                moves.setdefault(ancestor, []).append(os.path.realpath(needed))
        for n, (ancestor, trees) in enumerate(sorted(moves.items())):
            stashed = []
            for m, tree in enumerate(trees):
                stash = f"/tmp/.stash-{n}-{m}"
                os.mkdir(stash)
                _mount(tree, stash, None, _MS_BIND | _MS_REC)
                stashed.append((stash, tree))
            _mount("tmpfs", ancestor, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=1m,mode=0755")
            for stash, tree in stashed:
                os.makedirs(tree, exist_ok=True)
                _mount(stash, tree, None, _MS_MOVE)
                os.rmdir(stash)
            notes.setdefault("reachable", []).append(ancestor)
    hidden = []
    for path in cfg.get("hide", []):
        try:
            if os.path.isdir(path):
                _mount("tmpfs", path, "tmpfs", _MS_RDONLY | _MS_NOSUID | _MS_NODEV, "size=4k")
            elif os.path.exists(path):
                _mount("/dev/null", path, None, _MS_BIND)
            else:
                continue
            hidden.append(path)
        except OSError as exc:
            notes.setdefault("problems", []).append(str(exc))
    notes["hidden"] = hidden
    readonly, failed = 0, []
    for point, keep in _mount_points():
        # Trees bound under /tmp (a kit living there) become read-only like the rest.
        if point == "/tmp" or point.startswith(("/proc", "/sys", "/dev")):
            continue
        try:
            _mount("none", point, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | keep)
            readonly += 1
        except OSError:
            failed.append(point)
    # /dev/shm is world-writable on most systems: give the sandbox a tiny private one.
    try:
        _mount("tmpfs", "/dev/shm", "tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, "size=1m")
    except OSError as exc:
        failed.append(f"/dev/shm ({exc.strerror})")
    notes["filesystem"] = ("read-only except the working directory" if not failed else
                           f"read-only except the working directory; could not remount {failed}")
    workdir = "/tmp/work"
    os.mkdir(workdir, 0o700)
    if uid is not None:
        os.chown(workdir, uid, cfg["gid"])
    return workdir


def lock_down(cfg: dict) -> dict:
    """Apply the isolation this process can apply to itself; report what was applied."""
    notes: dict = {"namespaces": cfg.get("namespaces", "none")}
    workdir = cfg["workdir"]
    if cfg.get("mount_ns"):
        try:
            workdir = _setup_mounts(cfg, notes)
        except OSError as exc:
            notes["filesystem"] = f"not isolated ({exc})"
    else:
        notes["filesystem"] = "not isolated (no mount namespace)"
    limits = {"RLIMIT_AS": cfg["memory_mb"] * 1024 * 1024,
              "RLIMIT_CPU": cfg["cpu_seconds"],
              "RLIMIT_FSIZE": cfg["file_mb"] * 1024 * 1024,
              "RLIMIT_NPROC": cfg["nproc"],
              "RLIMIT_NOFILE": 256,
              "RLIMIT_CORE": 0}
    applied = {}
    for name, value in limits.items():
        which = getattr(resource, name)
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        # The CPU hard limit is one second above the soft one: SIGXCPU first, then SIGKILL.
        new_hard = value + 1 if name == "RLIMIT_CPU" else value
        if hard != resource.RLIM_INFINITY:
            new_hard = min(new_hard, hard)
        try:
            resource.setrlimit(which, (value, new_hard))
            applied[name] = value
        except (ValueError, OSError) as exc:
            applied[name] = f"not set ({exc})"
    notes["rlimits"] = applied
    try:
        _libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if cfg.get("uid") is not None:
        os.setgroups([])
        os.setgid(cfg["gid"])
        os.setuid(cfg["uid"])
        notes["user"] = "an unprivileged user id of its own (so RLIMIT_NPROC applies)"
    else:
        notes["user"] = {"userns": "the grader's user in a user namespace of its own",
                         "root": "root (RLIMIT_NPROC does not apply to root)"}.get(
            cfg.get("mode"), "the grader's user")
    os.chdir(workdir)
    os.environ["HOME"] = os.environ["TMPDIR"] = workdir
    os.environ["MPLCONFIGDIR"] = os.path.join(workdir, ".matplotlib")
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(workdir, ".numba")
    notes["workdir"] = workdir
    return notes


# ============================================================================ serving requests

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


def describe_error(exc: BaseException) -> dict:
    """Type, short message and the student's own line, with nothing from our frames."""
    where = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        filename = frame.f_code.co_filename
        if filename.startswith(STUDENT_FILE_PREFIX):
            where = {"file": filename, "line": lineno, "function": frame.f_code.co_name}
    try:
        message = str(exc)
    except BaseException:  # noqa: BLE001 - a hostile __str__ must not kill the reply
        message = "<message could not be shown>"
    message = _ADDRESS.sub("0x...", message)
    if len(message) > 300:
        message = message[:300] + " ..."
    return {"type": type(exc).__name__[:80], "message": message, "where": where}


class Server:
    def __init__(self, cfg: dict, req_fd: int, resp_fd: int, guard: Guard, notes: dict):
        import numpy as np

        from autograder import protocol
        self.np, self.protocol = np, protocol
        self.req_fd, self.resp_fd = req_fd, resp_fd
        self.guard = guard
        self.notes = notes
        self.namespace = {"__name__": STUDENT_MODULE, "__builtins__": builtins,
                          "get_ipython": _get_ipython_stub}
        self.handles: dict[int, object] = {}
        self.next_handle = 1

    # --- helpers
    def keep(self, value) -> int:
        handle = self.next_handle
        self.next_handle += 1
        self.handles[handle] = value
        return handle

    def send(self, header: dict, buffers=()) -> None:
        header = dict(header, forbidden=self.guard.drain())
        self.protocol.write_message(self.resp_fd, header, buffers)

    def decode(self, node, buffers):
        """Arguments from the parent; handles are resolved to the values kept here."""
        tag = node.get("t")
        if tag == "handle":
            if node["id"] not in self.handles:
                raise KeyError("that value is no longer in the sandbox (it was restarted)")
            return self.handles[node["id"]]
        if tag in ("tuple", "list"):
            items = [self.decode(v, buffers) for v in node["items"]]
            return tuple(items) if tag == "tuple" else items
        if tag == "dict":
            return {k: self.decode(v, buffers) for k, v in node["items"]}
        value = self.protocol.decode_value(node, buffers)
        if isinstance(value, self.np.ndarray):
            value.setflags(write=True)
        return value

    def encode_result(self, value, opaque: list[int], buffers: list) -> dict:
        if opaque == [-1]:
            return {"t": "handle", "id": self.keep(value)}
        if opaque and type(value) in (tuple, list):
            items = []
            for i, item in enumerate(value):
                if i in opaque:
                    items.append({"t": "handle", "id": self.keep(item)})
                else:
                    items.append(self.protocol.encode_value(item, buffers))
            return {"t": type(value).__name__, "items": items}
        return self.protocol.encode_value(value, buffers)

    # --- operations
    def op_load(self, request: dict, buffers) -> None:
        for unit in request["units"]:
            self.guard.context = f"load:{unit['id']}"
            reply = {"unit": unit["id"], "ok": True}
            try:
                code = compile(unit["code"], f"{STUDENT_FILE_PREFIX}{unit['file']}>", "exec",
                               dont_inherit=True)
                exec(code, self.namespace)  # noqa: S102 - this is the sandbox's job
            except BaseException as exc:  # noqa: BLE001 - SystemExit included, on purpose
                reply = {"unit": unit["id"], "ok": False, "error": describe_error(exc)}
            self.guard.patch_reference_modules()
            self.send(reply)
        self.guard.context = "idle"
        self.send({"done": True})

    def op_inspect(self, request: dict, buffers) -> None:
        kinds = {}
        for name in request["names"]:
            value = self.namespace.get(name, None)
            if name not in self.namespace:
                kinds[name] = "missing"
            elif getattr(value, "__wrapped_forbidden__", False):
                kinds[name] = "forbidden"
            elif isinstance(value, type):
                kinds[name] = "class"
            elif callable(value):
                kinds[name] = "function"
            else:
                kinds[name] = f"not callable ({type(value).__name__})"
        self.send({"ok": True, "kinds": kinds})

    def op_call(self, request: dict, buffers) -> None:
        target = request["target"]
        self.guard.context = f"call:{request.get('function') or target}"
        try:
            if request.get("handle") is not None:
                obj = self.decode({"t": "handle", "id": request["handle"]}, buffers)
                func = getattr(obj, target)
            else:
                if target not in self.namespace:
                    raise NameError(f"name '{target}' is not defined")
                func = self.namespace[target]
            args = [self.decode(a, buffers) for a in request["args"]]
            kwargs = {k: self.decode(v, buffers) for k, v in request["kwargs"]}
        except BaseException as exc:  # noqa: BLE001
            self.guard.context = "idle"
            self.send({"ok": False, "error": describe_error(exc), "stage": "setup"})
            return
        try:
            if request.get("getattr"):
                value = func
            else:
                value = func(*args, **kwargs)
            out = []
            node = self.encode_result(value, request.get("opaque", []), out)
            # Send the arguments back as they are now: the parent checks for modification.
            after = [self.protocol.encode_value(a, out) if i in request.get("echo", []) else
                     {"t": "none"} for i, a in enumerate(args)]
            self.guard.patch_reference_modules()
            self.guard.context = "idle"
            self.send({"ok": True, "value": node, "args_after": after}, out)
        except BaseException as exc:  # noqa: BLE001
            self.guard.context = "idle"
            self.send({"ok": False, "error": describe_error(exc), "stage": "call"})

    def op_release(self, request: dict, buffers) -> None:
        for handle in request["handles"]:
            self.handles.pop(handle, None)
        self.send({"ok": True})

    def watch_parent(self) -> None:
        """Exit as soon as the grader's end of the request pipe closes (the grader died),
        even while student code is still running in the main thread."""
        import select
        import threading

        def watch() -> None:
            poller = select.poll()
            poller.register(self.req_fd, select.POLLHUP)
            while True:
                for _, event in poller.poll():
                    if event & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                        os._exit(70)

        threading.Thread(target=watch, daemon=True, name="parent-watch").start()

    def serve(self) -> None:
        self.watch_parent()
        self.send({"hello": True, "isolation": self.notes, "pid": os.getpid()})
        operations = {"load": self.op_load, "inspect": self.op_inspect, "call": self.op_call,
                      "release": self.op_release}
        while True:
            try:
                request, buffers = self.protocol.read_message(self.req_fd)
            except self.protocol.ChannelClosed:
                os._exit(0)
            op = request.get("op")
            if op == "exit":
                os._exit(0)
            operations[op](request, buffers)


class _IPythonStub:
    """Stands in for `get_ipython()`: magics and shell escapes do nothing in the sandbox."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _get_ipython_stub():
    return _IPythonStub()


def _mini_init(fds) -> None:
    """As PID 1 of a fresh PID namespace: run the server as a child, reap orphans, and exit
    with it. When PID 1 exits the kernel kills everything left in the namespace, so no process
    the student started (even one that called setsid) outlives the sandbox."""
    server = os.fork()
    if server == 0:
        return
    for fd in fds:
        os.close(fd)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == server:
            if os.WIFSIGNALED(status):
                os._exit(128 + os.WTERMSIG(status))
            os._exit(os.waitstatus_to_exitcode(status))


def main() -> None:
    cfg = json.loads(sys.argv[1])
    req_fd, resp_fd = cfg["fds"]
    notes = lock_down(cfg)
    if os.getpid() == 1:
        _mini_init((req_fd, resp_fd))
    # From here on nothing of the parent's world is reachable; import what serving needs
    # before the student gets a chance to tamper with the import system.
    import numpy  # noqa: F401

    from autograder import protocol  # noqa: F401
    from autograder.forbidden import Policy
    guard = Guard(Policy(cfg["policy"]["forbidden"], cfg["policy"]["allowed"]))
    guard.install()
    sys.stdout.flush()
    Server(cfg, req_fd, resp_fd, guard, notes).serve()


if __name__ == "__main__":
    main()
