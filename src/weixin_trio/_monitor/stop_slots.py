"""Slots for ``notifystop``: many monitors stopping together take turns.

When thousands of monitors stop at once (``open_accounts`` leaving its block), every
one of them sends ``notifystop`` with a short deadline. Started all together they
convoy: the event loop round-robins between thousands of requests (and a shared pool
queues them behind its per-origin limit), so each one's deadline passes before any
answer arrives, and none reaches the server. Instead at most `NOTIFY_SLOTS`
requests of one trio run are in flight; each gets its full deadline from the moment
it holds a slot, and the wait for a slot is bounded by `NOTIFY_QUEUE_TIMEOUT`
(a server that hangs cannot hold a mass stop for thousands of deadlines).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import trio

from .._errors import WeixinError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from .._client.ilink_client import ILinkClient

__all__ = ["NOTIFY_QUEUE_TIMEOUT", "NOTIFY_SLOTS", "notify_slot", "notify_stop"]

log = logging.getLogger("weixin_trio.monitor")

#: ``notifystop`` requests in flight at once, per trio run.
NOTIFY_SLOTS = 16
#: The longest a stopping monitor waits for a slot before it skips ``notifystop``.
NOTIFY_QUEUE_TIMEOUT = 30.0

_SLOTS: trio.lowlevel.RunVar[trio.Semaphore] = trio.lowlevel.RunVar("weixin_trio_notify_slots")


@asynccontextmanager
async def notify_slot() -> AsyncIterator[bool]:
    """Hold one of this run's slots; yields whether one was had in time.

    The wait is shielded (it runs during a stop) and bounded by
    `NOTIFY_QUEUE_TIMEOUT`.

    Cancellation:
        Shielded: the wait ends only with a slot or at its timeout.
    """
    try:
        slots = _SLOTS.get()
    except LookupError:
        slots = trio.Semaphore(NOTIFY_SLOTS)
        _SLOTS.set(slots)
    acquired = False
    with trio.CancelScope(shield=True, deadline=trio.current_time() + NOTIFY_QUEUE_TIMEOUT):
        await slots.acquire()
        acquired = True
    try:
        yield acquired
    finally:
        if acquired:
            slots.release()


async def notify_stop(client: ILinkClient, step: float) -> None:
    """Send ``notifystop`` in a slot, shielded, within ``step`` seconds of taking the slot.

    Failures are logged, never raised.

    Cancellation:
        Shielded: bounded by the slot wait and ``step``.
    """
    async with notify_slot() as slot:
        if not slot:
            log.warning("%s: notifystop skipped (no slot in time)", client.account_id)
            return
        with trio.CancelScope(shield=True, deadline=trio.current_time() + step):
            try:
                await client.notify_stop()
            except WeixinError as exc:
                log.warning("%s: notifystop failed: %s", client.account_id, exc)
