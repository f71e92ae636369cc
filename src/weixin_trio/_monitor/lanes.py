"""Per-key FIFO lanes over one ``CapacityLimiter``.

A lane holds the queued work of one key (by default one user). At most one item of a
lane runs at a time, so a user's messages are handled strictly in arrival order, while
different lanes run concurrently. FIFO does not rely on trio's task start order: the
next item of a lane is only taken after the previous one finished.

The dispatcher takes a limiter slot *before* it spawns a handler task (backpressure:
tasks never pile up waiting for a slot) and the task releases it in ``finally``. It
has no task of its own: `Dispatcher.submit` starts a lane's item at once when a slot
is free, and a finishing item starts the next ready lane (no hop through a queue task).
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Generic, TypeVar, final

import attrs
import trio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["Dispatcher", "Lane"]

W = TypeVar("W")


@attrs.define(eq=False)
class Lane(Generic[W]):
    """The queue and the running item of one key."""

    key: str
    queue: deque[W] = attrs.field(factory=deque)
    running: W | None = None
    scheduled: bool = False


@final
class Dispatcher(Generic[W]):
    """Runs ``run(lane, item)`` for queued items, lane by lane, under ``limiter``.

    Items start in the nursery given to `attach` (or to `run`); until then, and after
    `close`, they stay queued.

    Args:
        run: The per-item coroutine (the handler wrapper). It must not raise
            ``Exception``; it is the wrapper's job to isolate handler failures.
        limiter: Bounds how many items run at once across all lanes (the dispatcher
            must be its only borrower).
    """

    def __init__(
        self, run: Callable[[Lane[W], W], Awaitable[None]], limiter: trio.CapacityLimiter
    ) -> None:
        self._run = run
        self._limiter = limiter
        self._lanes: dict[str, Lane[W]] = {}
        self._ready: dict[Lane[W], None] = {}  # FIFO of lanes waiting for a slot
        self._nursery: trio.Nursery | None = None

    @property
    def lanes(self) -> int:
        """Number of lanes with queued or running work."""
        return len(self._lanes)

    def lane(self, key: str) -> Lane[W] | None:
        """The lane of ``key`` if it has work."""
        return self._lanes.get(key)

    def submit(self, key: str, item: W) -> None:
        """Queue ``item`` at the end of ``key``'s lane (never blocks)."""
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = Lane(key)
        lane.queue.append(item)
        self._schedule(lane)

    def attach(self, nursery: trio.Nursery) -> None:
        """Start items in ``nursery`` from now on (queued ones as slots allow)."""
        self._nursery = nursery
        self._start_ready()

    def close(self) -> None:
        """Start no new item; queued items stay queued (running ones go on)."""
        self._nursery = None

    async def run(
        self,
        nursery: trio.Nursery,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """`attach` ``nursery`` while this runs, then `close`.

        Cancellation:
            Stops starting new items; queued items stay queued.
        """
        self.attach(nursery)
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            self.close()

    def _schedule(self, lane: Lane[W]) -> None:
        if lane.running is None and not lane.scheduled and lane.queue:
            lane.scheduled = True
            self._ready[lane] = None
            self._start_ready()

    def _start_ready(self) -> None:
        """Start ready lanes' next items while the limiter has free slots."""
        while self._ready and self._nursery is not None:
            token = object()
            try:
                self._limiter.acquire_on_behalf_of_nowait(token)
            except trio.WouldBlock:
                return
            lane = next(iter(self._ready))
            del self._ready[lane]
            lane.scheduled = False
            if not lane.queue:  # drained by someone else meanwhile (an interrupt)
                self._limiter.release_on_behalf_of(token)
                if lane.running is None and self._lanes.get(lane.key) is lane:
                    del self._lanes[lane.key]
                continue
            item = lane.queue.popleft()
            lane.running = item
            self._nursery.start_soon(self._run_item, lane, item, token)

    async def _run_item(self, lane: Lane[W], item: W, token: object) -> None:
        try:
            await self._run(lane, item)
        finally:
            self._limiter.release_on_behalf_of(token)
            lane.running = None
            if lane.queue:
                lane.scheduled = True
                self._ready[lane] = None
            elif self._lanes.get(lane.key) is lane:
                del self._lanes[lane.key]
            if trio.current_effective_deadline() != -math.inf:  # not being cancelled
                self._start_ready()
