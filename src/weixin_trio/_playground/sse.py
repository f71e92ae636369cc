"""`EventStream`: the hub's events as server-sent events, as a plain ASGI response."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import trio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    from .hub import EventHub

    Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
    Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

__all__ = ["EventStream", "format_event", "resume_point"]


def format_event(event: dict[str, Any]) -> bytes:
    """One event in the ``text/event-stream`` format (its ``id`` resumes a stream)."""
    data = json.dumps(event, ensure_ascii=False)
    return f"id: {event['id']}\ndata: {data}\n\n".encode()


def resume_point(scope: Any) -> int:
    """The id to resume after: ``Last-Event-ID`` (a reconnect), else ``?after=``, else 0."""
    headers = dict(scope.get("headers") or ())
    value = headers.get(b"last-event-id", b"").decode("latin-1")
    if not value:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        value = (query.get("after") or [""])[0]
    return int(value) if value.isdigit() else 0


class EventStream:
    """An ASGI app: streams ``hub``'s events (after the resume point) until the client goes.

    An idle stream gets a comment line now and then (proxies keep it open, and a
    vanished client is noticed).
    """

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        """Serve one stream until the client disconnects.

        Cancellation:
            Safe: the stream just ends (a disconnect cancels it the same way).
        """
        headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._until_disconnect, receive, nursery.cancel_scope)
            await self._body(send, b"retry: 1000\n\n")
            after = resume_point(scope)
            while True:
                fresh = await self.hub.wait_after(after)
                if fresh:
                    after = fresh[-1]["id"]
                    await self._body(send, b"".join(format_event(e) for e in fresh))
                else:
                    await self._body(send, b": ping\n\n")

    @staticmethod
    async def _body(send: Send, chunk: bytes) -> None:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})

    @staticmethod
    async def _until_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()
