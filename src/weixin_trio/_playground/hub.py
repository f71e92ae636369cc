"""`EventHub`: the playground's ordered event log, which every open page follows."""

from __future__ import annotations

import itertools
from typing import Any

import trio

__all__ = ["EventHub"]

#: Seconds between keep-alive pings on an idle event stream.
PING_INTERVAL = 15.0


class EventHub:
    """Events as JSON-ready dicts, numbered from 1 (``id``), kept for the process's life.

    A page that connects (or reconnects, with ``Last-Event-ID``) replays what it
    missed and then follows live; nothing is dropped and no subscriber can block a
    publisher.
    """

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._changed = trio.Event()

    def publish(self, event_type: str, /, **data: Any) -> dict[str, Any]:
        """Append an event of type ``event_type`` and wake the followers; returns it."""
        event = {"id": next(self._ids), "type": event_type, **data}
        self.events.append(event)
        self._changed.set()
        self._changed = trio.Event()
        return event

    def since(self, after: int) -> list[dict[str, Any]]:
        """Events with an ``id`` above ``after``, oldest first."""
        return self.events[max(after, 0) :]

    async def wait_after(self, after: int, *, idle: float = PING_INTERVAL) -> list[dict[str, Any]]:
        """Events after ``after``, waiting up to ``idle`` seconds for one (else ``[]``).

        Cancellation:
            Safe.
        """
        with trio.move_on_after(idle):
            while not (fresh := self.since(after)):
                await self._changed.wait()
            return fresh
        return []
