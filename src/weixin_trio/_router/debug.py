"""``/toggle-debug``: a per-account debug mode, kept in the store, that traces replies.

The switch is kept under `DEBUG_NAMESPACE`/`DEBUG_KEY` in the key-value API of the
monitor's store (`KeyValueStore`; without one, in memory for the router's lifetime)
and cached per account, so only the first message of an account reads the store.
While it is on, the router hands its routes a `TracedMessage`: each text reply gets
the timing trace of its `Delivery` appended (inbound → handler, time since the
handler started, the sends before it).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._client.message import Message
from ..store import KeyValueStore
from .delivery import Delivery

if TYPE_CHECKING:
    from .._client.ilink_client import SendResult

__all__ = ["DEBUG_KEY", "DEBUG_NAMESPACE", "DebugModes", "TracedMessage", "traced"]

log = logging.getLogger("weixin_trio.router")

#: Where the debug switch is kept: the store's key-value namespace and key (per account).
DEBUG_NAMESPACE = "router"
DEBUG_KEY = "debug"


class DebugModes:
    """Per-account debug switches: cached, persisted where the store can keep them."""

    def __init__(self) -> None:
        self._known: dict[str, bool] = {}

    async def enabled(self, account_id: str, store: object | None) -> bool:
        """Whether debug mode is on for ``account_id`` (read from ``store`` once)."""
        known = self._known.get(account_id)
        if known is not None:
            return known
        if isinstance(store, KeyValueStore):
            try:
                known = bool(await store.kv_get(account_id, DEBUG_NAMESPACE, DEBUG_KEY))
            except Exception as exc:  # the message must not fail for want of a trace
                log.warning("%s: cannot read the debug switch: %r", account_id, exc)
                return False  # not cached: read again with the next message
        self._known[account_id] = bool(known)
        return bool(known)

    async def toggle(self, account_id: str, store: object | None) -> bool:
        """Flip the switch of ``account_id``; returns the new state."""
        state = not await self.enabled(account_id, store)
        if isinstance(store, KeyValueStore):
            await store.kv_put(account_id, DEBUG_NAMESPACE, DEBUG_KEY, state)
        self._known[account_id] = state
        return state


@attrs.frozen
class TracedMessage(Message):
    """A [`Message`][weixin_trio.Message] whose text replies carry a timing trace."""

    _delivery: Delivery = attrs.field(kw_only=True, repr=False, eq=False)

    async def reply(self, text: str) -> SendResult:
        """[`Message.reply`][weixin_trio.Message.reply] with the trace appended.

        Cancellation:
            As [`Message.reply`][weixin_trio.Message.reply].
        """
        if not text:
            raise ValueError("refusing to send an empty reply")
        start = trio.current_time()
        try:
            return await Message.reply(self, f"{text}\n\n{self._delivery.trace()}")
        finally:
            self._delivery.sends.append(trio.current_time() - start)


def traced(message: Message, delivery: Delivery) -> TracedMessage:
    """``message`` as a `TracedMessage` reporting ``delivery``."""
    fields: dict[str, Any] = {str(a.alias): getattr(message, a.name) for a in attrs.fields(Message)}
    return TracedMessage(**fields, delivery=delivery)
