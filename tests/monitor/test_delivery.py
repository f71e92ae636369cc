"""Durable delivery: stop and drain, cancellation, redelivery, hidden duplicate replies."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import pytest
import trio

import weixin_trio as wx

from .._helpers import until

if TYPE_CHECKING:
    from weixin_trio.testing import FakeILinkServer

USER = "alice@im.wechat"


async def test_idle_monitor_stops_at_once(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    async def handler(msg: wx.Message) -> None:
        raise AssertionError("no messages expected")

    async with wx.open_monitor(ilink_client, handler):
        await trio.sleep(3)  # the poll is parked now
        start = trio.current_time()
    assert trio.current_time() - start == 0
    assert fake_ilink.notify_events() == ["start", "stop"]


async def test_drain_lets_running_handlers_finish(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    async def handler(msg: wx.Message) -> None:
        await trio.sleep(3)
        await msg.reply("finished")

    store = wx.MemoryStore()
    async with wx.open_monitor(ilink_client, handler, store=store, drain_timeout=10):
        fake_ilink.inject_text(USER, "x")
        await trio.sleep(1)
        start = trio.current_time()
    assert trio.current_time() - start == pytest.approx(2.0)
    assert fake_ilink.sent_texts(USER) == ["finished"]
    assert (await store.load(ilink_client.account_id)).pending == ()


async def test_drain_deadline_cuts_handlers_and_keeps_them_pending(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    async def handler(msg: wx.Message) -> None:
        await trio.sleep(1000)

    store = wx.MemoryStore()
    async with wx.open_monitor(ilink_client, handler, store=store, drain_timeout=10) as monitor:
        mid = fake_ilink.inject_text(USER, "x")
        await trio.sleep(1)
        start = trio.current_time()
    assert trio.current_time() - start == pytest.approx(10.0)
    assert monitor.statistics().handled == 0
    state = await store.load(ilink_client.account_id)
    assert [e.message_id for e in state.pending] == [mid]


async def test_outer_cancellation_also_drains(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    async def handler(msg: wx.Message) -> None:
        await trio.sleep(2)
        await msg.reply("made it")

    with trio.move_on_after(5):
        async with wx.open_monitor(ilink_client, handler, drain_timeout=10):
            fake_ilink.inject_text(USER, "x")
            await trio.sleep(4.5)
            fake_ilink.inject_text(USER, "y")  # arrives 0.5 s before the cancel
            await trio.sleep_forever()
    assert fake_ilink.sent_texts(USER) == ["made it", "made it"]
    assert fake_ilink.notify_events() == ["start", "stop"]


async def test_redelivery_after_crash_hides_repeated_replies(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    store_clock: trio.abc.Clock | None,
    store: wx.Store,
) -> None:
    runs: list[int] = []

    async def first_life(msg: wx.Message) -> None:
        runs.append(msg.message_id)
        await msg.reply("part 1")
        await trio.sleep(1000)  # the process "dies" here
        await msg.reply("part 2")

    async def second_life(msg: wx.Message) -> None:
        runs.append(msg.message_id)
        await msg.reply("part 1")
        await msg.reply("part 2")

    async with wx.open_monitor(ilink_client, first_life, store=store, drain_timeout=0):
        mid = fake_ilink.inject_text(USER, "question")
        await until(lambda: len(fake_ilink.sends) == 1)
    async with wx.open_monitor(ilink_client, second_life, store=store) as monitor:
        await monitor.wait_idle()
        stats = monitor.statistics()
    assert runs == [mid, mid]
    assert stats.redelivered == 1
    # "part 1" was sent twice with the same client_id: WeChat shows it once.
    assert fake_ilink.sent_texts(USER) == ["part 1", "part 2"]
    assert len([s for s in fake_ilink.sends if s.text == "part 1"]) == 2
    assert (await store.load(ilink_client.account_id)).pending == ()


async def test_cancel_mid_poll_keeps_cursor_and_journal_consistent(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    store_clock: trio.abc.Clock | None,
    store: wx.Store,
) -> None:
    handled: list[str] = []

    async def handler(msg: wx.Message) -> None:
        handled.append(msg.text)

    async with wx.open_monitor(ilink_client, handler, store=store) as monitor:
        fake_ilink.inject_text(USER, "one")
        await until(lambda: handled == ["one"])
        await monitor.wait_idle()
    cursor = (await store.load(ilink_client.account_id)).cursor
    # Cancel while the next poll is parked in the server.
    with trio.move_on_after(1):
        async with wx.open_monitor(ilink_client, handler, store=store):
            await trio.sleep_forever()
    state = await store.load(ilink_client.account_id)
    assert state.cursor == cursor
    assert state.pending == ()
    # The client is still usable and the next monitor continues where we were.
    async with wx.open_monitor(ilink_client, handler, store=store) as monitor:
        fake_ilink.inject_text(USER, "two")
        await until(lambda: len(handled) == 2)
        await monitor.wait_idle()
    assert handled == ["one", "two"]


async def test_run_monitor_in_callers_nursery(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    async def handler(msg: wx.Message) -> None:
        await msg.reply("hi")

    async with trio.open_nursery() as nursery:
        monitor: wx.Monitor = await nursery.start(wx.run_monitor, ilink_client, handler)
        fake_ilink.inject_text(USER, "x")
        await fake_ilink.wait_for_sent(1)
        monitor.stop()
    assert fake_ilink.notify_events() == ["start", "stop"]


async def test_stop_before_body_runs(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    async def handler(msg: wx.Message) -> None:
        pass

    reached = False
    async with wx.open_monitor(ilink_client, handler) as monitor:
        monitor.stop()
        await trio.sleep(1)
        reached = True
    assert not reached


async def test_redelivered_messages_run_before_new_ones(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    order: list[str] = []

    async def stuck(msg: wx.Message) -> None:
        await trio.sleep(1000)

    async def record(msg: wx.Message) -> None:
        order.append(msg.text)

    store = wx.MemoryStore()
    async with wx.open_monitor(ilink_client, stuck, store=store, drain_timeout=0):
        fake_ilink.inject_text(USER, "old")
        await trio.sleep(1)
    fake_ilink.inject_text(USER, "new")
    async with wx.open_monitor(ilink_client, record, store=store) as monitor:
        await trio.sleep(1)
        await monitor.wait_idle()
    assert order == ["old", "new"]


async def test_a_later_stop_can_shorten_a_drain_in_progress(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    started = trio.Event()

    async def handler(msg: wx.Message) -> None:
        started.set()
        await trio.sleep(100)

    store = wx.MemoryStore()
    async with trio.open_nursery() as nursery:
        monitor = await nursery.start(
            partial(wx.run_monitor, ilink_client, handler, store=store, drain_timeout=50)
        )
        fake_ilink.inject_text(USER, "x")
        await started.wait()
        monitor.stop()  # drains for up to 50 s ...
        await trio.sleep(5)
        start = trio.current_time()
        monitor.stop(drain_timeout=0, notify=False)  # ... until this cuts it
    assert trio.current_time() - start < 1
    assert fake_ilink.notify_events() == ["start"]
    assert len((await store.load(ilink_client.account_id)).pending) == 1


async def test_a_retried_handler_reuses_the_reply_ids_of_the_failed_attempt(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    attempts: list[int] = []

    async def handler(msg: wx.Message) -> None:
        attempts.append(msg.message_id)
        await msg.reply("part 1")
        if len(attempts) == 1:
            raise RuntimeError("the model timed out")
        await msg.reply("part 2")

    async with wx.open_monitor(ilink_client, handler) as monitor:
        fake_ilink.inject_text(USER, "question")
        await until(lambda: len(attempts) == 2)
        await monitor.wait_idle()
    # "part 1" went out twice with one client_id: WeChat shows it once.
    assert fake_ilink.sent_texts(USER) == ["part 1", "part 2"]
    assert len([s for s in fake_ilink.sends if s.text == "part 1"]) == 2


async def test_a_retried_handler_that_changes_its_reply_shows_both_texts(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    # Issue 13 item 5: the reply id covers the content, so a changed reply at the same
    # position is shown (it used to be hidden as a duplicate of the first text), while
    # an identical one stays hidden.
    attempts: dict[str, int] = {}

    async def handler(msg: wx.Message) -> None:
        attempts[msg.text] = attempts.get(msg.text, 0) + 1
        if msg.text == "changing":
            await msg.reply(f"answer v{attempts[msg.text]}")
        else:
            await msg.reply("the same answer")
        if attempts[msg.text] == 1:
            raise RuntimeError("the model timed out")

    async with wx.open_monitor(ilink_client, handler) as monitor:
        fake_ilink.inject_text(USER, "changing")
        fake_ilink.inject_text("bob@im.wechat", "steady")
        await until(lambda: attempts == {"changing": 2, "steady": 2})
        await monitor.wait_idle()
    assert fake_ilink.sent_texts(USER) == ["answer v1", "answer v2"]
    assert fake_ilink.sent_texts("bob@im.wechat") == ["the same answer"]
    assert len([s for s in fake_ilink.sends if s.text == "the same answer"]) == 2


async def test_a_stop_ends_a_wait_for_the_next_attempt_at_once(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    attempts: list[float] = []
    store = wx.MemoryStore()

    async def handler(msg: wx.Message) -> None:
        attempts.append(trio.current_time())
        raise RuntimeError("fails")

    backoff = wx.Backoff(retry_delay=60.0, backoff_delay=60.0)
    async with wx.open_monitor(
        ilink_client, handler, store=store, retry_backoff=backoff, drain_timeout=10
    ):
        mid = fake_ilink.inject_text(USER, "x")
        await until(lambda: len(attempts) == 1)
        await trio.sleep(1)  # waiting 60 s for the second attempt
        start = trio.current_time()
    assert trio.current_time() - start == 0
    assert len(attempts) == 1
    state = await store.load(ilink_client.account_id)
    assert [(e.message_id, e.attempts) for e in state.pending] == [(mid, 1)]
