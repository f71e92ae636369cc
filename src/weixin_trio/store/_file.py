"""``FileStore``: a crash-safe journal per account in a directory.

Layout under the root (one directory per account, mode 0700; files mode 0600)::

    <root>/<account-key>/lock                the writer's lock (flock), holds its pid
    <root>/<account-key>/snapshot.json       compacted state, replaced atomically
    <root>/<account-key>/journal-<gen>.log   JSON lines appended since that snapshot
    <root>/<account-key>/dead-letters.jsonl  every dead letter, append-only

One writer per account directory: a store that loads an account for writing takes an
exclusive ``flock`` on its ``lock`` file and keeps it until `FileStore.aclose`
(or the process dies). A second writer gets `StoreLockedError`. Readers
(``FileStore(path, read_only=True)``) take no lock and never write.

A write is complete, or it failed: a record is written in full (looping over short
writes) and, when it must be durable, synced; if any step fails the file is truncated
back to its last good length, the record is not applied, and the error is raised
(`StoreUnavailableError` for a full disk or an I/O error, so the monitor holds
its batch and retries). A record counts only with its final newline, so a crash
mid-append leaves a torn last line that load ignores (and a writer cuts off).

Durability: an accepted batch (messages + cursor + context tokens) is one JSON line,
appended and ``fdatasync``-ed before ``accept`` returns. Done marks are appended without
a sync (group commit, DESIGN §11); ``flush`` syncs them. Compaction creates the next
journal, writes a snapshot (temp file + fsync + ``os.replace``) and fsyncs the
directory, so a crash at any instant leaves either the old snapshot with its journal or
the new snapshot; a failed compaction keeps the old generation and is retried later.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, final

import trio

from .._util import run_blocking
from . import _fsio
from ._base import (
    AccountState,
    DeadLetter,
    JournalEntry,
    OutboxEntry,
    StoreError,
    StoreLockedError,
    StoreUnavailableError,
)
from ._fsio import fsync_dir, ops, write_all, write_private
from ._journal import (
    DEFAULT_SEEN_WINDOW,
    JournalState,
    UnencodableError,
    accept_record,
    dead_record,
    done_record,
    encode_json,
    failure_record,
    outbox_put_record,
    outbox_remove_record,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from types import TracebackType
    from typing import Self

__all__ = ["FileStore", "account_key"]

log = logging.getLogger("weixin_trio.store")

T = TypeVar("T")
_SNAPSHOT = "snapshot.json"
_DEAD = "dead-letters.jsonl"
_ACCOUNT = "account.json"
_LOCK = "lock"
_JOURNAL_RE = re.compile(r"^journal-(\d+)\.log$")


def account_key(account: str) -> str:
    """A file-system-safe directory name for an account id.

    ``abc@im.bot`` becomes ``abc-im-bot`` (the reference's rule); any other character
    outside ``[a-z0-9_-]`` is replaced and a short hash keeps distinct ids distinct.
    """
    base = account.replace("@", "-").replace(".", "-")
    safe = re.sub(r"[^a-z0-9_-]", "_", base.lower())[:80].strip("-_") or "account"
    if safe != base:
        safe += "-" + hashlib.sha256(account.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return safe


def _complete_lines(data: bytes) -> int:
    """The length of ``data`` up to and including its last newline (0 when none)."""
    return data.rfind(b"\n") + 1


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _file_id(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _parse_object(body: bytes, path: Path) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise StoreError(f"corrupt store file {path}: not valid JSON") from None
    if not isinstance(data, dict):
        raise StoreError(f"corrupt store file {path}: not a JSON object")
    return data


def _dead_letter_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.message_id,
        "raw": dict(letter.raw),
        "n": letter.attempts,
        "e": letter.error,
        "at": letter.at,
    }


def _parse_dead_letters(body: bytes) -> list[DeadLetter]:
    letters: list[DeadLetter] = []
    seen: set[int] = set()
    for line in body[: _complete_lines(body)].splitlines():
        try:
            d = json.loads(line)
            letter = DeadLetter(int(d["id"]), d["raw"], int(d["n"]), str(d["e"]), float(d["at"]))
        except (ValueError, KeyError, TypeError):
            continue  # unreadable: its message is still pending, so not lost
        if letter.message_id not in seen:  # written again after a failed journal mark
            seen.add(letter.message_id)
            letters.append(letter)
    return letters


class _Loaded:
    """What the files of an account directory add up to (one consistent read)."""

    def __init__(self, state: JournalState, generation: int) -> None:
        self.state = state
        self.generation = generation
        self.records = 0
        self.journal_good = 0  # bytes of complete lines in the journal
        self.journal_size = 0  # bytes in the journal (a torn tail included)
        self.dead_good = 0
        self.dead_size = 0
        self.has_snapshot = False


def _read_account_dir(directory: Path, window: int) -> _Loaded:
    """Read snapshot, journal and dead letters; never writes.

    A concurrent writer may compact between the reads, so the snapshot's identity is
    checked after the journal was read, and the read is repeated when it changed (a
    journal generation is deleted only after a newer snapshot is in place).

    Raises:
        StoreError: A file is corrupt (named by its path).
        OSError: A file could not be read.
    """
    snapshot_path = directory / _SNAPSHOT
    for _ in range(20):
        before = _file_id(snapshot_path)
        snapshot = _read_bytes(snapshot_path)
        state = JournalState(window=window)
        generation = 0
        if snapshot is not None:
            data = _parse_object(snapshot, snapshot_path)
            try:
                state = JournalState.from_snapshot(data, window=window)
                generation = int(data.get("generation", 0))
            except (KeyError, TypeError, ValueError) as exc:
                raise StoreError(f"corrupt snapshot {snapshot_path}: {exc}") from None
        journal_path = directory / f"journal-{generation}.log"
        journal = _read_bytes(journal_path) or b""
        if _file_id(snapshot_path) == before:
            break
    else:
        raise StoreError(f"{directory} kept changing while it was read; try again")
    loaded = _Loaded(state, generation)
    loaded.has_snapshot = snapshot is not None
    loaded.journal_size = len(journal)
    loaded.journal_good = _complete_lines(journal)
    lines = journal[: loaded.journal_good].split(b"\n")
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            state.apply(json.loads(line))
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"corrupt journal {journal_path}, line {index + 1}: {exc}") from None
        loaded.records += 1
    dead = _read_bytes(directory / _DEAD) or b""
    loaded.dead_size = len(dead)
    loaded.dead_good = _complete_lines(dead)
    state.dead_letters.extend(_parse_dead_letters(dead))
    for letter in state.dead_letters:  # the dead-letter file is the truth
        state.pending.pop(letter.message_id, None)
    return loaded


def _close_fds(fds: dict[str, int]) -> None:
    """Close every fd in ``fds`` (a lock fd's close releases its lock)."""
    for name in list(fds):
        with contextlib.suppress(OSError):
            os.close(fds.pop(name))


class _AccountFiles:
    """The files of one account; every method runs in a worker thread.

    Data files are opened per write (so a directory removed under a running store is
    an error, not a write into a deleted file); only the lock stays open, in ``fds``,
    which a finalizer closes if the store is dropped without `FileStore.aclose`.
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
        fd = self._open(path, start)
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
            raise
        finally:
            os.close(fd)

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
            self.loaded = False


def _store_error(exc: OSError, files: _AccountFiles | None, what: str) -> StoreError:
    """The store error for a failed file operation (transient ones are retried)."""
    if files is not None and files.broken is not None:
        return StoreError(f"{files.broken}; refusing writes until the account is reloaded")
    reason = exc.strerror or str(exc)
    if exc.errno in _fsio.TRANSIENT_ERRNOS:
        return StoreUnavailableError(f"cannot {what}: {reason} (will retry)")
    return StoreError(f"cannot {what}: {reason}")


@final
class FileStore:
    """The default durable store: a crash-safe journal per account under ``path``.

    Args:
        path: Root directory (created with mode 0700 when missing).
        seen_window: How many recently accepted message ids are kept for dedupe.
        compact_every: Journal records between two compactions.
        read_only: Open for reading only (``weixin-trio status``, tools): `load`
            reads the files as they are, takes no lock, and never creates, compacts,
            renames, truncates or deletes anything; every write raises
            [`StoreError`][weixin_trio.StoreError]. Safe to use next to a running bot.

    One writer per account: `load` (not read-only) takes an exclusive lock on the
    account's directory, held until `aclose`; a second writer, in this process
    or another, gets `StoreLockedError` naming the holder's pid. Use the store
    as an async context manager (``async with FileStore(path) as store:``), or call
    `aclose`, to release it.

    A SIGKILL at any instant neither loses an accepted message nor corrupts the store.
    A write either completes (and is durable when the method says so) or raises and
    leaves the files as they were; a full disk or an I/O error raises
    `StoreUnavailableError`, and the same store works again once the disk has
    room. Blocking file I/O runs in worker threads (``trio.to_thread``; inline under an
    autojumping test clock, see ``run_blocking``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        seen_window: int = DEFAULT_SEEN_WINDOW,
        compact_every: int = 4096,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._window = seen_window
        self._compact_every = compact_every
        self._accounts: dict[str, _AccountFiles] = {}
        self._locks: dict[str, trio.Lock] = {}

    def __repr__(self) -> str:
        mode = " read_only" if self.read_only else ""
        return f"<FileStore path={str(self.path)!r}{mode}>"

    async def __aenter__(self) -> Self:
        """Use the store in an ``async with`` block; `aclose` runs at its end."""
        await trio.lowlevel.checkpoint()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the store (see `aclose`)."""
        await self.aclose()

    def account_dir(self, account: str) -> Path:
        """The directory that holds ``account``'s files."""
        return self.path / account_key(account)

    def _check_writable(self) -> None:
        if self.read_only:
            raise StoreError(f"FileStore({str(self.path)!r}) was opened read-only")

    async def _run(self, account: str, fn: Callable[[_AccountFiles], T], what: str) -> T:
        lock = self._locks.setdefault(account, trio.Lock())
        async with lock:
            files = self._accounts.get(account)
            if files is None or not (files.loaded or files.read_only):
                raise StoreError(f"account {account!r} was not loaded from {self.path}")
            return await self._in_thread(files, fn, what)

    async def _in_thread(
        self, files: _AccountFiles, fn: Callable[[_AccountFiles], T], what: str
    ) -> T:
        try:
            return await run_blocking(fn, files)
        except OSError as exc:
            raise _store_error(exc, files, f"{what} in {files.dir}") from exc
        except UnencodableError as exc:
            raise StoreError(f"cannot {what} in {files.dir}: {exc}") from None

    async def load(self, account: str) -> AccountState:
        """Load an account's state.

        A writer (the default) creates the account's directory if needed, takes its
        lock, cuts a torn last line and compacts. A read-only store only reads.

        Raises:
            StoreLockedError: Another writer holds the account (its pid is named).
            StoreError: The files are corrupt or unreadable (the path is named).

        Cancellation:
            Safe; a load cut short leaves the files consistent (load again).
        """
        lock = self._locks.setdefault(account, trio.Lock())
        async with lock:
            files = self._accounts.get(account)
            if files is None:
                files = _AccountFiles(
                    self.account_dir(account),
                    window=self._window,
                    compact_every=self._compact_every,
                    read_only=self.read_only,
                )
                self._accounts[account] = files
            return await self._in_thread(files, _AccountFiles.load, "load the journal")

    async def accept(
        self,
        account: str,
        *,
        cursor: str,
        entries: Sequence[JournalEntry],
        context_tokens: Mapping[str, str],
        last_inbound: Mapping[str, float] | None = None,
    ) -> None:
        """Append and sync one accepted batch (all of it, or nothing).

        Raises:
            StoreUnavailableError: The disk is full or failed; nothing was recorded.
            StoreError: The store is read-only, or a value cannot be encoded.

        Cancellation:
            The write runs to completion in its thread; if cancelled while waiting,
            whether the batch was recorded is unknown (it is either all there or not).
        """
        self._check_writable()
        record = accept_record(cursor, entries, context_tokens, last_inbound)
        await self._run(account, lambda f: f.append(record, sync=True), "journal a batch")

    async def mark_done(self, account: str, message_ids: Sequence[int]) -> None:
        """Append done marks (not synced; see `flush`).

        Cancellation:
            As `accept`.
        """
        self._check_writable()
        record = done_record(message_ids)
        await self._run(account, lambda f: f.append(record, sync=False), "write done marks")

    async def record_failure(self, account: str, message_id: int, attempts: int) -> None:
        """Append a failure count (not synced).

        Cancellation:
            As `accept`.
        """
        self._check_writable()
        record = failure_record(message_id, attempts)
        await self._run(account, lambda f: f.append(record, sync=False), "write a failure")

    async def dead_letter(self, account: str, letter: DeadLetter) -> None:
        """Append a dead letter (synced) and finish its message.

        Cancellation:
            As `accept`.
        """
        self._check_writable()
        await self._run(account, lambda f: f.dead_letter(letter), "write a dead letter")

    async def outbox_put(self, account: str, entry: OutboxEntry) -> None:
        """Append and sync a queued text.

        Cancellation:
            As `accept`.
        """
        self._check_writable()
        record = outbox_put_record(entry)
        await self._run(account, lambda f: f.append(record, sync=True), "queue a text")

    async def outbox_remove(self, account: str, entry_id: str) -> None:
        """Append the removal of a sent queued text (not synced).

        Cancellation:
            As `accept`.
        """
        self._check_writable()
        record = outbox_remove_record(entry_id)
        await self._run(account, lambda f: f.append(record, sync=False), "dequeue a text")

    async def save_account(self, account_id: str, data: Mapping[str, Any]) -> None:
        """Write ``<dir>/account.json`` atomically and durably with mode 0600.

        Needs no lock: the file is replaced atomically, so a running bot and a login
        can both use the directory.

        Cancellation:
            As `accept`.
        """
        self._check_writable()
        directory = self.account_dir(account_id)
        path = directory / _ACCOUNT
        try:
            body = encode_json({**data, "account_id": account_id}, indent=1)
            await run_blocking(write_private, directory, _ACCOUNT, body)
        except UnencodableError as exc:
            raise StoreError(f"cannot write {path}: {exc}") from None
        except OSError as exc:
            raise _store_error(exc, None, f"write {path}") from exc

    async def load_accounts(self) -> list[dict[str, Any]]:
        """Read every ``*/account.json`` under the root (never writes).

        Raises:
            StoreError: One is corrupt (named by its path; it is never overwritten).

        Cancellation:
            Safe.
        """
        return await run_blocking(self._read_accounts)

    def _read_accounts(self) -> list[dict[str, Any]]:
        if not self.path.is_dir():
            return []
        found = []
        for path in sorted(self.path.glob(f"*/{_ACCOUNT}")):
            try:
                data = json.loads(path.read_bytes())
            except (OSError, ValueError) as exc:
                raise StoreError(f"corrupt account file {path}: {exc}") from None
            if not isinstance(data, dict) or not isinstance(data.get("account_id"), str):
                raise StoreError(f"corrupt account file {path}: no account_id")
            found.append(data)
        return found

    async def remove_account(self, account_id: str) -> bool:
        """Delete ``account.json`` (the journal stays, for a later re-login).

        Cancellation:
            As `accept`.
        """
        self._check_writable()
        path = self.account_dir(account_id) / _ACCOUNT

        def remove() -> None:
            path.unlink()
            fsync_dir(path.parent)

        try:
            await run_blocking(remove)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise _store_error(exc, None, f"remove {path}") from exc
        return True

    async def flush(self, account: str) -> None:
        """Sync everything written for ``account`` (nothing to do when read-only).

        Raises:
            StoreUnavailableError: The sync failed (unsynced marks may be lost; that
                only re-runs handlers).

        Cancellation:
            As `accept`.
        """
        files = self._accounts.get(account)
        if self.read_only or files is None or not files.loaded:
            await trio.lowlevel.checkpoint()
            return
        await self._run(account, _AccountFiles.sync, "sync the journal")

    async def aclose(self) -> None:
        """Sync every journal (best effort), close its files and release the locks.

        The store can be loaded again afterwards (taking the locks again).

        Cancellation:
            Shielded: the files are closed and the locks released even when cancelled.
        """
        with trio.CancelScope(shield=True):
            for account, files in list(self._accounts.items()):
                lock = self._locks.setdefault(account, trio.Lock())
                async with lock:
                    await run_blocking(files.close)
                del self._accounts[account]
