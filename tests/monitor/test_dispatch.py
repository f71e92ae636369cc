"""Lanes, the concurrency cap, backpressure, handler isolation and interrupts."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
import trio

import weixin_trio as wx
from weixin_trio.testing import FakeILinkServer

USER = "alice@im.wechat"


async def test_fifo_per_user_under_random_delays(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    rng = random.Random(42)
    order: defaultdict[str, list[str]] = defaultdict(list)
    users = [f"user{i}@im.wechat" for i in range(10)]

    async def handler(msg: wx.Message) -> None:
        await trio.sleep(rng.uniform(0, 0.05))
        order[msg.from_user_id].append(msg.text)
        await msg.reply(f"re {msg.text}")

    expected: defaultdict[str, list[str]] = defaultdict(list)
    # 20 replies in a row per user exceed the 10-sends-per-inbound window: not the point here.
    ilink_client._state.send_windows = None
    async with wx.open_monitor(ilink_client, handler, max_concurrency=64) as monitor:
        start = trio.current_time()
        for n in range(20):
            for user in users:
                fake_ilink.inject_text(user, f"{n}")
                expected[user].append(f"{n}")
        with trio.fail_after(60):
            await fake_ilink.wait_for_sent(200)
        elapsed = trio.current_time() - start
        await monitor.wait_idle()
    assert dict(order) == dict(expected)
    for user in users:
        assert fake_ilink.sent_texts(user) == [f"re {n}" for n in range(20)]
    # 20 messages per user, each <= 50 ms, users in parallel: far below the 10 s serial time.
    assert elapsed <= 1.0


async def test_concurrency_cap_is_never_exceeded(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    running = 0
    peak = 0

    async def handler(msg: wx.Message) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep(1)
        running -= 1

    async with wx.open_monitor(ilink_client, handler, max_concurrency=3) as monitor:
        for i in range(20):
            fake_ilink.inject_text(f"u{i}@im.wechat", "x")
        await trio.sleep(0.5)
        assert monitor.statistics().in_flight == 3
        # The bound is one trio.CapacityLimiter, borrowed once per running handler.
        limiter = monitor._handling.limiter
        assert isinstance(limiter, trio.CapacityLimiter)
        assert limiter.statistics().borrowed_tokens == 3
        assert limiter.statistics().total_tokens == 3
        await monitor.wait_idle()
        assert limiter.statistics().borrowed_tokens == 0
        stats = monitor.statistics()
    assert peak == 3
    assert stats.handled == 20


async def test_slow_users_do_not_block_others(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    async def handler(msg: wx.Message) -> None:
        await trio.sleep(0.2)
        await msg.reply("done")

    async with wx.open_monitor(ilink_client, handler, max_concurrency=200):
        start = trio.current_time()
        for i in range(200):
            fake_ilink.inject_text(f"u{i}@im.wechat", "x")
        await fake_ilink.wait_for_sent(200)
        assert trio.current_time() - start == pytest.approx(0.2, abs=0.01)


async def test_backpressure_stops_fetching(autojump_clock: trio.abc.Clock) -> None:
    fake = FakeILinkServer(max_batch=2)
    release = trio.Event()

    async def handler(msg: wx.Message) -> None:
        await release.wait()

    async with (
        wx.open_client(
            token=fake.token, base_url=fake.base_url, transport=fake.transport()
        ) as client,
        wx.open_monitor(client, handler, max_pending=5, max_concurrency=2) as monitor,
    ):
        for i in range(50):
            fake.inject_text(f"u{i}@im.wechat", "x")
        await trio.sleep(100)
        stats = monitor.statistics()
        # At most max_pending + one batch is held; the rest stays on the server.
        assert 5 <= stats.pending <= 5 + 2
        assert len(fake.default.queue) == 50 - stats.pending
        assert stats.in_flight == 2
        release.set()
        await trio.sleep(1)
        await monitor.wait_idle()
        assert monitor.statistics().handled == 50


async def test_handler_errors_are_isolated_retried_and_dead_lettered(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    errors: list[tuple[str, str]] = []
    attempts: defaultdict[str, int] = defaultdict(int)

    async def handler(msg: wx.Message) -> None:
        attempts[msg.text] += 1
        if msg.text == "boom":
            raise RuntimeError("handler bug")
        if msg.text == "flaky" and attempts["flaky"] < 2:
            raise ValueError("first time fails")
        await msg.reply(f"ok {msg.text}")

    async def on_error(msg: wx.Message | None, exc: Exception) -> None:
        assert msg is not None
        errors.append((msg.text, type(exc).__name__))

    store = wx.MemoryStore()
    async with wx.open_monitor(
        ilink_client, handler, store=store, on_error=on_error, max_attempts=3
    ) as monitor:
        fake_ilink.inject_text(USER, "boom")
        fake_ilink.inject_text(USER, "after")
        fake_ilink.inject_text("bob@im.wechat", "flaky")
        await trio.sleep(1)
        await monitor.wait_idle()
        stats = monitor.statistics()
    assert attempts == {"boom": 3, "after": 1, "flaky": 2}
    assert sorted(errors) == [("boom", "RuntimeError")] * 3 + [("flaky", "ValueError")]
    assert stats.failed == 4
    assert stats.dead_lettered == 1
    assert stats.handled == 2
    assert fake_ilink.sent_texts(USER) == ["ok after"]
    state = await store.load(ilink_client.account_id)
    [letter] = state.dead_letters
    assert letter.attempts == 3
    assert "handler bug" in letter.error
    assert state.pending == ()


async def test_handler_timeout_counts_as_failure(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    async def handler(msg: wx.Message) -> None:
        await trio.sleep(100)

    async with wx.open_monitor(ilink_client, handler, handler_timeout=5, max_attempts=2) as monitor:
        fake_ilink.inject_text(USER, "slow")
        await trio.sleep(1)
        await monitor.wait_idle()
        stats = monitor.statistics()
    assert stats.timed_out == 2
    assert stats.dead_lettered == 1


async def test_control_message_interrupts_the_running_handler(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    log: list[str] = []
    monitor_box: list[wx.Monitor] = []

    async def handler(msg: wx.Message) -> None:
        if msg.text == "/stop":
            stopped = monitor_box[0].interrupt(msg.from_user_id)
            await msg.reply(f"stopped={stopped}")
            return
        log.append(f"start {msg.text}")
        await msg.reply(f"working on {msg.text}")
        await trio.sleep(1000)
        log.append(f"end {msg.text}")

    async with wx.open_monitor(
        ilink_client, handler, control=lambda m: m.text == "/stop"
    ) as monitor:
        monitor_box.append(monitor)
        fake_ilink.inject_text(USER, "long task")
        await trio.sleep(1)
        fake_ilink.inject_text(USER, "next")
        fake_ilink.inject_text(USER, "/stop")
        await trio.sleep(1)
        assert log == ["start long task", "start next"]
        monitor.interrupt(USER)
        await monitor.wait_idle()
        stats = monitor.statistics()
    assert stats.interrupted == 2
    assert trio.current_time() < 100
    assert fake_ilink.sent_texts(USER) == [
        "working on long task",
        "stopped=True",
        "working on next",
    ]


async def test_interrupt_can_drop_queued_messages(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    seen: list[str] = []

    async def handler(msg: wx.Message) -> None:
        seen.append(msg.text)
        await trio.sleep(1000)

    async with wx.open_monitor(ilink_client, handler) as monitor:
        for text in ("a", "b", "c"):
            fake_ilink.inject_text(USER, text)
        await trio.sleep(1)
        assert monitor.interrupt(USER, drop_queued=True)
        assert not monitor.interrupt("nobody@im.wechat")
        await monitor.wait_idle()
        assert monitor.statistics().interrupted == 3
    assert seen == ["a"]


async def test_custom_lane_key_serialises_everything(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    running = 0
    peak = 0

    async def handler(msg: wx.Message) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep(0.1)
        running -= 1

    async with wx.open_monitor(ilink_client, handler, lane_key=lambda m: "all") as monitor:
        for i in range(5):
            fake_ilink.inject_text(f"u{i}@im.wechat", "x")
        await trio.sleep(0.01)
        await monitor.wait_idle()
    assert peak == 1


async def test_handler_can_stop_the_monitor(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    boxes: list[wx.Monitor] = []

    async def handler(msg: wx.Message) -> None:
        await msg.reply("bye")
        boxes[0].stop()

    body_finished = False
    async with wx.open_monitor(ilink_client, handler) as monitor:
        boxes.append(monitor)
        fake_ilink.inject_text(USER, "quit")
        await trio.sleep(1000)
        body_finished = True
    assert not body_finished, "monitor.stop() did not end the block"
    assert fake_ilink.sent_texts(USER) == ["bye"]
    assert fake_ilink.notify_events() == ["start", "stop"]
