"""A bounded inbox of inbound messages, kept in a store's key-value documents.

The monitor's handler adds each message; MCP tools read it. Messages are stored in
pages of `PAGE` (namespace ``mcp.inbox.<slot>``, key ``page``; the slots form a ring just
large enough for the cap), and the read mark on its own (namespace ``mcp.inbox``, key
``read``). Each change writes one small document, atomically: a crash leaves the inbox
before or after a message, and the monitor's journal redelivers a message whose handler
did not finish (a redelivered message id is not added twice). One document for the
whole inbox cost ~11 ms per message at 1,000 records in a `FileStore` (five JSON passes
over 190 kB); a page costs about 1 ms.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from ..store._kv import KeyValueStore

__all__ = ["DEFAULT_CAP", "NAMESPACE", "PAGE", "Inbox"]

NAMESPACE = "mcp.inbox"
DEFAULT_CAP = 1000
#: Messages per stored page.
PAGE = 100


class Inbox:
    """Inbound messages of one account, oldest first, at most ``cap`` of them.

    Each record is a dict: ``seq`` (1, 2, ... in arrival order), ``user``, ``text``,
    ``message_id`` and ``time`` (Unix seconds). When a message would exceed ``cap``,
    the oldest is dropped and counted in `dropped`. `take_unread` hands each message
    out once; the read mark is stored too, so a restart neither loses nor repeats one.
    """

    def __init__(self, store: KeyValueStore, account_id: str, *, cap: int = DEFAULT_CAP) -> None:
        if cap < 1:
            raise ValueError(f"cap must be >= 1, not {cap}")
        self._store = store
        self._account = account_id
        self._cap = cap
        self._ring = cap // PAGE + 2  # the newest pages hold at least ``cap`` messages
        self._messages: list[dict[str, Any]] = []
        self._next_seq = 1
        self._read = 0
        self.dropped = 0
        self._lock = trio.Lock()
        self._changed = trio.Event()

    @classmethod
    async def load(cls, store: KeyValueStore, account_id: str, *, cap: int = DEFAULT_CAP) -> Inbox:
        """The inbox as stored (empty when none).

        Cancellation:
            Safe: nothing is written.
        """
        inbox = cls(store, account_id, cap=cap)
        read = await store.kv_get(account_id, NAMESPACE, "read")
        inbox._read = read if isinstance(read, int) else 0
        by_seq: dict[int, dict[str, Any]] = {}
        for slot in range(inbox._ring):
            page = await store.kv_get(account_id, inbox._slot(slot), "page")
            if isinstance(page, dict):
                for m in page.get("messages", []):
                    if isinstance(m, dict) and isinstance(m.get("seq"), int):
                        by_seq[m["seq"]] = m
        inbox._messages = [by_seq[seq] for seq in sorted(by_seq)][-cap:]
        if inbox._messages:
            inbox._next_seq = inbox._messages[-1]["seq"] + 1
            inbox.dropped = inbox._messages[0]["seq"] - 1  # seqs have no gaps
        return inbox

    @property
    def unread(self) -> int:
        """How many stored messages `take_unread` has not handed out yet."""
        return sum(1 for m in self._messages if m["seq"] > self._read)

    async def add(self, user: str, text: str, message_id: int, at: float | None = None) -> bool:
        """Store a message; ``False`` when its (positive) id is stored already.

        Cancellation:
            The inbox in memory changes only after the store's write returned.
        """
        async with self._lock:
            if message_id > 0 and any(m["message_id"] == message_id for m in self._messages):
                return False
            record = {
                "seq": self._next_seq,
                "user": user,
                "text": text,
                "message_id": message_id,
                "time": time.time() if at is None else at,
            }
            page = (self._next_seq - 1) // PAGE
            same = [m for m in self._messages if (m["seq"] - 1) // PAGE == page]
            doc = {"page": page, "messages": [*same, record]}
            await self._store.kv_put(self._account, self._slot(page), "page", doc)
            messages = [*self._messages, record]
            excess = max(0, len(messages) - self._cap)
            self._messages = messages[excess:]
            self._next_seq += 1
            self.dropped += excess
        self._wake()
        return True

    async def wait_unread(self) -> None:
        """Wait until a stored message was not handed out yet (at once if one is).

        Cancellation:
            Safe: nothing changes.
        """
        while not self.unread:
            await self._changed.wait()

    async def take_unread(self) -> list[dict[str, Any]]:
        """The messages not handed out yet (``[]`` when none), marked read (stored).

        Cancellation:
            The read mark changes only after the store's write returned.
        """
        async with self._lock:
            fresh = [dict(m) for m in self._messages if m["seq"] > self._read]
            if fresh:
                await self._store.kv_put(self._account, NAMESPACE, "read", fresh[-1]["seq"])
                self._read = fresh[-1]["seq"]
        return fresh

    def messages(self, user: str | None = None, since: int | None = None) -> list[dict[str, Any]]:
        """Stored messages (of ``user``; with ``seq`` greater than ``since``), oldest first."""
        return [
            dict(m)
            for m in self._messages
            if (user is None or m["user"] == user) and (since is None or m["seq"] > since)
        ]

    def conversations(self) -> list[dict[str, Any]]:
        """Each user with stored messages: ``user``, ``count``, ``last_time``; newest first."""
        seen: dict[str, dict[str, Any]] = {}
        for m in self._messages:
            entry = seen.setdefault(m["user"], {"user": m["user"], "count": 0, "last_time": 0.0})
            entry["count"] += 1
            entry["last_time"] = max(entry["last_time"], m["time"])
        return sorted(seen.values(), key=lambda e: e["last_time"], reverse=True)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _slot(self, page: int) -> str:
        """The namespace of the ring slot that holds ``page``."""
        return f"{NAMESPACE}.{page % self._ring}"
