"""The sandboxed child: runs the student's code and answers calls. It decides nothing.

Started by `autograder.sandbox.Sandbox` as a fresh interpreter (never a fork of the grader):

    unshare --pid --fork --mount-proc --net --ipc --uts [--user ...] \
        python -s -P -m autograder.sandbox.child CONFIG

It first locks itself in while it is still our own code (`autograder.sandbox.lockdown`: an
allow-list root, no capabilities, locked mounts, rlimits, no_new_privs, seccomp). Then it
imports numpy, installs the import guard (`autograder.sandbox.guard`) and serves requests on
two pipes (never stdout/stderr, which belong to the student's prints). Where the parent cannot
pass pipes (Windows; `autograder.sandbox.system`), the channel is the child's own stdin and
stdout, moved to private descriptors before anything else runs, and the student's prints go to
stderr; a thread then reads the requests, so the child exits when the grader goes away.

Requests and replies use `autograder.protocol` (JSON headers + raw array bytes, no pickle).
Student code is executed into one namespace, unit by unit (a unit is one top-level statement
of a notebook cell or module), each with its own error report, like "Restart and run all".
"""

from __future__ import annotations

import ast
import builtins
import json
import os
import queue
import re
import sys
import traceback

from autograder.sandbox.guard import STUDENT_FILE_PREFIX, STUDENT_MODULE, Guard

# ============================================================================ serving requests

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
_ABSENT = object()


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


class LentValue:
    """A value the reference function kept on the grader's side (a forward pass's cache);
    pass it back to the lent backward function."""

    __slots__ = ("_id",)

    def __init__(self, key: int):
        self._id = key

    def __repr__(self) -> str:
        return "<value kept by the grader's reference layer>"


class ReferenceLayerError(Exception):
    """A function the grader lent to this call (its reference layer) refused the arguments."""


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
        self.inbox = None if cfg.get("transport", "fds") == "fds" else queue.Queue()

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
        if tag == "ref":
            return LentValue(node["id"])
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

    # --- functions lent by the grader for one call (autograder.sandbox.references)
    def encode_lent(self, value, buffers: list, depth: int = 0) -> dict:
        if type(value) is LentValue:
            return {"t": "ref", "id": value._id}
        if type(value) in (tuple, list) and depth < self.protocol.MAX_DEPTH:
            return {"t": type(value).__name__,
                    "items": [self.encode_lent(v, buffers, depth + 1) for v in value]}
        if type(value) is dict and depth < self.protocol.MAX_DEPTH:
            return {"t": "dict", "items": [[k, self.encode_lent(v, buffers, depth + 1)]
                                           for k, v in value.items()]}
        return self.protocol.encode_value(value, buffers)

    def lent_function(self, name: str):
        """A stand-in for the student's `name` that asks the grader to run its reference."""
        def lent(*args, **kwargs):
            buffers: list = []
            self.send({"op": "reference", "name": name,
                       "args": [self.encode_lent(a, buffers) for a in args],
                       "kwargs": [[k, self.encode_lent(v, buffers)] for k, v in kwargs.items()]},
                      buffers)
            reply, out = self.receive()
            if not reply.get("ok"):
                error = reply.get("error", {})
                raise ReferenceLayerError(f"the grader's {name} (lent to this check) raised "
                                          f"{error.get('type')}: {error.get('message')}")
            for key, node in reply.get("dicts_after", []):
                original = args[key] if type(key) is int else kwargs[key]
                original.clear()
                original.update(self.decode(node, out))
            return self.decode(reply["value"], out)

        lent.__name__ = lent.__qualname__ = name
        return lent

    def lend(self, names: list[str]) -> dict:
        """Put the lent functions in the student's namespace; returns what they replaced."""
        replaced = {name: self.namespace.get(name, _ABSENT) for name in names}
        for name in names:
            self.namespace[name] = self.lent_function(name)
        return replaced

    def give_back(self, replaced: dict) -> None:
        for name, value in replaced.items():
            if value is _ABSENT:
                self.namespace.pop(name, None)
            else:
                self.namespace[name] = value

    # --- operations
    def op_load(self, request: dict, buffers) -> None:
        for unit in request["units"]:
            self.guard.context = f"load:{unit['id']}"
            reply = {"unit": unit["id"], "ok": True}
            try:
                # Units arrive without padding; their statements are moved to the unit's line
                # in the cell, so tracebacks point at the student's own line numbers.
                tree = ast.parse(unit["code"], f"{STUDENT_FILE_PREFIX}{unit['file']}>")
                ast.increment_lineno(tree, int(unit.get("line", 1)) - 1)
                code = compile(tree, f"{STUDENT_FILE_PREFIX}{unit['file']}>", "exec",
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
                replaced = self.lend(request.get("lend") or [])
                try:
                    value = func(*args, **kwargs)
                finally:
                    self.give_back(replaced)
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

    def receive(self) -> tuple[dict, list]:
        """The next request (read by the reader thread when the channel is stdin)."""
        if self.inbox is None:
            return self.protocol.read_message(self.req_fd)
        return self.inbox.get()

    def watch_parent(self) -> None:
        """Exit as soon as the grader's end of the request pipe closes (the grader died),
        even while student code is still running in the main thread."""
        import threading
        if self.inbox is not None:
            threading.Thread(target=self.read_requests, daemon=True, name="requests").start()
            return
        import select

        def watch() -> None:
            poller = select.poll()
            poller.register(self.req_fd, select.POLLHUP)
            while True:
                for _, event in poller.poll():
                    if event & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                        os._exit(70)

        threading.Thread(target=watch, daemon=True, name="parent-watch").start()

    def read_requests(self) -> None:
        """Portable parent watch: read every request into the inbox; exit at end of file."""
        while True:
            try:
                message = self.protocol.read_message(self.req_fd)
            except self.protocol.ChannelClosed:
                os._exit(0)
            except (self.protocol.ProtocolError, OSError):
                os._exit(70)
            self.inbox.put(message)

    def serve(self) -> None:
        self.watch_parent()
        self.send({"hello": True, "isolation": self.notes, "pid": os.getpid()})
        operations = {"load": self.op_load, "inspect": self.op_inspect, "call": self.op_call,
                      "release": self.op_release}
        while True:
            try:
                request, buffers = self.receive()
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


def _take_stdio() -> tuple[int, int]:
    """stdin and stdout become the channel, on private (non-inheritable) descriptors; fd 0
    reads nothing and fd 1 writes to stderr, so prints and child processes never touch it."""
    req_fd, resp_fd = os.dup(0), os.dup(1)
    try:
        import msvcrt
    except ImportError:
        pass
    else:                                       # Windows: no newline translation
        for fd in (req_fd, resp_fd):
            msvcrt.setmode(fd, os.O_BINARY)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    return req_fd, resp_fd


def main() -> None:
    cfg = json.loads(sys.argv[1])
    from autograder.sandbox.system import apply_in_child
    apply_in_child(cfg.get("simulate_missing", ()))     # a test hook; see system.py
    if cfg.get("transport", "fds") == "fds":
        req_fd, resp_fd = cfg["fds"]
    else:
        req_fd, resp_fd = _take_stdio()
    # Imported only now: with `resource` simulated away, lockdown must not find it.
    from autograder.sandbox.lockdown import lock_down
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
