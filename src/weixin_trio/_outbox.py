"""The per-account outbound queue: a few sender tasks serve every send of an account.

httpx gets dearer per request when many tasks share one connection pool (DESIGN §11),
so handler tasks hand their sends to a small, fixed set of sender tasks instead of
each hitting the pool. The hand-off is unbuffered: a caller cancelled before a sender
took its message leaves nothing behind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import attrs
import trio

from ._api import SendResult
from ._errors import RateLimitedError, TransportError
from ._wire import WeixinMessage

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._pacing import SendGovernor

__all__ = ["SEND_DEADLINE", "Outbox"]

#: A send without an answer after this long fails (the sender task moves on).
SEND_DEADLINE = 60.0


@attrs.define(eq=False)
class _Job:
    msg: WeixinMessage
    done: trio.Event = attrs.field(factory=trio.Event)
    result: SendResult | None = None
    error: Exception | None = None


@final
class Outbox:
    """Queue of sends served by ``senders`` tasks running :meth:`run`."""

    def __init__(
        self,
        send: Callable[[WeixinMessage], Awaitable[SendResult]],
        *,
        senders: int = 4,
        governor: SendGovernor | None = None,
    ) -> None:
        if senders < 1:
            raise ValueError("senders must be at least 1")
        self._send = send
        self._senders = senders
        self.governor = governor
        self._in, self._out = trio.open_memory_channel[_Job](0)

    async def submit(self, msg: WeixinMessage) -> SendResult:
        """Send ``msg`` through a sender task and return its result.

        Cancellation:
            Before a sender took the message: nothing is sent. After: the send completes
            in the sender task and its result is dropped.
        """
        job = _Job(msg)
        await self._in.send(job)
        await job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the sender tasks until cancelled."""
        async with trio.open_nursery() as nursery:
            for _ in range(self._senders):
                nursery.start_soon(self._sender)
            task_status.started()

    async def _sender(self) -> None:
        async for job in self._out:
            try:
                if self.governor is not None:
                    await self.governor.acquire()
                with trio.fail_after(SEND_DEADLINE):
                    job.result = await self._send(job.msg)
            except trio.TooSlowError:
                job.error = TransportError(
                    f"sendmessage: no answer within {SEND_DEADLINE:g} s",
                    endpoint="ilink/bot/sendmessage",
                )
            except RateLimitedError as exc:
                if self.governor is not None:
                    self.governor.throttled()
                job.error = exc
            except Exception as exc:
                job.error = exc
            finally:
                if job.result is None and job.error is None:  # cancelled mid-send
                    job.error = TransportError(
                        "send aborted: the client is closing", endpoint="ilink/bot/sendmessage"
                    )
                job.done.set()
