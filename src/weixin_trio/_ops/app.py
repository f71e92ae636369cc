"""The ASGI app of the operations port: ``/metrics``, ``/healthz``, ``/readyz``.

- ``/metrics``: the Prometheus text exposition (or OpenMetrics, when the scraper asks
  for it) of a registry of its own, never ``prometheus_client``'s global one: the
  sample is taken in the trio thread, the text formatted in a worker thread.
- ``/healthz``: 200 while the process runs (the event loop answers).
- ``/readyz``: 200 when every account polls and none is paused, else 503; the JSON
  body names the accounts that are not ready and why.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import trio

from .collector import LeaseMemory, render
from .readiness import readiness
from .sample import take_sample

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]

__all__ = ["OpsApp"]

_JSON = [(b"content-type", b"application/json")]


class OpsApp:
    """The ASGI app over a running ``run``/``worker`` (see the module docstring)."""

    def __init__(self, running: Any) -> None:
        self._running = running
        self._leases = LeaseMemory()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request (``lifespan`` events are acknowledged)."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope.get("path", "/")
        if scope.get("method") not in ("GET", "HEAD"):
            await _answer(send, 405, {"error": "only GET"})
        elif path == "/metrics":
            await self._metrics(scope, send)
        elif path == "/healthz":
            await _answer(send, 200, {"alive": True})
        elif path == "/readyz":
            state = readiness(take_sample(self._running, sends=False), trio.current_time())
            await _answer(send, 200 if state.ready else 503, state.as_json())
        else:
            await _answer(send, 404, {"error": "not found", "paths": _PATHS})

    async def _metrics(self, scope: Scope, send: Send) -> None:
        """Sample here (the trio thread), format in a worker thread."""
        sample = take_sample(self._running)
        ever_held = self._leases.update(sample)
        accept = b",".join(v for k, v in scope.get("headers", ()) if k.lower() == b"accept")
        body, content_type = await trio.to_thread.run_sync(
            render, sample, trio.current_time(), ever_held, accept.decode("latin-1")
        )
        headers = [(b"content-type", content_type.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


_PATHS = ["/metrics", "/healthz", "/readyz"]


async def _answer(send: Send, status: int, body: object) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": _JSON})
    await send({"type": "http.response.body", "body": data})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
