"""The shutdown step limit holds (issue 13, item 6, monitor half).

Leaving a monitor takes at most ``drain_timeout`` plus the shutdown steps (the final
journal write and ``notifystop``, each :data:`SHUTDOWN_STEP_TIMEOUT`), even when the
store hangs for ever, and also when the monitor is cancelled from outside.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pytest
import trio

import weixin_trio as wx
from weixin_trio._monitor.monitor import SHUTDOWN_STEP_TIMEOUT

from .._helpers import until

if TYPE_CHECKING:
    from collections.abc import Sequence

    from weixin_trio.testing import FakeILinkServer

USER = "alice@im.wechat"
FOREVER = 10**7  # seconds: "for ever" on the virtual clock, yet finite on old code


class HangingStore:
    """A MemoryStore whose done marks and syncs never return once ``hang`` is set."""

    def __init__(self) -> None:
        self.inner = wx.MemoryStore()
        self.hang = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def mark_done(self, account: str, message_ids: Sequence[int]) -> None:
        if self.hang:
            await trio.sleep(FOREVER)
        await self.inner.mark_done(account, message_ids)

    async def flush(self, account: str) -> None:
        if self.hang:
            await trio.sleep(FOREVER)
        await self.inner.flush(account)

    def as_store(self) -> wx.Store:
        return cast("wx.Store", self)


async def test_a_hung_store_cannot_hold_the_stop(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    store = HangingStore()

    async def handler(msg: wx.Message) -> None:
        await msg.reply("done")

    async with wx.open_monitor(
        ilink_client, handler, store=store.as_store(), drain_timeout=10
    ) as monitor:
        store.hang = True
        fake_ilink.inject_text(USER, "x")
        await until(lambda: monitor.statistics().handled == 1)
        await trio.sleep(1)  # the flush loop is stuck in mark_done now
        start = trio.current_time()
    took = trio.current_time() - start
    assert took <= 10 + 2 * SHUTDOWN_STEP_TIMEOUT
    assert fake_ilink.notify_events() == ["start", "stop"]
    # The mark was never written: the message is redelivered, its reply hidden.
    store.hang = False
    async with wx.open_monitor(ilink_client, handler, store=store.as_store()) as monitor:
        await monitor.wait_idle()
        assert monitor.statistics().redelivered == 1
    assert fake_ilink.sent_texts(USER) == ["done"]


async def test_a_hung_handler_and_store_under_outside_cancellation_take_drain_plus_steps(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    store = HangingStore()
    started = trio.Event()

    async def handler(msg: wx.Message) -> None:
        if msg.text == "stuck":
            started.set()
            await trio.sleep_forever()

    with trio.CancelScope() as outer:
        async with wx.open_monitor(ilink_client, handler, store=store.as_store(), drain_timeout=10):
            fake_ilink.inject_text(USER, "stuck")
            await started.wait()
            store.hang = True
            fake_ilink.inject_text("bob@im.wechat", "quick")  # its done mark hangs
            await trio.sleep(1)
            start = trio.current_time()
            outer.cancel()
            await trio.sleep_forever()
    took = trio.current_time() - start
    # The documented drain is kept, and nothing but the shutdown steps is added.
    assert took >= 10
    assert took <= 10 + 2 * SHUTDOWN_STEP_TIMEOUT
    assert took == pytest.approx(10 + SHUTDOWN_STEP_TIMEOUT)
    store.hang = False
    state = await store.load(ilink_client.account_id)
    assert len(state.pending) == 2  # neither mark was written: both are redelivered
