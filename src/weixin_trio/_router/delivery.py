"""What a router knows about the message it is handling: when it got it, the sends since.

The root router sets `CURRENT` for the duration of one message, so built-ins and
the debug trace can tell "inbound → handler" (from the message's ``create_time`` to
the router) and the time each send took.
"""

from __future__ import annotations

import contextvars
import time
from typing import TYPE_CHECKING

import attrs
import trio

if TYPE_CHECKING:
    from .._client.message import Message

__all__ = ["CURRENT", "Delivery", "format_duration"]


@attrs.define(eq=False)
class Delivery:
    """Timing of one message in the router.

    Attributes:
        received_at: ``trio.current_time()`` when the router got the message.
        inbound_latency: Seconds (wall clock) from the message's ``create_time`` to
            the router, or ``None`` when the message has no ``create_time``.
        sends: Seconds each traced send took, in order.
    """

    received_at: float
    inbound_latency: float | None
    sends: list[float] = attrs.field(factory=list)

    @classmethod
    def begin(cls, message: Message) -> Delivery:
        """The delivery of ``message``, received now."""
        latency = None
        if message.create_time is not None:
            latency = max(0.0, time.time() - message.create_time.timestamp())
        return cls(trio.current_time(), latency)

    def trace(self) -> str:
        """The debug trace line: inbound → handler, time since then, earlier sends."""
        since = trio.current_time() - self.received_at
        sends = ", ".join(format_duration(s) for s in self.sends) or "none yet"
        return (
            f"⏱ inbound→handler {format_latency(self.inbound_latency)} · "
            f"handler +{format_duration(since)} · sends {sends}"
        )


#: The delivery the running router handles (``None`` outside a router).
CURRENT: contextvars.ContextVar[Delivery | None] = contextvars.ContextVar(
    "weixin_trio_router_delivery", default=None
)


def format_duration(seconds: float) -> str:
    """``"35 ms"``, ``"1.2 s"``, ``"3 min"``, ``"2.5 h"``: short, for chat replies."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def format_latency(seconds: float | None) -> str:
    """`format_duration`, or ``"?"`` when unknown."""
    return "?" if seconds is None else format_duration(seconds)
