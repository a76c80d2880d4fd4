"""The sandbox's ``namespaces`` wall: a user namespace (no root needed) holding new mount, PID, network,
IPC and UTS namespaces, and a root file system of its own. Imported by sandbox_launcher.py (stdlib only).

What the program sees: a read-only tmpfs as ``/`` holding read-only, nosuid bind mounts of what Python
needs (the interpreter's prefix, /usr and the /lib directories, the dynamic linker's cache, a few
/dev nodes) and one writable tmpfs, ``/sandbox``, its working directory. No /proc, no /home, no
/tmp, no project tree, no data, no /etc/shadow: the host's files are not in its world. The old root is
unmounted (pivot_root), so no path leads back to it. The namespace's root user is the caller's own
uid (a fresh uid when the launcher is root), and before Python starts every capability is dropped,
with the securebits that keep uid 0 from regaining them at exec: the mounts cannot be undone, and
a setuid binary gains nothing (nosuid, no_new_privs, and its owner is not mapped in the namespace).
"""

import ctypes
import os
import stat

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
MS_NOATIME, MS_NODIRATIME, MS_REC, MS_PRIVATE, MS_RELATIME = 1024, 2048, 16384, 1 << 18, 1 << 21
MNT_DETACH = 2
# statvfs flags of a mount that a user namespace may not clear when it remounts it (the kernel locks them)
LOCKED_FLAGS = {os.ST_NOSUID: MS_NOSUID, os.ST_NODEV: MS_NODEV, os.ST_NOEXEC: MS_NOEXEC,
                os.ST_NOATIME: MS_NOATIME, os.ST_NODIRATIME: MS_NODIRATIME, os.ST_RELATIME: MS_RELATIME}  # fmt: skip
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime")
DEVICES = ("null", "zero", "full", "random", "urandom")
WORKDIR = "/sandbox"
PR_SET_SECUREBITS, PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 28, 24, 47, 4
# noroot, no_setuid_fixup, no_cap_ambient_raise: each set and locked; keep_caps locked off
SECUREBITS_LOCKED_NOROOT = 0xEF
_libc = ctypes.CDLL(None, use_errno=True)


def bind_sources(prefixes: list[str]) -> list[str]:
    """The host paths to show the program (read-only): system directories and files, and ``prefixes``
    (the interpreter's installation), without symlinks and without paths inside another of them."""
    paths = [p for p in (*SYSTEM_DIRS, *SYSTEM_FILES, *prefixes) if os.path.exists(p) and not os.path.islink(p)]
    return [p for i, p in enumerate(paths) if not any(p.startswith(q + "/") or p == q for q in paths[:i])]


def open_sources(prefixes: list[str]) -> list[tuple[str, int]]:
    """(path, O_PATH descriptor) of bind_sources, opened in the new mount namespace (a bind takes its
    source from the caller's namespace) before the new root hides them."""
    return [(p, os.open(p, os.O_PATH | os.O_CLOEXEC)) for p in bind_sources(prefixes)]


def enter(uid: int, gid: int) -> None:
    """Unshare every namespace and map the namespace's root to ``uid``/``gid`` (the caller's own ids)."""
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS),
           "unshare")  # fmt: skip
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as handle:
            handle.write(text)
    _check(_libc.sethostname(b"sandbox", 7), "sethostname")  # the host's name stays the host's


def build_root(sources: list[tuple[str, int]], new_root: str, files: dict[str, str], work_mb: int) -> None:
    """Make a tmpfs mounted on ``new_root`` (any existing directory) the root of this mount namespace;
    ``files``: absolute path in the new root -> text."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done from here on reaches the host
    _mount("tmpfs", new_root, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=0755")
    for link in SYSTEM_DIRS:  # /lib -> usr/lib on merged-/usr systems
        if os.path.islink(link):
            os.symlink(os.readlink(link), new_root + link)
    for path, descriptor in sources:
        _bind(f"/proc/self/fd/{descriptor}", new_root + path, os.path.isdir(path), MS_RDONLY | MS_NOSUID | MS_NODEV)
        os.close(descriptor)
    os.makedirs(new_root + "/dev", exist_ok=True)
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}") and stat.S_ISCHR(os.stat(f"/dev/{name}").st_mode):
            _bind(f"/dev/{name}", f"{new_root}/dev/{name}", False, MS_NOSUID)
    os.makedirs(new_root + WORKDIR)
    _mount("tmpfs", new_root + WORKDIR, "tmpfs", MS_NOSUID | MS_NODEV, f"size={work_mb}m,mode=0700")
    for path, text in files.items():  # read-only for the program, like the rest of the root
        os.makedirs(os.path.dirname(new_root + path), exist_ok=True)
        with open(new_root + path, "w") as handle:
            handle.write(text)
    _mount(None, new_root, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir(new_root)
    number = PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise OSError(f"pivot_root: unknown system call number on {os.uname().machine}")
    _check(_libc.syscall(number, b".", b"."), "pivot_root")  # the old root now lies under the new one ...
    _check(_libc.umount2(b".", MNT_DETACH), "umount old root")  # ... and is gone from this namespace
    os.chdir(WORKDIR)


def drop_capabilities() -> None:
    """No capability now or after exec, even as the namespace's uid 0 (securebits, bounding set, ambient)."""
    _check(_libc.prctl(PR_SET_SECUREBITS, SECUREBITS_LOCKED_NOROOT, 0, 0, 0), "securebits")
    _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient capabilities")
    cap = 0
    while _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1  # stops at the first number past the kernel's last capability (EINVAL)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable: all empty (two 32-bit words)
    _check(_libc.capset(header, data), "capset")


def _bind(source: str, target: str, is_dir: bool, flags: int) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if is_dir:
        os.makedirs(target, exist_ok=True)
    else:
        open(target, "a").close()
    _mount(source, target, None, MS_BIND | MS_REC)
    locked = sum(ms for st, ms in LOCKED_FLAGS.items() if os.statvfs(target).f_flag & st)
    _mount(None, target, None, MS_REMOUNT | MS_BIND | flags | locked)


def _mount(source, target: str, fstype, flags: int, data: str | None = None) -> None:
    encode = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(_libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)), f"mount {target}")


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")
