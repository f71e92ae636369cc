"""``MemoryStore``: the Store protocol in memory, for tests and throwaway bots."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

import trio

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
from ._kv import MemoryKV, check_key, check_namespace, encode

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ._base import AccountState, DeadLetter, JournalEntry, OutboxEntry

__all__ = ["MemoryStore"]


def _encodable(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """``record`` if a ``FileStore`` could journal it; the same error otherwise."""
    try:
        encode_json(record)
    except UnencodableError as exc:
        raise UnencodableError(f"cannot journal a record: {exc}") from None
    return record


@final
class MemoryStore:
    """Keeps every account's journal in memory; lost when the process ends.

    Reusing one instance across monitors simulates a restart: unfinished messages
    are redelivered, exactly as from a [`FileStore`][weixin_trio.FileStore].

    Args:
        seen_window: How many recently accepted message ids are kept for dedupe.
    """

    def __init__(self, *, seen_window: int = DEFAULT_SEEN_WINDOW) -> None:
        self._window = seen_window
        self._accounts: dict[str, JournalState] = {}
        self._credentials: dict[str, dict[str, Any]] = {}
        self._kv = MemoryKV()
        self.fail_writes: bool = False

    def __repr__(self) -> str:
        return f"<MemoryStore accounts={len(self._accounts)}>"

    def _state(self, account: str) -> JournalState:
        state = self._accounts.get(account)
        if state is None:
            state = self._accounts[account] = JournalState(window=self._window)
        return state

    async def _write(self) -> None:
        await trio.lowlevel.checkpoint()
        if self.fail_writes:
            raise OSError("MemoryStore.fail_writes is set")

    async def load(self, account: str) -> AccountState:
        """Return the account's state."""
        await trio.lowlevel.checkpoint()
        return self._state(account).to_state()

    async def accept(
        self,
        account: str,
        *,
        cursor: str,
        entries: Sequence[JournalEntry],
        context_tokens: Mapping[str, str],
        last_inbound: Mapping[str, float] | None = None,
    ) -> None:
        """Journal a batch (atomic: no checkpoint after the first change)."""
        record = _encodable(accept_record(cursor, entries, context_tokens, last_inbound))
        await self._write()
        self._state(account).apply(record)

    async def mark_done(self, account: str, message_ids: Sequence[int]) -> None:
        """Finish messages."""
        await self._write()
        self._state(account).apply(done_record(message_ids))

    async def record_failure(self, account: str, message_id: int, attempts: int) -> None:
        """Record a failed attempt."""
        await self._write()
        self._state(account).apply(failure_record(message_id, attempts))

    async def dead_letter(self, account: str, letter: DeadLetter) -> None:
        """Keep a dead letter and finish its message."""
        _encodable({"raw": dict(letter.raw), "e": letter.error})
        await self._write()
        state = self._state(account)
        state.dead_letters.append(letter)
        state.apply(dead_record(letter.message_id))

    async def outbox_put(self, account: str, entry: OutboxEntry) -> None:
        """Queue a text for a closed send window."""
        record = _encodable(outbox_put_record(entry))
        await self._write()
        self._state(account).apply(record)

    async def outbox_remove(self, account: str, entry_id: str) -> None:
        """Forget a sent queued text."""
        await self._write()
        self._state(account).apply(outbox_remove_record(entry_id))

    async def save_account(self, account_id: str, data: Mapping[str, Any]) -> None:
        """Keep an account's credentials."""
        await self._write()
        self._credentials[account_id] = dict(data)

    async def load_accounts(self) -> list[dict[str, Any]]:
        """Every kept account, by id."""
        await trio.lowlevel.checkpoint()
        return [dict(self._credentials[k]) for k in sorted(self._credentials)]

    async def remove_account(self, account_id: str) -> bool:
        """Forget an account's credentials."""
        await self._write()
        return self._credentials.pop(account_id, None) is not None

    async def kv_get(self, account: str, namespace: str, key: str) -> Any | None:
        """The value stored under ``key``, or ``None`` (see `KeyValueStore`)."""
        await trio.lowlevel.checkpoint()
        return self._kv.get(account, namespace, key)

    async def kv_put(self, account: str, namespace: str, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` (a copy: later changes to it are not seen)."""
        check_namespace(namespace)
        check_key(key)
        encode(value)  # what cannot be stored fails before the write, as in FileStore
        await self._write()
        self._kv.put(account, namespace, key, value)

    async def kv_delete(self, account: str, namespace: str, key: str) -> bool:
        """Remove ``key``; whether it was there."""
        await self._write()
        return self._kv.delete(account, namespace, key)

    async def kv_items(self, account: str, namespace: str) -> dict[str, Any]:
        """Every key of the namespace and its value."""
        await trio.lowlevel.checkpoint()
        return self._kv.items(account, namespace)

    async def flush(self, account: str) -> None:
        """Nothing to do in memory."""
        del account
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        """Nothing to release."""
        await trio.lowlevel.checkpoint()
