"""``FileStore``: a crash-safe journal per account in a directory.

Layout under the root (one directory per account, mode 0700; files mode 0600)::

    <root>/<account-key>/snapshot.json       compacted state, replaced atomically
    <root>/<account-key>/journal-<gen>.log   JSON lines appended since that snapshot
    <root>/<account-key>/dead-letters.jsonl  every dead letter, append-only

Durability: an accepted batch (messages + cursor + context tokens) is one JSON line,
appended and ``fdatasync``-ed before ``accept`` returns. A crash mid-append leaves a torn
last line, which load ignores: the batch was never accepted and its cursor never
committed. Done marks are appended without a sync (group commit, DESIGN §11); ``flush``
syncs them. Compaction writes a snapshot (temp file + fsync + ``os.replace`` + directory
fsync) and starts a new journal generation, so a crash at any instant leaves either the
old snapshot with its journal or the new snapshot.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar, final

import trio

from ._base import AccountState, DeadLetter, JournalEntry, OutboxEntry, StoreError
from ._journal import (
    DEFAULT_SEEN_WINDOW,
    JournalState,
    accept_record,
    dead_record,
    done_record,
    failure_record,
    outbox_put_record,
    outbox_remove_record,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = ["FileStore", "account_key"]

T = TypeVar("T")
_SNAPSHOT = "snapshot.json"
_DEAD = "dead-letters.jsonl"
_ACCOUNT = "account.json"
_JOURNAL_RE = re.compile(r"^journal-(\d+)\.log$")


def account_key(account: str) -> str:
    """A file-system-safe directory name for an account id.

    ``abc@im.bot`` becomes ``abc-im-bot`` (the reference's rule); any other character
    outside ``[a-z0-9_-]`` is replaced and a short hash keeps distinct ids distinct.
    """
    base = account.replace("@", "-").replace(".", "-")
    safe = re.sub(r"[^a-z0-9_-]", "_", base.lower())[:80].strip("-_") or "account"
    if safe != base:
        safe += "-" + hashlib.sha256(account.encode()).hexdigest()[:8]
    return safe


def _dump(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _open_append(path: Path) -> IO[bytes]:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    return os.fdopen(fd, "ab", buffering=0)


def _write_private(directory: Path, name: str, body: bytes) -> None:
    """Atomically replace ``directory/name`` with ``body`` (mode 0600, fsynced)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = directory / f".{name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(directory)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _AccountFiles:
    """The open journal of one account; every method runs in a worker thread."""

    def __init__(self, directory: Path, *, window: int, compact_every: int) -> None:
        self.dir = directory
        self.window = window
        self.compact_every = compact_every
        self.state = JournalState(window=window)
        self.generation = 0
        self.since_snapshot = 0
        self.broken: str | None = None

    def load(self) -> AccountState:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.state = JournalState(window=self.window)
        self.generation = 0
        snapshot = self.dir / _SNAPSHOT
        if snapshot.exists():
            data = self._read_json(snapshot)
            try:
                self.state = JournalState.from_snapshot(data, window=self.window)
                self.generation = int(data.get("generation", 0))
            except (KeyError, TypeError, ValueError) as exc:
                raise StoreError(f"corrupt snapshot {snapshot}: {exc}") from None
        self._replay(self.dir / f"journal-{self.generation}.log")
        self.state.dead_letters.extend(self._read_dead_letters())
        self._compact()
        return self.state.to_state()

    def _read_json(self, path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_bytes())
        except ValueError:
            raise StoreError(f"corrupt store file {path}: not valid JSON") from None
        if not isinstance(data, dict):
            raise StoreError(f"corrupt store file {path}: not a JSON object")
        return data

    def _replay(self, path: Path) -> None:
        if not path.exists():
            return
        lines = path.read_bytes().split(b"\n")
        for index, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                self.state.apply(record)
            except (ValueError, KeyError, TypeError) as exc:
                if index == len(lines) - 1:
                    return  # torn last line: the write never completed, so never counted
                raise StoreError(f"corrupt journal {path}, line {index + 1}: {exc}") from None

    def _read_dead_letters(self) -> list[DeadLetter]:
        path = self.dir / _DEAD
        if not path.exists():
            return []
        letters = []
        for line in path.read_bytes().splitlines():
            try:
                d = json.loads(line)
                letters.append(
                    DeadLetter(int(d["id"]), d["raw"], int(d["n"]), str(d["e"]), float(d["at"]))
                )
            except (ValueError, KeyError, TypeError):
                continue  # a torn last letter; its message is still pending, so not lost
        return letters

    @property
    def journal_path(self) -> Path:
        return self.dir / f"journal-{self.generation}.log"

    def _compact(self) -> None:
        """Write a new snapshot generation and start an empty journal for it."""
        new_gen = self.generation + 1
        data = self.state.snapshot()
        data["generation"] = new_gen
        tmp = self.dir / f".{_SNAPSHOT}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.dir / _SNAPSHOT)
        _fsync_dir(self.dir)
        self.generation = new_gen
        with _open_append(self.journal_path):
            pass
        self.since_snapshot = 0
        for stale in self.dir.iterdir():
            match = _JOURNAL_RE.match(stale.name)
            is_old_journal = match is not None and int(match.group(1)) != new_gen
            if is_old_journal or (stale.name.startswith(f".{_SNAPSHOT}.") and stale != tmp):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()

    def append(self, record: Mapping[str, Any], *, sync: bool) -> None:
        if self.broken is not None:
            raise StoreError(f"journal in {self.dir} is unusable after an earlier error")
        try:
            with _open_append(self.journal_path) as journal:
                journal.write(_dump(record))
                if sync:
                    os.fdatasync(journal.fileno())
        except OSError as exc:
            self.broken = str(exc)
            raise StoreError(f"cannot write journal in {self.dir}: {exc.strerror}") from exc
        self.state.apply(record)
        self.since_snapshot += 1
        if self.since_snapshot >= self.compact_every:
            self._compact()

    def dead_letter(self, letter: DeadLetter) -> None:
        record = {
            "id": letter.message_id,
            "raw": dict(letter.raw),
            "n": letter.attempts,
            "e": letter.error,
            "at": letter.at,
        }
        with _open_append(self.dir / _DEAD) as f:
            f.write(_dump(record))
            os.fdatasync(f.fileno())
        self.state.dead_letters.append(letter)
        self.append(dead_record(letter.message_id), sync=False)

    def sync(self) -> None:
        fd = os.open(self.journal_path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)


@final
class FileStore:
    """The default durable store: a crash-safe journal per account under ``path``.

    Args:
        path: Root directory (created with mode 0700 when missing).
        seen_window: How many recently accepted message ids are kept for dedupe.
        compact_every: Journal records between two compactions.

    A SIGKILL at any instant neither loses an accepted message nor corrupts the store.
    Blocking file I/O runs in worker threads (``trio.to_thread``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        seen_window: int = DEFAULT_SEEN_WINDOW,
        compact_every: int = 4096,
    ) -> None:
        self.path = Path(path)
        self._window = seen_window
        self._compact_every = compact_every
        self._accounts: dict[str, _AccountFiles] = {}
        self._locks: dict[str, trio.Lock] = {}

    def __repr__(self) -> str:
        return f"<FileStore path={str(self.path)!r}>"

    def account_dir(self, account: str) -> Path:
        """The directory that holds ``account``'s files."""
        return self.path / account_key(account)

    async def _run(self, account: str, fn: Callable[[_AccountFiles], T]) -> T:
        lock = self._locks.setdefault(account, trio.Lock())
        async with lock:
            files = self._accounts.get(account)
            if files is None:
                raise StoreError(f"account {account!r} was not loaded from {self.path}")
            try:
                return await trio.to_thread.run_sync(fn, files)
            except OSError as exc:
                raise StoreError(f"store I/O failed under {self.path}: {exc.strerror}") from exc

    async def load(self, account: str) -> AccountState:
        """Load (and compact) an account's journal; creates its directory if needed.

        Raises:
            StoreError: The files are corrupt or unreadable (the path is named).
        """
        files = self._accounts.get(account)
        if files is None:
            files = _AccountFiles(
                self.account_dir(account), window=self._window, compact_every=self._compact_every
            )
            self._accounts[account] = files
        return await self._run(account, _AccountFiles.load)

    async def accept(
        self,
        account: str,
        *,
        cursor: str,
        entries: Sequence[JournalEntry],
        context_tokens: Mapping[str, str],
        last_inbound: Mapping[str, float] | None = None,
    ) -> None:
        """Append and sync one accepted batch."""
        record = accept_record(cursor, entries, context_tokens, last_inbound)
        await self._run(account, lambda f: f.append(record, sync=True))

    async def mark_done(self, account: str, message_ids: Sequence[int]) -> None:
        """Append done marks (not synced; see :meth:`flush`)."""
        record = done_record(message_ids)
        await self._run(account, lambda f: f.append(record, sync=False))

    async def record_failure(self, account: str, message_id: int, attempts: int) -> None:
        """Append a failure count (not synced)."""
        record = failure_record(message_id, attempts)
        await self._run(account, lambda f: f.append(record, sync=False))

    async def dead_letter(self, account: str, letter: DeadLetter) -> None:
        """Append a dead letter (synced) and finish its message."""
        await self._run(account, lambda f: f.dead_letter(letter))

    async def outbox_put(self, account: str, entry: OutboxEntry) -> None:
        """Append and sync a queued text."""
        record = outbox_put_record(entry)
        await self._run(account, lambda f: f.append(record, sync=True))

    async def outbox_remove(self, account: str, entry_id: str) -> None:
        """Append the removal of a sent queued text (not synced)."""
        record = outbox_remove_record(entry_id)
        await self._run(account, lambda f: f.append(record, sync=False))

    async def save_account(self, account_id: str, data: Mapping[str, Any]) -> None:
        """Write ``<dir>/account.json`` atomically with mode 0600."""
        directory = self.account_dir(account_id)
        body = json.dumps({**data, "account_id": account_id}, ensure_ascii=False, indent=1)
        try:
            await trio.to_thread.run_sync(_write_private, directory, _ACCOUNT, body.encode())
        except OSError as exc:
            raise StoreError(f"cannot write {directory / _ACCOUNT}: {exc.strerror}") from exc

    async def load_accounts(self) -> list[dict[str, Any]]:
        """Read every ``*/account.json`` under the root.

        Raises:
            StoreError: One is corrupt (named by its path; it is never overwritten).
        """
        return await trio.to_thread.run_sync(self._read_accounts)

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
        """Delete ``account.json`` (the journal stays, for a later re-login)."""
        path = self.account_dir(account_id) / _ACCOUNT
        try:
            await trio.to_thread.run_sync(path.unlink)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreError(f"cannot remove {path}: {exc.strerror}") from exc
        return True

    async def flush(self, account: str) -> None:
        """Sync everything written for ``account``."""
        if account in self._accounts:
            await self._run(account, _AccountFiles.sync)

    async def aclose(self) -> None:
        """Sync every journal (files are opened per write, so nothing stays open)."""
        for account in list(self._accounts):
            await self._run(account, _AccountFiles.sync)
