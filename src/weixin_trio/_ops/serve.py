"""Serve the operations port (`OpsApp`) next to a running ``run``/``worker``."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import trio

from .._web.serve import serve_asgi
from .app import OpsApp

__all__ = ["serve_ops"]

log = logging.getLogger("weixin_trio.ops")


async def serve_ops(
    running: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` for ``running`` until cancelled.

    Args:
        running: What ``run``/``worker`` runs (an ``AccountRunner``, leased accounts or
            a fan-out worker).
        host: The address to listen on (loopback by default).
        port: The port; 0 picks a free one.
        task_status: Gets the base URL (``http://host:port``) once it listens.

    Cancellation:
        The way to stop it: the listener and open connections close at once.
    """
    app = OpsApp(running)
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(partial(serve_asgi, app, host=host, port=port))
        log.info("metrics and health on %s (/metrics, /healthz, /readyz)", url)
        task_status.started(url)
