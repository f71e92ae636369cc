"""A fault-injecting file layer for ``FileStore`` (through ``weixin_trio.store._fsio.ops``).

Each ``write``/``fsync``/``fdatasync``/``replace`` the store makes is one numbered *call
point*; :class:`FaultyOps` injects one fault at a chosen point, or a run of ``ENOSPC``
while :attr:`FaultyOps.full` is set. ``ftruncate`` (the undo) passes through unless
:attr:`FaultyOps.fail_truncate` is set.
"""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from typing import TYPE_CHECKING

from weixin_trio.store import _fsio

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

#: Fault kinds: a short write that then completes, a short write followed by ENOSPC,
#: ENOSPC and EIO.
KINDS = ("short", "short+enospc", "enospc", "eio")
_SYNC_KINDS = ("enospc", "eio")


def _error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


class FaultyOps:
    """Replaces the functions of ``_fsio.ops`` while :meth:`installed`."""

    def __init__(self, kind: str | None = None, at: int = -1) -> None:
        self.kind = kind
        self.at = at
        self.calls: list[str] = []  # the name of each call point, in order
        self.fired = False
        self.full = False  # every write and sync fails with ENOSPC
        self.fail_truncate = False
        self._enospc_next_write = False
        self._real = _fsio.FileOps()

    def _point(self, name: str) -> bool:
        """Count a call point; whether the fault fires here."""
        index = len(self.calls)
        self.calls.append(name)
        hit = index == self.at and self.kind is not None
        if hit:
            self.fired = True
        return hit

    def write(self, fd: int, data: bytes | memoryview) -> int:
        hit = self._point("write")
        if self.full:
            raise _error(errno.ENOSPC)
        if self._enospc_next_write:
            self._enospc_next_write = False
            raise _error(errno.ENOSPC)
        if hit and self.kind in ("short", "short+enospc"):
            self._enospc_next_write = self.kind == "short+enospc"
            return self._real.write(fd, data[: max(1, len(data) // 2)])
        if hit:
            raise _error(errno.ENOSPC if self.kind == "enospc" else errno.EIO)
        return self._real.write(fd, data)

    def _sync_fault(self, name: str) -> None:
        hit = self._point(name)
        if self.full:
            raise _error(errno.ENOSPC)
        if hit and self.kind in _SYNC_KINDS:
            raise _error(errno.ENOSPC if self.kind == "enospc" else errno.EIO)

    def fsync(self, fd: int) -> None:
        self._sync_fault("fsync")
        self._real.fsync(fd)

    def fdatasync(self, fd: int) -> None:
        self._sync_fault("fdatasync")
        self._real.fdatasync(fd)

    def replace(self, src: Path, dst: Path) -> None:
        self._sync_fault("replace")
        self._real.replace(src, dst)

    def ftruncate(self, fd: int, length: int) -> None:
        if self.fail_truncate:
            raise _error(errno.EIO)
        self._real.ftruncate(fd, length)

    @contextmanager
    def installed(self) -> Iterator[FaultyOps]:
        """Route the store's file operations through this object."""
        names = ("write", "fsync", "fdatasync", "replace", "ftruncate")
        for name in names:
            setattr(_fsio.ops, name, getattr(self, name))
        try:
            yield self
        finally:
            for name in names:
                delattr(_fsio.ops, name)


def applicable(kind: str, point: str) -> bool:
    """Whether fault ``kind`` means anything at a call point named ``point``."""
    return point == "write" or kind in _SYNC_KINDS
