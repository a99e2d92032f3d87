"""A seccomp filter for the sandboxed child: the system calls student code never needs.

Applied last in `lockdown.lock_down`, after no_new_privs, and inherited by every thread and
process the student starts. It is a second wall behind the lost capabilities and the locked
mounts, so a kernel that allowed one of these would still refuse it:

* the mount family (mount, umount2, pivot_root, chroot, the new mount API) -> EPERM;
* new namespaces: unshare, setns, and clone with any CLONE_NEW* flag -> EPERM; clone3 ->
  ENOSYS, because its flags live in memory a filter cannot read (glibc and Python then fall back
  to clone, whose flags the filter does check);
* terminal injection and takeover: ioctl TIOCSTI, TIOCLINUX, TIOCCONS, TIOCSCTTY -> EPERM
  (the request is compared on its low 32 bits, as the kernel reads it);
* kernel-facing calls a grader never needs: ptrace, process_vm_*, bpf, perf_event_open,
  userfaultfd, io_uring, keyrings, modules, kexec, reboot, swap, acct, quotactl, ... -> EPERM;
* a system call of another ABI (32-bit int 0x80, x32) -> the process is killed.

Built as classic BPF by hand (no libseccomp binding needed); x86_64 and aarch64 only. The
numbers are checked against the kernel headers in tests/test_autograder_sandbox.py.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

__all__ = ["SYSCALLS", "apply_filter", "supported"]

# Syscall numbers per architecture (x86_64: arch/x86/entry/syscalls/syscall_64.tbl; aarch64:
# include/uapi/asm-generic/unistd.h). Numbers from 424 on are shared by every architecture.
_SHARED = {"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
           "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
           "fspick": 433, "clone3": 435, "mount_setattr": 442, "open_tree_attr": 467}
SYSCALLS = {
    "x86_64": dict(_SHARED, ioctl=16, clone=56, ptrace=101, syslog=103, vhangup=153,
                   pivot_root=155, chroot=161, acct=163, mount=165, umount2=166, swapon=167,
                   swapoff=168, reboot=169, sethostname=170, setdomainname=171, iopl=172,
                   ioperm=173, init_module=175, delete_module=176, quotactl=179,
                   lookup_dcookie=212, kexec_load=246, add_key=248, request_key=249,
                   keyctl=250, unshare=272, perf_event_open=298, name_to_handle_at=303,
                   open_by_handle_at=304, setns=308, process_vm_readv=310,
                   process_vm_writev=311, kcmp=312, finit_module=313, kexec_file_load=320,
                   bpf=321, userfaultfd=323),
    "aarch64": dict(_SHARED, ioctl=29, clone=220, ptrace=117, syslog=116, vhangup=58,
                    pivot_root=41, chroot=51, acct=89, mount=40, umount2=39, swapon=224,
                    swapoff=225, reboot=142, sethostname=161, setdomainname=162,
                    init_module=105, delete_module=106, quotactl=60, lookup_dcookie=18,
                    kexec_load=104, add_key=217, request_key=218, keyctl=219, unshare=97,
                    perf_event_open=241, name_to_handle_at=264, open_by_handle_at=265,
                    setns=268, process_vm_readv=270, process_vm_writev=271, kcmp=272,
                    finit_module=273, kexec_file_load=294, bpf=280, userfaultfd=282),
}
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
DENIED = ("mount", "umount2", "pivot_root", "chroot", "open_tree", "open_tree_attr",
          "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
          "unshare", "setns", "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
          "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
          "io_uring_register", "add_key", "request_key", "keyctl", "init_module",
          "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
          "swapon", "swapoff", "acct", "quotactl", "syslog", "vhangup", "sethostname",
          "setdomainname", "lookup_dcookie", "name_to_handle_at", "open_by_handle_at",
          "iopl", "ioperm")
CLONE_NEW_FLAGS = (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000
                   | 0x20000000 | 0x40000000 | 0x00000080)  # NEWNS CGROUP UTS IPC USER PID NET TIME
TERMINAL_IOCTLS = {"TIOCSTI": 0x5412, "TIOCLINUX": 0x541C, "TIOCCONS": 0x541D,
                   "TIOCSCTTY": 0x540E}

_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _KILL_PROCESS = 0x7FFF0000, 0x80000000
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_OFFSET_NR, _OFFSET_ARCH = 0, 4


def _arg_low(i: int) -> int:
    """Offset of the low 32 bits of syscall argument i in struct seccomp_data (little-endian)."""
    return 16 + 8 * i


def _errno(code: int) -> int:
    return 0x00050000 | code


def supported() -> str | None:
    """The architecture name if this module has a filter for it, else None."""
    machine = platform.machine()
    return machine if machine in SYSCALLS else None


def build_program(machine: str) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) instructions."""
    nr = SYSCALLS[machine]
    eperm = _errno(errno.EPERM)
    prog = [(_LD_W_ABS, 0, 0, _OFFSET_ARCH), (_JEQ, 1, 0, _AUDIT_ARCH[machine]),
            (_RET, 0, 0, _KILL_PROCESS), (_LD_W_ABS, 0, 0, _OFFSET_NR)]
    if machine == "x86_64":      # x32 system calls carry bit 30
        prog += [(_JGE, 0, 1, 0x40000000), (_RET, 0, 0, _KILL_PROCESS)]
    for name in DENIED:
        prog += [(_JEQ, 0, 1, nr[name]), (_RET, 0, 0, eperm)]
    prog += [(_JEQ, 0, 1, nr["clone3"]), (_RET, 0, 0, _errno(errno.ENOSYS))]
    # clone: refuse any CLONE_NEW* flag in its first argument.
    prog += [(_JEQ, 0, 4, nr["clone"]), (_LD_W_ABS, 0, 0, _arg_low(0)),
             (_JSET, 0, 1, CLONE_NEW_FLAGS), (_RET, 0, 0, eperm), (_RET, 0, 0, _ALLOW)]
    # ioctl: refuse the terminal requests in its second argument.
    block = [(_LD_W_ABS, 0, 0, _arg_low(1))]
    for request in TERMINAL_IOCTLS.values():
        block += [(_JEQ, 0, 1, request), (_RET, 0, 0, eperm)]
    block.append((_RET, 0, 0, _ALLOW))
    prog += [(_JEQ, 0, len(block), nr["ioctl"]), *block]
    prog.append((_RET, 0, 0, _ALLOW))
    return prog


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def apply_filter() -> str:
    """Install the filter on this process (no_new_privs must be set); returns a description."""
    machine = supported()
    if machine is None:
        return f"none (no filter for {platform.machine()})"
    prog = build_program(machine)
    raw = b"".join(struct.pack("=HBBI", *ins) for ins in prog)
    buffer = ctypes.create_string_buffer(raw, len(raw))
    fprog = _SockFprog(len(prog), ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        code = ctypes.get_errno()
        return f"none (the kernel refused the filter: {errno.errorcode.get(code, code)})"
    return (f"filter of {len(prog)} instructions: {len(DENIED)} system calls (mount, unshare, "
            f"setns, ...), CLONE_NEW* flags and the terminal ioctls "
            f"({', '.join(TERMINAL_IOCTLS)}) denied")
