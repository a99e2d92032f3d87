"""What this operating system lets the sandbox use, and what a result says when it lacked some.

The full sandbox is Linux's: POSIX resource limits (`resource`), the child in a session and
process group of its own that is killed as a whole, pipes inherited by file descriptor
(`pass_fds`), `os.fork` (the PID namespace's reaper), namespaces and a seccomp filter with
no_new_privs. macOS has the POSIX parts but no namespaces or seccomp; Windows has none of them.
Without them the sandbox still starts, for a *self-check* (`autograder check`, `check()` in a
notebook): the child talks over its stdin and stdout when file descriptors cannot be passed,
the time limits are enforced by killing the child (and its process tree where the system
allows), and the memory, CPU, file and process limits are skipped where `resource` is absent.
Grading for marks refuses such a *degraded* sandbox unless the instructor opts in
(`autograder grade --allow-degraded-sandbox`).

`REQUIRED_FOR_GRADING` are the features whose absence makes a sandbox degraded. Namespaces
are not among them: a Linux container without namespaces is a documented grading mode of its
own (see the README's threat model), with rlimits, a session, no_new_privs and seccomp.

Test hook: `AUTOGRADER_SIMULATE_MISSING=resource,process_groups,pass_fds,fork,namespaces,seccomp`
(or `all`) makes this Linux machine behave as a system without those features: this process
stops using them and deletes `os.killpg`, `os.setsid` and `os.fork` so that nothing can use
them by mistake, and the child is told to make `import resource` fail and to delete the same
functions before it locks itself in. It is read only from the trusted parent's own
environment (student code runs in a child whose environment the parent builds), and grading
for marks refuses the degraded sandbox it simulates unless the instructor opts in.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass

__all__ = ["FEATURES", "REQUIRED_FOR_GRADING", "SIMULATE_VARIABLE", "System", "current",
           "apply_in_child", "DegradedSandboxRefused"]

FEATURES = ("resource", "process_groups", "pass_fds", "fork", "namespaces", "seccomp")
REQUIRED_FOR_GRADING = ("resource", "process_groups", "seccomp")
SIMULATE_VARIABLE = "AUTOGRADER_SIMULATE_MISSING"
_HIDDEN = {"process_groups": ("killpg", "setsid", "setpgid", "getpgid"), "fork": ("fork",)}


class DegradedSandboxRefused(RuntimeError):
    """Grading for marks was asked to run in a degraded sandbox without the opt-in."""


@dataclass(frozen=True)
class System:
    """The sandbox features this system lacks (`missing`), and which of them are simulated."""

    missing: frozenset[str]
    simulated: frozenset[str]
    name: str                       # 'Linux', 'Darwin', 'Windows', ... (platform.system())

    @property
    def degraded(self) -> bool:
        """True when grading for marks would lack a protection it relies on."""
        return any(f in self.missing for f in REQUIRED_FOR_GRADING)

    def has(self, feature: str) -> bool:
        return feature not in self.missing

    def kernel_calls(self) -> bool:
        """Linux's prctl, capset and seccomp can be used (not on macOS or Windows)."""
        return self.has("seccomp")

    def refusal(self) -> str:
        """Why grading for marks refuses this system (empty when it does not)."""
        lacking = [f for f in REQUIRED_FOR_GRADING if f in self.missing]
        if not lacking:
            return ""
        simulated = (f" (simulated by {SIMULATE_VARIABLE})"
                     if set(lacking) <= self.simulated else "")
        return (f"refusing to grade for marks: the sandbox on this system ({self.name}) lacks "
                f"{', '.join(_PLAIN[f] for f in lacking)}{simulated}. Grade on a Linux machine "
                "that has them, or, for trusted code only, pass --allow-degraded-sandbox "
                "(every result is then marked degraded).")

    def inactive(self, namespaces: bool) -> list[str]:
        """The protections that were not active, one plain sentence each."""
        lines = []
        if not namespaces:
            lines.append("no namespaces: the code ran with the file access and the network of "
                         "the user who started it (no private file system, no network "
                         "isolation)")
        if not self.has("resource"):
            lines.append("no resource limits: memory, CPU time, file size and the number of "
                         "processes were not limited")
        if not self.has("process_groups"):
            lines.append("no process groups: a time-out kills the sandbox process" + (
                " and its process tree (taskkill)" if os.name == "nt" else
                ", not processes it started"))
        if not self.has("seccomp"):
            lines.append("no seccomp filter and no no_new_privs: system calls were not "
                         "filtered")
        return lines

    def active(self, namespaces: bool) -> list[str]:
        """The protections that were active, one plain sentence each."""
        lines = ["a separate process with a minimal environment and a scratch folder",
                 "time limits per call and per submission, enforced by killing the process",
                 "the import guard (the library's own versions are refused)"]
        if namespaces:
            lines.append("namespaces: a read-only allow-list file system, no network")
        if self.has("resource"):
            lines.append("resource limits: memory, CPU time, file size, processes")
        if self.has("process_groups"):
            lines.append("a session of its own, killed as a whole")
        if self.has("seccomp"):
            lines.append("no_new_privs and a seccomp filter")
        return lines


_PLAIN = {"resource": "resource limits (the resource module)",
          "process_groups": "POSIX process groups (os.killpg, os.setsid)",
          "seccomp": "a seccomp filter and no_new_privs (Linux)"}


def _simulated() -> frozenset[str]:
    text = os.environ.get(SIMULATE_VARIABLE, "").strip()
    if not text:
        return frozenset()
    names = {part.strip() for part in text.split(",") if part.strip()}
    if "all" in names:
        return frozenset(FEATURES)
    unknown = names - set(FEATURES)
    if unknown:
        raise ValueError(f"{SIMULATE_VARIABLE} must name some of {', '.join(FEATURES)} (or "
                         f"all); got {', '.join(sorted(unknown))}")
    return frozenset(names)


def _seccomp_possible() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    from autograder.sandbox import seccomp
    return seccomp.supported() is not None


@functools.lru_cache(maxsize=1)
def current() -> System:
    """This system's features, probed once per process (with the test hook applied)."""
    import platform
    simulated = _simulated()
    try:
        import resource  # noqa: F401
        has_resource = True
    except ImportError:
        has_resource = False
    present = {"resource": has_resource,
               "process_groups": all(hasattr(os, n) for n in ("killpg", "setsid")),
               "pass_fds": os.name == "posix",     # Windows: only std handles
               "fork": hasattr(os, "fork"),
               "namespaces": sys.platform.startswith("linux"),
               "seccomp": _seccomp_possible()}
    missing = {f for f, ok in present.items() if not ok} | simulated
    for feature in simulated:
        for name in _HIDDEN.get(feature, ()):
            if hasattr(os, name):
                delattr(os, name)
    return System(missing=frozenset(missing), simulated=simulated, name=platform.system())


def apply_in_child(simulated) -> None:
    """In the child, before anything else is imported: make the simulated features absent."""
    simulated = set(simulated)
    if "resource" in simulated:
        sys.modules["resource"] = None          # `import resource` now raises ImportError
    for feature in simulated:
        for name in _HIDDEN.get(feature, ()):
            if hasattr(os, name):
                delattr(os, name)
