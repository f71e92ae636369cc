"""The durable pending outbox: texts queued while a user's send window is closed.

``client.send_text(user, text, queue_if_closed=True)`` stores the text (in the monitor's
store) instead of failing when the window is closed; when the user writes again, the
monitor sends the queued texts, oldest first, before handling the new message. Each
queued text is sent with a ``client_id`` derived from its entry id, so a flush cut short
by a crash and repeated is shown once.
"""

from __future__ import annotations

import secrets
import time
from collections import defaultdict
from typing import TYPE_CHECKING, final

from ..store import OutboxEntry

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..store import Store

__all__ = ["PendingOutbox"]


@final
class PendingOutbox:
    """Queued texts per user, mirrored in memory and persisted in a [`Store`][weixin_trio.Store]."""

    def __init__(self, store: Store, account: str, entries: Iterable[OutboxEntry] = ()) -> None:
        self._store = store
        self._account = account
        self._by_user: defaultdict[str, list[OutboxEntry]] = defaultdict(list)
        for entry in entries:
            self._by_user[entry.user_id].append(entry)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_user.values())

    def queued(self, user_id: str) -> tuple[OutboxEntry, ...]:
        """The texts waiting for ``user_id``, oldest first."""
        return tuple(self._by_user.get(user_id, ()))

    async def put(self, user_id: str, text: str) -> OutboxEntry:
        """Durably queue ``text`` for ``user_id``.

        Cancellation:
            If cancelled, the text may or may not have been queued.
        """
        entry = OutboxEntry(secrets.token_hex(8), user_id, text, time.time())
        await self._store.outbox_put(self._account, entry)
        self._by_user[entry.user_id].append(entry)
        return entry

    async def sent(self, entry: OutboxEntry) -> None:
        """Forget ``entry`` after it was sent."""
        queue = self._by_user.get(entry.user_id, [])
        if entry in queue:
            queue.remove(entry)
        if not queue:
            self._by_user.pop(entry.user_id, None)
        await self._store.outbox_remove(self._account, entry.entry_id)
