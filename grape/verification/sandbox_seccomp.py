"""A seccomp filter for the sandbox: system calls that untrusted test code has no use for fail with EPERM.

Loaded in the sandboxed process just before it starts Python (after ``PR_SET_NO_NEW_PRIVS``), so that
the filter holds for the program and every process it starts; no filter can be removed once loaded.
It narrows what the kernel offers (debugging other processes, kernel keyrings, BPF, io_uring, new
namespaces and mounts, network sockets, signals to processes that are not the sandbox's own) and so
backs up the namespaces, or is the only kernel wall in ``guard`` mode. It uses libseccomp through
ctypes (stdlib only: the launcher runs in isolated mode); where libseccomp is missing, there is no filter
and the sandbox's status says so. Imported by sandbox_launcher.py from its own directory.
"""

import ctypes
import errno
import functools
import os

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_NE, SCMP_CMP_MASKED_EQ = 1, 7
AF_UNIX = 1
CLONE_NAMESPACES = {  # flags of clone(2) that make a new namespace
    "CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000, "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}  # fmt: skip
DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_open", "pidfd_getfd", "pidfd_send_signal",
    "kcmp", "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "mount", "umount2", "pivot_root", "chroot",
    "unshare", "setns", "move_mount", "open_tree", "fsopen", "fsmount", "fspick", "mount_setattr",
    "open_by_handle_at", "name_to_handle_at", "fanotify_init", "quotactl", "acct", "syslog",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
    "swapon", "swapoff", "vhangup", "personality", "uselib", "lookup_dcookie", "nfsservctl",
)  # fmt: skip
# Signals: to the caller's own process only (its pid as the first argument), never to anyone else.
SIGNALS = ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")


class ArgCompare(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]  # fmt: skip


@functools.cache
def libseccomp():
    """libseccomp through ctypes, or None where it is not installed."""
    try:  # the soname first: find_library runs ldconfig, which costs more than the rest of a sandbox start
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError:
        from ctypes.util import find_library  # only here: it pulls in half the standard library

        try:
            lib = ctypes.CDLL(find_library("seccomp") or "libseccomp.so", use_errno=True)
        except OSError:
            return None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(ArgCompare)]  # fmt: skip
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


def install_filter(own_pid: int, signals_anywhere: bool) -> None:
    """Load the filter into the calling process (``PR_SET_NO_NEW_PRIVS`` must be set). ``own_pid``: the
    pid that signals may target; ``signals_anywhere``: skip that rule (a PID namespace contains them)."""
    lib, context = _filter(own_pid, signals_anywhere)
    try:
        if lib.seccomp_load(context) != 0:
            raise OSError(errno.EINVAL, "seccomp_load failed")
    finally:
        lib.seccomp_release(context)


def exported_filter(signals_anywhere: bool) -> int:
    """The filter as a BPF program in an inheritable memfd (for ``bwrap --seccomp FD``)."""
    lib, context = _filter(0, signals_anywhere)
    try:
        descriptor = os.memfd_create("grape-seccomp", 0)
        if lib.seccomp_export_bpf(context, descriptor) != 0:
            raise OSError(errno.EINVAL, "seccomp_export_bpf failed")
        os.lseek(descriptor, 0, os.SEEK_SET)
        os.set_inheritable(descriptor, True)
        return descriptor
    finally:
        lib.seccomp_release(context)


def _filter(own_pid: int, signals_anywhere: bool):
    lib = libseccomp()
    if lib is None:
        raise OSError(errno.ENOSYS, "libseccomp is not installed")
    context = lib.seccomp_init(SCMP_ACT_ALLOW)
    if not context:
        raise OSError(errno.ENOMEM, "seccomp_init failed")
    deny = _errno_action(errno.EPERM)
    for name in DENIED:
        _add(lib, context, deny, name)
    _add(lib, context, _errno_action(errno.ENOSYS), "clone3")  # its flags are out of reach: libc falls back to clone
    for flag in CLONE_NAMESPACES.values():
        _add(lib, context, deny, "clone", ArgCompare(0, SCMP_CMP_MASKED_EQ, flag, flag))
    _add(lib, context, deny, "socket", ArgCompare(0, SCMP_CMP_NE, AF_UNIX, 0))
    if not signals_anywhere:
        for name in SIGNALS:
            _add(lib, context, deny, name, ArgCompare(0, SCMP_CMP_NE, own_pid, 0))
        _add(lib, context, deny, "tkill")  # takes a thread id, which may belong to anyone
    return lib, context


def _errno_action(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


def _add(lib, context, action: int, name: str, *compare: ArgCompare) -> None:
    number = lib.seccomp_syscall_resolve_name(name.encode())
    if number < 0:
        return  # not a system call on this architecture (e.g. nfsservctl is long gone)
    array = (ArgCompare * len(compare))(*compare) if compare else None
    if lib.seccomp_rule_add_array(context, action, number, len(compare), array) != 0:
        raise OSError(errno.EINVAL, f"seccomp: cannot add the rule for {name}")
