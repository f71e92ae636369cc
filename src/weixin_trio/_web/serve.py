"""Serve an ASGI app with hypercorn's trio worker, inside the caller's nursery."""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import trio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    Scope = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
    Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["serve_asgi"]

log = logging.getLogger("weixin_trio.web")


async def serve_asgi(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on ``host:port`` until cancelled; ``nursery.start`` gets its URL.

    Args:
        app: the ASGI application.
        host: the address to listen on (loopback by default).
        port: the port; 0 picks a free one (the started value tells which).
        task_status: reports ``http://host:port`` once the socket listens.

    Cancellation:
        Cancelling the caller's scope closes the listener and every open connection
        (server-sent event streams included) at once; there is no graceful period.
    """
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = log
    config.graceful_timeout = 0.0
    async with trio.open_nursery() as nursery:
        urls: list[str] = await nursery.start(partial(serve, cast("Any", app), config))
        task_status.started(urls[0])
