"""How the sandboxed child locks itself in, before any student code exists in it.

The parent starts the child under `unshare` with new PID, mount, network, IPC and UTS
namespaces (plus a user namespace when the grader is not root), in a session of its own with
no controlling terminal. `lock_down` then, still running only our code:

1. builds a new root by ALLOW-LIST: an empty tmpfs into which the parent's `layout` binds,
   read-only, exactly what the interpreter needs (system libraries, the Python prefix and
   site-packages, `course_lib`, the parts of `autograder` the child runs; never the hidden
   suites, the kit's .git, tests or sources, a course, or any result), a fresh /proc for its
   own PID namespace, a minimal /dev (null, zero, full, random, urandom; no tty, pts or fuse),
   a tiny /dev/shm and a private /tmp; then pivot_root into it and detaches the old root;
2. sets resource limits (address space, CPU, file size, processes, open files, no core);
3. gives up every capability with mounts locked: as root it drops the bounding set and
   switches to an unprivileged uid of its own; in a user namespace it enters a nested user
   namespace that maps a non-zero uid (so every mount becomes locked to it) and clears its
   capability sets;
4. sets no_new_privs and installs the seccomp filter (`autograder.sandbox.seccomp`).

`lock_down` returns what was actually achieved, read back from /proc/self/status; every
result records it. Off Linux (`cfg["kernel_calls"]` false: macOS, Windows, or simulated by
`autograder.sandbox.system`'s test hook) steps 3 and 4 do not exist and are skipped, and
step 2 is skipped without `resource`; the notes say so.
"""

from __future__ import annotations

import ctypes
import os
import platform

try:
    import resource
except ImportError:             # no POSIX resource limits (Windows): the report says so
    resource = None

from autograder.sandbox import seccomp

__all__ = ["lock_down"]

_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_NOATIME, _MS_NODIRATIME = 32, 1024, 2048
_MS_BIND, _MS_REC, _MS_PRIVATE, _MS_RELATIME = 4096, 16384, 1 << 18, 1 << 21
_MNT_DETACH = 2
_CLONE_NEWNS, _CLONE_NEWUSER = 0x00020000, 0x10000000
_PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS, _PR_CAP_AMBIENT = 24, 38, 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_MOUNT_FLAGS = {"ro": _MS_RDONLY, "nosuid": _MS_NOSUID, "nodev": _MS_NODEV,
                "noexec": _MS_NOEXEC, "noatime": _MS_NOATIME, "nodiratime": _MS_NODIRATIME,
                "relatime": _MS_RELATIME}
DEVICES = ("null", "zero", "full", "random", "urandom")
INNER_UID = 1000            # the student's uid inside the nested user namespace


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _enc(text):
    return text.encode() if isinstance(text, str) else text


def _mount(source, target, fstype, flags, data=None) -> None:
    _check(_libc().mount(_enc(source), _enc(target), _enc(fstype), ctypes.c_ulong(flags),
                         _enc(data)), f"mount {target}")


def _mount_points() -> list[tuple[str, int]]:
    """(mount point, flags a remount must keep) from /proc/self/mountinfo."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            keep = 0
            for option in fields[5].split(","):
                keep |= _MOUNT_FLAGS.get(option, 0)
            points.append((fields[4].encode().decode("unicode_escape"), keep))
    return points


def _make_point(path: str, like: str) -> None:
    """An empty directory or file at `path` to mount `like` on."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    if os.path.isdir(like):
        os.makedirs(path, mode=0o755, exist_ok=True)
    elif not os.path.exists(path):
        with open(path, "w"):
            pass


# ----------------------------------------------------------------------------- the new root

