"""``FileStore``: a crash-safe journal per account in a directory.

Layout under the root (one directory per account, mode 0700; files mode 0600)::

    <root>/<account-key>/lock                the writer's lock (flock), holds its pid
    <root>/<account-key>/snapshot.json       compacted state, replaced atomically
    <root>/<account-key>/journal-<gen>.log   JSON lines appended since that snapshot
    <root>/<account-key>/dead-letters.jsonl  every dead letter, append-only
    <root>/<account-key>/kv/<namespace>.json key-value documents (see ``_kv_file``)

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

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, final

import trio

from .._util import run_blocking
from ._account_files import _AccountFiles, _store_error
from ._base import (
    AccountState,
    DeadLetter,
    JournalEntry,
    OutboxEntry,
    StoreError,
)
from ._file_read import (
    _ACCOUNT,
    T,
    account_key,
)
from ._fsio import fsync_dir, write_private
from ._journal import (
    DEFAULT_SEEN_WINDOW,
    UnencodableError,
    accept_record,
    done_record,
    encode_json,
    failure_record,
    outbox_put_record,
    outbox_remove_record,
)
from ._kv import check_key, check_namespace
from ._kv_file import KV_DIR, kv_delete, kv_put, kv_read

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Mapping, Sequence
    from types import TracebackType
    from typing import Self

__all__ = ["FileStore", "account_key"]

log = logging.getLogger("weixin_trio.store")

#: How many accounts keep their journal's append handle open between writes. The busy
#: ones write without opening a file; a parked account beyond them holds only its lock.
HANDLE_ACCOUNTS = 64


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
    room. An account holds its lock file open; the 64 accounts written to last also
    keep their journal open between writes. Blocking file I/O runs in worker threads
    (``trio.to_thread``; inline under an autojumping test clock, see ``run_blocking``).
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
        self._with_handles: dict[str, None] = {}  # accounts by last write, oldest first

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
            try:
                return await self._in_thread(files, fn, what)
            finally:
                self._keep_handles(account)

    def _keep_handles(self, account: str) -> None:
        """Let the `HANDLE_ACCOUNTS` latest writers keep their append handles open.

        Runs in the trio thread: an account whose lock is free has no call in a worker
        thread, so its handles can be closed here without racing a write.
        """
        recent = self._with_handles
        recent.pop(account, None)
        recent[account] = None
        while len(recent) > HANDLE_ACCOUNTS:
            idle = next(
                (name for name in recent if not self._locks[name].locked()),
                None,
            )
            if idle is None:
                return
            del recent[idle]
            files = self._accounts.get(idle)
            if files is not None:
                files.close_handles()

    async def _in_thread(
        self, files: _AccountFiles, fn: Callable[[_AccountFiles], T], what: str
    ) -> T:
        try:
            return await run_blocking(fn, files)
        except OSError as exc:
            raise _store_error(exc, files, f"{what} in {files.dir}") from exc
        except UnencodableError as exc:
            raise UnencodableError(f"cannot {what} in {files.dir}: {exc}") from None

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
            raise UnencodableError(f"cannot write {path}: {exc}") from None
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

    # --- key-value documents (files of their own, see ``_kv_file``) ---------------------

    async def _kv(self, what: str, fn: Callable[..., T], account: str, *args: Any) -> T:
        directory = self.account_dir(account)
        try:
            return await run_blocking(fn, directory, *args)
        except UnencodableError as exc:
            raise UnencodableError(f"cannot {what} in {directory / KV_DIR}: {exc}") from None
        except OSError as exc:
            raise _store_error(exc, None, f"{what} in {directory / KV_DIR}") from exc

    async def kv_get(self, account: str, namespace: str, key: str) -> Any | None:
        """The value stored under ``key``, or ``None`` (see `KeyValueStore`).

        Reads ``<account>/kv/<namespace>.json`` (no lock; read-only stores too), so a
        change by another process is seen at once.

        Raises:
            StoreError: The document is corrupt or cannot be read.

        Cancellation:
            As `accept`.
        """
        check_key(key)
        document = await self._kv("read", kv_read, account, check_namespace(namespace))
        return document.get(key)

    async def kv_items(self, account: str, namespace: str) -> dict[str, Any]:
        """Every key of the namespace and its value (see `kv_get`).

        Cancellation:
            As `accept`.
        """
        return await self._kv("read", kv_read, account, check_namespace(namespace))

    async def kv_put(self, account: str, namespace: str, key: str, value: Any) -> None:
        """Store ``value`` under ``key``: the document is replaced atomically and durably.

        Needs no ``load`` and not the journal's writer lock (a short lock of the
        document's own), so another process can write while a bot runs.

        Raises:
            UnencodableError: JSON cannot express ``value`` (nothing was written).
            StoreUnavailableError: The disk is full or failed (the old document stays).
            StoreError: The store is read-only, or the document is corrupt.

        Cancellation:
            As `accept`.
        """
        self._check_writable()
        args = (check_namespace(namespace), check_key(key), value)
        await self._kv("write a key-value document", kv_put, account, *args)

    async def kv_delete(self, account: str, namespace: str, key: str) -> bool:
        """Remove ``key``; whether it was there (see `kv_put`).

        Cancellation:
            As `accept`.
        """
        self._check_writable()
        args = (check_namespace(namespace), check_key(key))
        return await self._kv("write a key-value document", kv_delete, account, *args)

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
                self._with_handles.pop(account, None)
