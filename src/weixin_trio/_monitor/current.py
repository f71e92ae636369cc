"""The monitor whose handler is running: a context variable ``open_monitor`` sets.

Tasks inherit the context of the task that starts them, so every handler a monitor
runs sees its monitor here (a [`Router`][weixin_trio.Router]'s ``/status`` and
``/toggle-debug`` use it), and so does the body of ``async with open_monitor(...)``.
Outside a monitor (a handler called directly, the Redis worker) it is ``None``.
"""

from __future__ import annotations

import contextvars

import attrs

from ..store import Store
from .monitor import Monitor

__all__ = ["RUNNING", "RunningMonitor", "running_monitor"]


@attrs.frozen
class RunningMonitor:
    """A running monitor and the store it journals to."""

    monitor: Monitor
    store: Store


#: Set by ``open_monitor`` while it runs.
RUNNING: contextvars.ContextVar[RunningMonitor | None] = contextvars.ContextVar(
    "weixin_trio_running_monitor", default=None
)


def running_monitor() -> RunningMonitor | None:
    """The monitor running the current handler, or ``None``."""
    return RUNNING.get()