def _build_root(cfg: dict, notes: dict) -> None:
    new = cfg["root"].rstrip("/")
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    _mount("tmpfs", new, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=4m,mode=0755")
    # /tmp first: a kit that lives under /tmp is then bound on top of the private /tmp.
    os.makedirs(new + "/proc", mode=0o555)
    try:
        _mount("proc", new + "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    except OSError:
        _mount("/proc", new + "/proc", None, _MS_BIND | _MS_REC)
    _build_dev(new + "/dev")
    os.makedirs(new + "/tmp", mode=0o755)
    _mount("tmpfs", new + "/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV,
           f"size={cfg['tmpfs_mb']}m,mode=0755")
    os.mkdir(new + "/tmp/work", 0o700)
    if cfg.get("uid") is not None:
        os.chown(new + "/tmp/work", cfg["uid"], cfg["uid"])
    for op, path, other in cfg["layout"]:
        inside = new + path
        if op == "bind":                     # other: the host path to show at `path`
            _make_point(inside, other)
            _mount(other, inside, None, _MS_BIND | _MS_REC)
            # Read-only at once, so nothing made later for the root can land on the host.
            _remount_read_only(inside)
        elif op == "empty":                  # an empty directory over what a bind shows
            os.makedirs(inside, mode=0o755, exist_ok=True)
            _mount("tmpfs", inside, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=64k,mode=0755")
        elif op == "link":                   # other: the symlink's target
            os.makedirs(os.path.dirname(inside), mode=0o755, exist_ok=True)
            os.symlink(other, inside)
    _pivot_into(new)
    failed = _read_only_everywhere()
    notes["filesystem"] = (
        "allow-list root, read-only: " + cfg["layout_summary"] + "; writable: /tmp (private "
        f"{cfg['tmpfs_mb']} MB), /dev/shm (1 MB)" + (f"; could not remount {failed}"
                                                     if failed else ""))
    notes["devices"] = "/dev: " + ", ".join(DEVICES) + " (no tty, pts or fuse)"


def _remount_read_only(point: str) -> None:
    keep = [flags for where, flags in _mount_points() if where == point][-1]
    _mount(None, point, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | keep)


def _build_dev(dev: str) -> None:
    os.makedirs(dev, mode=0o755)
    _mount("tmpfs", dev, "tmpfs", _MS_NOSUID | _MS_NOEXEC, "size=64k,mode=0755")
    for name in DEVICES:
        _make_point(f"{dev}/{name}", f"/dev/{name}")
        _mount(f"/dev/{name}", f"{dev}/{name}", None, _MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")
    os.makedirs(f"{dev}/shm", mode=0o1777)
    _mount("tmpfs", f"{dev}/shm", "tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC,
           "size=1m,mode=1777")


def _pivot_into(new: str) -> None:
    """pivot_root(".", ".") then detach the old root stacked on top (pivot_root(2), NOTES)."""
    libc = _libc()
    number = seccomp.SYSCALLS.get(platform.machine(), {}).get("pivot_root")
    if number is None:
        raise OSError(0, f"pivot_root: unknown system call number on {platform.machine()}")
    os.chdir(new)
    _check(libc.syscall(ctypes.c_long(number), b".", b"."), "pivot_root")
    _check(libc.umount2(b".", _MNT_DETACH), "umount the old root")
    os.chdir("/")


def _read_only_everywhere() -> list[str]:
    """Remount every mount read-only except /proc, the devices, /dev/shm and /tmp."""
    failed = []
    for point, keep in _mount_points():
        if point in ("/tmp", "/dev/shm") or point.startswith("/proc") or \
                point.startswith("/dev/") and point.removeprefix("/dev/") in DEVICES:
            continue
        try:
            _mount(None, point, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | keep)
        except OSError:
            failed.append(point)
    return failed


# ----------------------------------------------------------------------------- privileges

def _set_limits(cfg: dict) -> dict:
    limits = {"RLIMIT_AS": cfg["memory_mb"] * 1024 * 1024,
              "RLIMIT_CPU": cfg["cpu_seconds"],
              "RLIMIT_FSIZE": cfg["file_mb"] * 1024 * 1024,
              "RLIMIT_NPROC": cfg["nproc"],
              "RLIMIT_NOFILE": 256,
              "RLIMIT_CORE": 0}
    if resource is None:
        return dict.fromkeys(limits, "not set (this system has no resource limits)")
    applied = {}
    for name, value in limits.items():
        which = getattr(resource, name)
        _, hard = resource.getrlimit(which)
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
    return applied


def _drop_bounding_set() -> None:
    libc = _libc()
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)


def _clear_capabilities() -> None:
    """capset(2) with empty effective, permitted and inheritable sets (version 3 ABI)."""
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc().capset(ctypes.byref(header), ctypes.byref(data)), "capset")


def _become_unprivileged_root_mode(uid: int) -> str:
    _drop_bounding_set()
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)       # from root to non-root: the kernel clears every capability
    # The uid itself differs per grading process; the result says only what kind it is.
    return "an unprivileged uid of its own (so RLIMIT_NPROC applies), no capabilities"


def _become_unprivileged_userns() -> str:
    """Enter a nested user namespace mapping uid/gid INNER_UID to our own, then drop all
    capabilities. The mounts, made in the outer namespace, are locked in the inner one: they
    cannot be unmounted, moved or made writable (mount_namespaces(7), "locked mounts")."""
    _check(_libc().unshare(_CLONE_NEWUSER | _CLONE_NEWNS), "unshare(CLONE_NEWUSER)")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{INNER_UID} 0 1"),
                       ("gid_map", f"{INNER_UID} 0 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    _drop_bounding_set()
    _clear_capabilities()
    return (f"uid {INNER_UID} in a nested user namespace (mounts locked), the grader's own "
            f"user outside, no capabilities")


def _status() -> dict[str, str]:
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            values[key] = value.strip()
    return values


def _achieved(notes: dict) -> None:
    """Read back what the kernel says this process now has."""
    try:
        status = _status()
    except OSError:
        return
    caps = {k: status.get(k, "?") for k in ("CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb")}
    notes["capabilities"] = "none" if all(int(v, 16) == 0 for v in caps.values()
                                          if v != "?") else \
        ", ".join(f"{k} {v}" for k, v in caps.items())
    notes["no_new_privs"] = status.get("NoNewPrivs") == "1"
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        terminal = "no controlling terminal"
    else:
        os.close(fd)
        terminal = "HAS A CONTROLLING TERMINAL"
    notes["terminal"] = terminal


# ----------------------------------------------------------------------------- entry point

def lock_down(cfg: dict) -> dict:
    """Apply the isolation described in the module docstring; returns what was achieved."""
    notes: dict = {"namespaces": cfg.get("namespaces", "none")}
    mode = cfg.get("mode", "none")
    workdir = cfg.get("workdir") or "/tmp/work"
    if mode in ("root", "userns"):
        try:
            _build_root(cfg, notes)
            workdir = "/tmp/work"
        except OSError as exc:
            # Refuse to run student code with a half-built root: the parent reports it.
            raise SystemExit(f"sandbox: could not build the allow-list root ({exc})") from None
        try:
            _libc().sethostname(b"sandbox", 7)
        except OSError:
            pass
    else:
        notes["filesystem"] = "not isolated (no mount namespace)"
    notes["rlimits"] = _set_limits(cfg)
    if not cfg.get("kernel_calls", True):
        _without_kernel_calls(notes)
    else:
        _drop_privileges(cfg, mode, notes)
    os.chdir(workdir)
    os.environ["HOME"] = os.environ["TMPDIR"] = workdir
    os.environ["MPLCONFIGDIR"] = os.path.join(workdir, ".matplotlib")
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(workdir, ".numba")
    notes["workdir"] = workdir
    return notes


def _without_kernel_calls(notes: dict) -> None:
    """macOS, Windows: no capabilities to drop, no prctl, no seccomp."""
    notes["user"] = "the user who ran the check (this system has no namespaces)"
    notes["no_new_privs"] = False
    notes["seccomp"] = "none (not available on this system)"
    notes["capabilities"] = "not dropped (no Linux capabilities on this system)"


def _drop_privileges(cfg: dict, mode: str, notes: dict) -> None:
    """Steps 3 and 4 of the module docstring (Linux)."""
    if mode == "root" and cfg.get("uid") is not None:
        notes["user"] = _become_unprivileged_root_mode(cfg["uid"])
    elif mode == "userns":
        try:
            notes["user"] = _become_unprivileged_userns()
        except OSError as exc:
            raise SystemExit(f"sandbox: could not drop privileges ({exc})") from None
    elif cfg.get("uid") is not None:
        notes["user"] = _become_unprivileged_root_mode(cfg["uid"])
    elif os.geteuid() == 0:
        _drop_bounding_set()
        _clear_capabilities()
        notes["user"] = ("uid 0 without capabilities: no namespaces, and the interpreter is "
                         "not reachable by another user")
    else:
        notes["user"] = "the grader's own user (no namespaces)"
    _check(_libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    notes["seccomp"] = seccomp.apply_filter()
    _achieved(notes)
