"""One account directory of a `FileStore` open for writing: lock, appends, compaction."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import weakref
from typing import TYPE_CHECKING, Any

from . import _fsio
from ._base import (
    AccountState,
    DeadLetter,
    StoreError,
    StoreLockedError,
    StoreUnavailableError,
)
from ._file_read import (
    _DEAD,
    _JOURNAL_RE,
    _LOCK,
    _SNAPSHOT,
    _close_fds,
    _dead_letter_json,
    _read_account_dir,
)
from ._fsio import fsync_dir, ops, write_all, write_private
from ._journal import (
    JournalState,
    UnencodableError,
    dead_record,
    encode_json,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

log = logging.getLogger("weixin_trio.store")


class _AccountFiles:
    """The files of one account; every method runs in a worker thread.

    The lock and the append handles of the data files stay open, in ``fds`` (a
    finalizer closes them if the store is dropped without `FileStore.aclose`). Before
    each write the path is checked (one ``stat``) to still be the file the handle has,
    with the length the store wrote: a directory removed or a file replaced under a
    running store is an error (the file is opened again, which fails or tells the
    store it changed), never a write into a deleted file.
    """

    def __init__(
        self, directory: Path, *, window: int, compact_every: int, read_only: bool
    ) -> None:
        self.dir = directory
        self.window = window
        self.compact_every = compact_every
        self.read_only = read_only
        self.state = JournalState(window=window)
        self.generation = 0
        self.since_snapshot = 0
        self.journal_size = 0
        self.dead_size = 0
        self.fds: dict[str, int] = {}
        self.identity: dict[str, tuple[int, int]] = {}  # fds key -> (st_dev, st_ino)
        self.dir_dirty = False  # an entry was created or renamed and not fsynced yet
        self.broken: str | None = None
        self.loaded = False
        weakref.finalize(self, _close_fds, self.fds)

    # --- loading ------------------------------------------------------------------------

    def load(self) -> AccountState:
        if self.read_only:
            if not self.dir.is_dir():
                return AccountState()
            return _read_account_dir(self.dir, self.window).state.to_state()
        self._make_dir()
        self._lock()
        self.loaded = False
        self.close_handles()
        loaded = _read_account_dir(self.dir, self.window)
        self.state = loaded.state
        self.generation = loaded.generation
        self.since_snapshot = loaded.records
        # Cut a torn tail (a crash mid-append, or a failed write whose undo failed), so
        # the next record starts on a line of its own.
        self.journal_size = self._cut(self.journal_path, loaded.journal_good, loaded.journal_size)
        self.dead_size = self._cut(self.dir / _DEAD, loaded.dead_good, loaded.dead_size)
        self.broken = None
        self.loaded = True
        self._remove_stale()
        if loaded.records or not loaded.has_snapshot:
            self.try_compact()
        return self.state.to_state()

    def _make_dir(self) -> None:
        created: list[Path] = []
        path = self.dir
        while not path.exists():
            created.append(path)
            path = path.parent
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for made in reversed(created):  # make the new entries durable, outermost first
            fsync_dir(made.parent)

    def _lock(self) -> None:
        if "lock" in self.fds:
            return
        path = self.dir / _LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StoreLockedError(
                f"{self.dir} is locked by another writer (pid {holder})"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        self.fds["lock"] = fd
        with contextlib.suppress(OSError):  # the pid is information only
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)

    def _cut(self, path: Path, good: int, size: int) -> int:
        if size > good:
            fd = os.open(path, os.O_WRONLY)
            try:
                ops.ftruncate(fd, good)
                ops.fdatasync(fd)
            finally:
                os.close(fd)
        return good

    def _remove_stale(self) -> None:
        """Remove journals of other generations and this writer's temp files.

        Only temp files of the snapshot and the heartbeat: ``account.json`` may be
        written by a login in another process at this moment.
        """
        for stale in self.dir.iterdir():
            match = _JOURNAL_RE.match(stale.name)
            is_old_journal = match is not None and int(match.group(1)) != self.generation
            if is_old_journal or stale.name.startswith((f".{_SNAPSHOT}.", ".status.json.")):
                with contextlib.suppress(OSError):
                    stale.unlink()

    # --- writing ------------------------------------------------------------------------

    @property
    def journal_path(self) -> Path:
        return self.dir / f"journal-{self.generation}.log"

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(f"{self.dir} was opened read-only")
        if self.broken is not None:
            raise StoreError(f"{self.broken}; refusing writes until the account is reloaded")

    def close_handles(self) -> None:
        """Close the append handles (the lock stays); the next write opens its file."""
        for key in [k for k in self.fds if k != "lock"]:
            self._forget(key)

    def _forget(self, key: str) -> None:
        self.identity.pop(key, None)
        fd = self.fds.pop(key, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _handle(self, path: Path, size: int) -> int:
        """The append handle of ``path``, which must still have ``size`` bytes.

        The handle opened by an earlier write is reused when ``path`` is still that
        file with that length (one ``stat``); otherwise it is closed and `_open`
        opens the path again (and raises if it changed).
        """
        key = path.name
        fd = self.fds.get(key)
        if fd is not None:
            try:
                st = os.stat(path)
            except OSError:
                pass  # removed, or its directory: opening it again raises the error
            else:
                same = self.identity.get(key) == (st.st_dev, st.st_ino)
                if same and st.st_size == size:
                    return fd
            self._forget(key)
        fd = self._open(path, size)
        try:
            st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        self.fds[key] = fd
        self.identity[key] = (st.st_dev, st.st_ino)
        return fd

    def _open(self, path: Path, size: int) -> int:
        """Open ``path`` for appending, checking that it still has ``size`` bytes.

        Raises:
            StoreError: The file changed under the store (removed, replaced, written).
            OSError: It cannot be opened.
        """
        if size:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        else:
            existed = path.exists()
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            if not existed:
                self.dir_dirty = True
        try:
            actual = os.fstat(fd).st_size
        except BaseException:
            os.close(fd)
            raise
        if actual != size:
            os.close(fd)
            self.broken = f"{path} changed under the store ({actual} bytes, not {size})"
            raise StoreError(f"{self.broken}; refusing writes until the account is reloaded")
        return fd

    def _sync_dir(self) -> None:
        fsync_dir(self.dir)
        self.dir_dirty = False

    def _append(self, path: Path, start: int, data: bytes, *, sync: bool) -> None:
        """Append ``data`` completely (and sync it) or undo it and raise ``OSError``."""
        fd = self._handle(path, start)
        try:
            write_all(fd, data)
            if sync:
                ops.fdatasync(fd)
                if self.dir_dirty:
                    self._sync_dir()
        except OSError as exc:
            try:
                ops.ftruncate(fd, start)
            except OSError as undo:
                self.broken = (
                    f"a failed write to {path} ({exc.strerror}) could not be undone "
                    f"({undo.strerror})"
                )
            self._forget(path.name)  # the next write opens and checks the file afresh
            raise

    def append(self, record: Mapping[str, Any], *, sync: bool) -> None:
        self._writable()
        data = encode_json(record)
        self._append(self.journal_path, self.journal_size, data, sync=sync)
        self.journal_size += len(data)
        self.state.apply(record)
        self.since_snapshot += 1
        if self.since_snapshot >= self.compact_every:
            self.try_compact()

    def dead_letter(self, letter: DeadLetter) -> None:
        self._writable()
        data = encode_json(_dead_letter_json(letter))
        self._append(self.dir / _DEAD, self.dead_size, data, sync=True)
        self.dead_size += len(data)
        self.state.dead_letters.append(letter)
        # The letter is durable, and load finishes any message that has one; so a failed
        # journal mark only costs the compaction it would have counted towards.
        try:
            self.append(dead_record(letter.message_id), sync=False)
        except (OSError, StoreError) as exc:
            log.warning("dead letter kept; its journal mark failed (%s)", exc)
            self.state.apply(dead_record(letter.message_id))

    def sync(self) -> None:
        self._writable()
        if self.journal_size:
            fd = self.fds.get(self.journal_path.name)
            if fd is not None:
                ops.fdatasync(fd)
            else:
                fd = os.open(self.journal_path, os.O_RDONLY)
                try:
                    ops.fdatasync(fd)
                finally:
                    os.close(fd)
        if self.dir_dirty:
            self._sync_dir()

    # --- compaction ---------------------------------------------------------------------

    def try_compact(self) -> None:
        """Compact; on failure log, keep the old generation and retry a while later."""
        try:
            self._compact()
        except (OSError, UnencodableError) as exc:
            retry_in = max(1, self.compact_every // 8)
            self.since_snapshot = max(0, self.compact_every - retry_in)
            log.warning("compaction of %s failed (%s); retrying later", self.dir, exc)

    def _compact(self) -> None:
        """Write a new snapshot generation and switch to its (new, empty) journal."""
        new_gen = self.generation + 1
        data = self.state.snapshot()
        data["generation"] = new_gen
        body = encode_json(data)
        new_journal = self.dir / f"journal-{new_gen}.log"
        os.close(os.open(new_journal, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        try:
            # A temp file written completely + fsync + replace; the directory fsync
            # below also makes the new journal's entry durable.
            write_private(self.dir, _SNAPSHOT, body, fsync_directory=False)
        except BaseException:
            with contextlib.suppress(OSError):
                new_journal.unlink()
            raise
        # The snapshot names the new generation now: the old journal is done with.
        self._forget(self.journal_path.name)
        self.generation = new_gen
        self.journal_size = 0
        self.since_snapshot = 0
        self.dir_dirty = True
        try:
            self._sync_dir()
        except OSError as exc:  # the next synced write retries it before it returns
            log.warning("cannot sync %s after compaction (%s)", self.dir, exc)
            return
        self._remove_stale()

    # --- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """Sync what was written (best effort), close every file, release the lock."""
        try:
            if self.loaded and not self.read_only and self.broken is None:
                try:
                    self.sync()
                except OSError as exc:
                    log.warning("cannot sync %s while closing (%s)", self.dir, exc)
        finally:
            _close_fds(self.fds)
            self.identity.clear()
            self.loaded = False


def _store_error(exc: OSError, files: _AccountFiles | None, what: str) -> StoreError:
    """The store error for a failed file operation (transient ones are retried)."""
    if files is not None and files.broken is not None:
        return StoreError(f"{files.broken}; refusing writes until the account is reloaded")
    reason = exc.strerror or str(exc)
    if exc.errno in _fsio.TRANSIENT_ERRNOS:
        return StoreUnavailableError(f"cannot {what}: {reason} (will retry)")
    return StoreError(f"cannot {what}: {reason}")
