"""The store's low-level file operations, behind one seam that tests can fault.

Every write, sync, truncate and rename of [`FileStore`][weixin_trio.FileStore] goes through
`ops`, so a test can replace one of its functions (``monkeypatch.setattr(ops,
"write", ...)``) and inject a short write, ``ENOSPC`` or ``EIO`` at any point.

The helpers here implement the one rule of the store's writes: a write is complete, or
it failed (and left nothing behind that a later load could misread).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["TRANSIENT_ERRNOS", "FileOps", "fsync_dir", "ops", "write_all", "write_private"]

#: ``errno`` values of a condition that can pass (a full disk, a flaky device).
TRANSIENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN, errno.EWOULDBLOCK}
)


class FileOps:
    """The system calls the store writes with (each one a plain ``os`` function)."""

    def write(self, fd: int, data: bytes | memoryview) -> int:
        """``os.write``: may write fewer bytes than given."""
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        """``os.fsync``."""
        os.fsync(fd)

    def fdatasync(self, fd: int) -> None:
        """``os.fdatasync`` (``fsync`` where the platform has no ``fdatasync``)."""
        sync = getattr(os, "fdatasync", os.fsync)
        sync(fd)

    def ftruncate(self, fd: int, length: int) -> None:
        """``os.ftruncate``."""
        os.ftruncate(fd, length)

    def replace(self, src: Path, dst: Path) -> None:
        """``os.replace``."""
        os.replace(src, dst)


#: The store's file operations; tests patch its attributes to inject faults.
ops = FileOps()


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (looping over short writes) or raise.

    Raises:
        OSError: A write failed (some bytes may have been written; the caller undoes
            them) or made no progress.
    """
    view = memoryview(data)
    while view:
        written = ops.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "write made no progress")
        view = view[written:]


def fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` (creations, renames) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        ops.fsync(fd)
    finally:
        os.close(fd)


def write_private(directory: Path, name: str, body: bytes, *, fsync_directory: bool = True) -> None:
    """Atomically replace ``directory/name`` with ``body`` (mode 0600, durable).

    A temp file is written completely and fsynced, renamed over the target, and the
    directory is fsynced (unless ``fsync_directory`` is false: the caller does it). On
    failure the temp file is removed and the old file stays.

    Raises:
        OSError: Any step failed.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = directory / f".{name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            write_all(fd, body)
            ops.fsync(fd)
        finally:
            os.close(fd)
        ops.replace(tmp, directory / name)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if fsync_directory:
        fsync_dir(directory)
