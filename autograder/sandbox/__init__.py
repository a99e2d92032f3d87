"""The trusted parent's side of the sandbox: start, feed, call, time out and kill the child.

Three small parts, each with one job:

* `channel.Channel`       - framed messages to and from the child, each before a deadline;
* `process.ChildProcess`  - the child process: started under namespaces in a session of its
                            own, told what its allow-list root shows, output capped, killed
                            whole (`lockdown` is what the child does to itself, `seccomp` its
                            system-call filter, `child` its main loop, `guard` its import guard);
* `Sandbox` (here)        - one submission's code in a child: load it unit by unit, restart
                            and replay after a crash or timeout, inspect names, call functions.

The parent never runs student code and never unpickles anything (`autograder.protocol`).
What the child could apply is recorded in `Sandbox.isolation`, so a result says how it was
graded; on a system without some of the protections (`system`: macOS, Windows, a hosted
notebook) a self-check still runs, and `isolation["degraded"]` and its active and inactive
lists say what it had. Grading for marks refuses a degraded sandbox unless the caller passes
`degraded_ok` (the instructor's --allow-degraded-sandbox).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from autograder import protocol
from autograder.sandbox.channel import Channel, ThreadedChannel
from autograder.sandbox.process import ChildProcess, describe_exit, isolation_mode
from autograder.sandbox.references import Lending
from autograder.sandbox.system import DegradedSandboxRefused

__all__ = ["Limits", "Sandbox", "SandboxFailure", "CallOutcome", "isolation_mode",
           "describe_exit", "MAX_EVENTS", "DegradedSandboxRefused"]

MAX_EVENTS = 200            # forbidden-use events kept per submission (the rest are counted)
_TEXT = {"type": 80, "message": 400, "file": 200, "function": 120}


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


# ----------------------------------------------------------------------------- the sandbox

def _short(value, size: int) -> str:
    text = str(value)
    return text if len(text) <= size else text[:size] + " ..."


def _error(node) -> dict:
    """A child's error report, with every field the child controls bounded."""
    node = node if isinstance(node, dict) else {}
    where = node.get("where")
    if isinstance(where, dict):
        line = where.get("line")
        where = {"file": _short(where.get("file", ""), _TEXT["file"]),
                 "line": line if type(line) is int else None,
                 "function": _short(where.get("function", ""), _TEXT["function"])}
    else:
        where = None
    return {"type": _short(node.get("type", "Error"), _TEXT["type"]),
            "message": _short(node.get("message", ""), _TEXT["message"]), "where": where}


