"""User-facing errors: the CLI prints these as one line, without a traceback."""

from __future__ import annotations

import errno
from pathlib import Path


class GrapeError(Exception):
    """A mistake in the user's input or settings; the message says what, where and what to do."""


class InputError(GrapeError):
    """A bad input row or file. The message names the file, the row and the field."""

    def __init__(self, file: str, row: int | None, field: str | None, reason: str):
        self.file, self.row, self.field, self.reason = file, row, field, reason
        where = file if row is None else f"{file}, row {row}"
        if field:
            where += f", field '{field}'"
        super().__init__(f"{where}: {reason}")


# The file system's refusals that say something about the user's machine, not about grape: a full
# disk, a read-only mount, a file where a folder should be. The CLI reports these in one line.
FILE_SYSTEM_REASONS = {
    errno.ENOSPC: "no space left on the device (the disk is full): free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is exceeded: free some space or write elsewhere",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.EACCES: "permission denied: write elsewhere or change the folder's permissions",
    errno.EPERM: "operation not permitted: write elsewhere or change the folder's permissions",
    errno.ENOTDIR: "a part of its path is a file, not a folder",
    errno.EISDIR: "it is a folder, not a file",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EIO: "input/output error (a failing disk or a lost network mount?)",
}
FILE_SYSTEM_ERRNOS = frozenset({*FILE_SYSTEM_REASONS, errno.EEXIST})  # mkdir: EEXIST when a file has the name


def file_system_error(path: str | Path, exc: OSError, doing: str = "write") -> GrapeError:
    """The one-line error for an OSError that the file system raised while grape used ``path``."""
    reason = FILE_SYSTEM_REASONS.get(exc.errno or 0) or exc.strerror or str(exc)
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        blocker = _file_in_the_way(Path(path))
        if blocker is not None:
            reason = f"{blocker} is a file, not a folder"
    return GrapeError(f"cannot {doing} {path}: {reason}")


def _file_in_the_way(path: Path) -> Path | None:
    """The first folder on the way to ``path`` (or ``path``, a folder to create) that is not a folder."""
    for folder in [*reversed(path.parents), path]:
        if folder.exists() and not folder.is_dir():
            return folder
    return None