class Sandbox:
    """One child process holding one submission's code; restarted (and replayed) on demand."""

    def __init__(self, *, assignment: str, policy: dict | None = None,
                 limits: Limits | None = None, degraded_ok: bool = False):
        self.assignment = assignment
        self.policy = policy or {"forbidden": {}, "allowed": []}
        self.limits = limits or Limits()
        self.process = ChildProcess(assignment=assignment, policy=self.policy,
                                    limits=self.limits, degraded_ok=degraded_ok)
        self.channel: Channel | ThreadedChannel | None = None
        self.generation = 0
        self.restarts = 0
        self.units_ok: list[dict] = []
        self.events: list[dict] = []
        self.events_dropped = 0
        self._event_keys: set[tuple] = set()
        self.isolation: dict = dict(self.process.isolation)
        self.deadline = time.monotonic() + self.limits.submission_timeout
        self._preloaded: list[dict] | None = None
        self._fresh = True          # the next start is the first one, not a restart

    # --- context manager
    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- output accounting (kept by the process across restarts)
    @property
    def stdout_bytes(self) -> int:
        return self.process.stdout_bytes

    @property
    def stderr_bytes(self) -> int:
        return self.process.stderr_bytes

    @property
    def stdout_head(self) -> bytes:
        return self.process.stdout_head

    @property
    def stderr_head(self) -> bytes:
        return self.process.stderr_head

    # --- process management
    def start(self) -> None:
        """Start a fresh child and wait for its hello (isolation report)."""
        self._spawn()
        self._await_hello()

    def _spawn(self) -> None:
        self._kill()
        self.channel = self.process.spawn()
        self.generation += 1

    def _await_hello(self) -> None:
        deadline = min(time.monotonic() + self.limits.start_timeout, self.deadline)
        try:
            hello, _ = self.channel.receive(deadline)
        except protocol.ChannelTimeout:
            self._kill()
            raise SandboxFailure("timeout", "could not run: the sandbox did not start in "
                                 "time") from None
        except protocol.ProtocolError:
            self._kill()
            raise SandboxFailure("crashed", f"could not run: the sandbox did not start "
                                 f"(exit code {self.process.last_exit}) "
                                 f"{self.process.last_words()}") from None
        report = hello.get("isolation")
        if isinstance(report, dict):
            # What is degraded is the parent's finding, never the child's say.
            self.isolation.update({str(k)[:40]: v for k, v in report.items()
                                   if k not in ("degraded", "active", "inactive")})
            self._note_unset_limits(report.get("rlimits"))

    def _note_unset_limits(self, rlimits) -> None:
        """A limit the system refused (macOS does not take RLIMIT_AS) is not active either."""
        unset = sorted(str(k)[:40] for k, v in (rlimits or {}).items() if type(v) is not int)
        if unset and self.process.system.has("resource"):
            line = f"resource limits the system refused: {', '.join(unset)}"
            if line not in self.isolation["inactive"]:
                self.isolation["inactive"] = [*self.isolation["inactive"], line]

    def prestart(self, units: list[dict]) -> None:
        """Start the child and queue `units` (the instructor's setup) without waiting.

        A batch worker prepares the next submission's sandbox this way while it grades the
        current one; `load` then only waits for what is already done. Nothing of a student
        is in it until `load`.
        """
        self._spawn()
        self._preloaded = list(units)
        try:
            self.channel.send({"op": "load", "units": self._preloaded}, (),
                              time.monotonic() + 5)
        except (protocol.ProtocolError, protocol.ChannelTimeout):
            self._kill()
            self._preloaded = None

    def claim(self) -> None:
        """The submission's time budget starts now (for a sandbox started in advance)."""
        self.deadline = time.monotonic() + self.limits.submission_timeout

    def alive(self) -> bool:
        return self.process.alive()

    def _kill(self) -> None:
        self.process.kill()
        if self.channel is not None:
            self.channel.close()
            self.channel = None

    def close(self) -> None:
        """Kill the child (and everything it started) and remove its folder."""
        if self.alive() and self.channel is not None:
            try:
                self.channel.send({"op": "exit"}, deadline=time.monotonic() + 0.5)
            except (protocol.ProtocolError, protocol.ChannelTimeout):
                pass
        self._kill()
        self.process.close()

    # --- messaging
    def _exchange_deadline(self, seconds: float) -> float:
        return min(time.monotonic() + seconds, self.deadline)

    def _send(self, header: dict, buffers, timeout: float, deadline: float | None = None
              ) -> None:
        try:
            self.channel.send(header, buffers, deadline or self._exchange_deadline(timeout))
        except protocol.ChannelTimeout:
            raise self._fail_timeout(timeout) from None
        except protocol.ProtocolError:
            raise self._fail_crash() from None

    def _receive(self, timeout: float, deadline: float | None = None) -> tuple[dict, list]:
        try:
            reply, out = self.channel.receive(deadline or self._exchange_deadline(timeout))
        except protocol.ChannelTimeout:
            raise self._fail_timeout(timeout) from None
        except protocol.ChannelClosed:
            raise self._fail_crash() from None
        except protocol.ProtocolError as exc:
            raise self._fail_protocol(str(exc)) from None
        self._note_events(reply.get("forbidden"))
        return reply, out

    def _request(self, header: dict, buffers=(), timeout: float = 10.0) -> tuple[dict, list]:
        self._send(header, buffers, timeout)
        return self._receive(timeout)

    def _note_events(self, events) -> None:
        """Keep the first MAX_EVENTS distinct events, in constant time per event."""
        if not isinstance(events, list):
            return
        for event in events:
            if not isinstance(event, dict):
                continue
            entry = {k: _short(event.get(k, ""), 200) for k in ("context", "what", "how")}
            key = (entry["context"], entry["what"], entry["how"])
            if key in self._event_keys:
                continue
            if len(self.events) >= MAX_EVENTS:
                self.events_dropped += 1
                continue
            self._event_keys.add(key)
            self.events.append(entry)

    def _fail_timeout(self, timeout: float) -> SandboxFailure:
        self._kill()
        if time.monotonic() >= self.deadline - 1e-3:
            return SandboxFailure("budget", f"ran out of the time budget for this submission "
                                  f"({self.limits.submission_timeout:g} s)")
        return SandboxFailure("timeout", f"did not finish within {timeout:g} s")

    def _fail_crash(self) -> SandboxFailure:
        self._kill()
        return SandboxFailure("crashed", describe_exit(self.process.last_exit))

    def _fail_protocol(self, problem: str) -> SandboxFailure:
        self._kill()
        return SandboxFailure("protocol", f"made the sandbox send a malformed reply "
                              f"({_short(problem, 200)})")

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

    def _unit_reply(self, unit: dict) -> dict:
        """The child's report on one unit; a forged or mismatched one is a protocol failure."""
        reply, _ = self._receive(self.limits.load_timeout)
        if reply.get("unit") != unit["id"] or type(reply.get("ok")) is not bool:
            raise self._fail_protocol("a load reply that does not match the unit sent")
        return {"unit": unit["id"], "ok": reply["ok"], "error":
                _error(reply.get("error")) if not reply["ok"] else None}

    def _send_units(self, units: list[dict], replay: bool = False) -> list[dict]:
        """Execute units in order; stops at the first unit that hangs or kills the child."""
        results = []
        self._send({"op": "load", "units": units}, (), self.limits.load_timeout)
        for unit in units:
            try:
                results.append(self._unit_reply(unit))
            except SandboxFailure as failure:
                if replay:
                    raise
                results.append({"unit": unit["id"], "ok": False, "failure": failure.kind,
                                "error": {"type": "SandboxFailure", "message": failure.message,
                                          "where": None}})
                return results
        done, _ = self._receive(self.limits.load_timeout)
        if done.get("done") is not True:
            raise self._fail_protocol("the end of a load was not marked")
        return results

    # --- public operations
    def load(self, units: list[dict]) -> dict[str, dict]:
        """Run the student's units (dicts with id, file, line, code); returns a result per id.

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
            replies = [self._unit_reply(unit) for unit in preloaded]
            done, _ = self._receive(self.limits.load_timeout)
            if done.get("done") is not True:
                raise self._fail_protocol("the end of a load was not marked")
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
        kinds = reply.get("kinds") if isinstance(reply.get("kinds"), dict) else {}
        return {n: _short(kinds.get(n, "missing"), 80) for n in names}

    def call(self, target: str, args=(), kwargs=None, *, opaque=(), echo=(), handle=None,
             function: str | None = None, getattr_only: bool = False,
             timeout: float | None = None, lending: Lending | None = None) -> CallOutcome:
        """Call `target(*args, **kwargs)` in the child (a method of `handle` if given).

        `opaque`: positions of the returned tuple kept in the child as handles (-1: the whole
        value). `echo`: argument positions sent back after the call (to detect modification).
        `timeout`: seconds for this call (default: the limits' call_timeout). `lending`: the
        reference functions lent to this call (`autograder.sandbox.references`); the time the
        parent spends running them counts against the call's timeout.
        Raises SandboxFailure on timeout, crash, a malformed reply or an exhausted budget.
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
                  "opaque": list(opaque), "echo": list(echo), "getattr": getattr_only,
                  "lend": lending.names if lending is not None else []}
        timeout = timeout or self.limits.call_timeout
        deadline = self._exchange_deadline(timeout)
        self._send(header, buffers, timeout, deadline)
        reply, out = self._receive(timeout, deadline)
        while lending is not None and reply.get("op") == "reference":
            try:
                answer, answer_buffers = lending.answer(reply, out)
            except protocol.ProtocolError as exc:
                raise self._fail_protocol(str(exc)) from None
            if time.monotonic() >= deadline:
                raise self._fail_timeout(timeout)
            self._send(answer, answer_buffers, timeout, deadline)
            reply, out = self._receive(timeout, deadline)
        if type(reply.get("ok")) is not bool:
            raise self._fail_protocol("a call reply without a status")
        if not reply["ok"]:
            return CallOutcome(ok=False, stage=_short(reply.get("stage", "call"), 20),
                               error=_error(reply.get("error")))
        try:
            value = protocol.decode_value(reply.get("value"), out, generation=self.generation)
            after_nodes = reply.get("args_after", [])
            if not isinstance(after_nodes, list) or len(after_nodes) > len(args):
                raise protocol.ProtocolError("malformed arguments after the call")
            after = [protocol.decode_value(node, out, generation=self.generation)
                     for node in after_nodes]
        except protocol.ProtocolError as exc:
            raise self._fail_protocol(str(exc)) from None
        return CallOutcome(ok=True, value=value, args_after=after)
