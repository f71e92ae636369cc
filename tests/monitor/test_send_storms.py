"""Send-error storms: transient send failures are retried by the send, not the handler.

Issue 13, item 4. The fake hides a re-send of a ``client_id`` it already showed, so
what it *shows* is what a user would see: every reply exactly once, nothing
dead-lettered, although many ``sendmessage`` calls failed.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

import trio

import weixin_trio as wx
from weixin_trio.testing import FakeILinkServer, Fault

from .._helpers import until

USERS = [f"user{i}@im.wechat" for i in range(10)]


async def test_a_20_percent_http_500_storm_loses_no_reply(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    runs: Counter[int] = Counter()
    store = wx.MemoryStore()

    async def echo(msg: wx.Message) -> None:
        runs[msg.message_id] += 1
        await msg.reply(f"echo {msg.text}")

    fake_ilink.set_fault_rate(0.2, [Fault.http_status(500)], endpoints=("sendmessage",))
    expected: dict[str, list[str]] = {u: [] for u in USERS}
    async with wx.open_monitor(ilink_client, echo, store=store) as monitor:
        for i in range(300):
            user = USERS[i % len(USERS)]
            fake_ilink.inject_text(user, f"m{i}")
            expected[user].append(f"echo m{i}")
        await until(lambda: len(fake_ilink.sent()) >= 300)
        await monitor.wait_idle()
        stats = monitor.statistics()
    failed_sends = sum(1 for e, _ in fake_ilink.faults.injected if e == "sendmessage")
    assert failed_sends >= 40  # the storm really stormed
    assert stats.dead_lettered == 0
    assert stats.failed == 0  # no 500 reached a handler
    assert stats.handled == 300
    assert set(runs.values()) == {1}
    for user in USERS:
        assert sorted(fake_ilink.sent_texts(user)) == sorted(expected[user])
    assert len(fake_ilink.sent()) == 300
    assert (await store.load(ilink_client.account_id)).dead_letters == ()


async def test_five_minutes_of_503_then_recovery_loses_no_reply(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    store = wx.MemoryStore()

    async def echo(msg: wx.Message) -> None:
        await msg.reply(f"echo {msg.text}")

    fake_ilink.inject_fault("sendmessage", Fault.http_status(503), times=math.inf)
    async with wx.open_monitor(ilink_client, echo, store=store) as monitor:
        start = trio.current_time()
        for i in range(20):
            fake_ilink.inject_text(USERS[i % 4], f"m{i}")
        await trio.sleep(300)
        assert fake_ilink.sent() == []
        fake_ilink.clear_faults()
        await until(lambda: len(fake_ilink.sent()) >= 20)
        await monitor.wait_idle()
        stats = monitor.statistics()
        took = trio.current_time() - start
    assert stats.dead_lettered == 0
    assert stats.handled == 20
    for i in range(4):
        assert sorted(fake_ilink.sent_texts(USERS[i])) == sorted(
            f"echo m{n}" for n in range(i, 20, 4)
        )
    assert len(fake_ilink.sent()) == 20
    assert (await store.load(ilink_client.account_id)).dead_letters == ()
    assert took < 400  # the replies went out soon after the recovery


async def test_a_send_that_stays_failed_is_dead_lettered_with_its_cause(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    store = wx.MemoryStore()
    errors: list[Exception] = []

    async def echo(msg: wx.Message) -> None:
        await msg.reply("never shown")

    async def on_error(msg: wx.Message | None, exc: Exception) -> None:
        errors.append(exc)

    fake_ilink.inject_fault("sendmessage", Fault.http_status(503), times=math.inf)
    async with wx.open_monitor(
        ilink_client, echo, store=store, max_attempts=2, on_error=on_error
    ) as monitor:
        fake_ilink.inject_text(USERS[0], "x")
        await until(lambda: monitor.statistics().dead_lettered == 1, timeout=10_000)
        await monitor.wait_idle()
    (letter,) = (await store.load(ilink_client.account_id)).dead_letters
    assert letter.error.startswith("send: ApiError(")
    assert letter.attempts == 2
    assert all(isinstance(e, wx.ApiError) and e.status_code == 503 for e in errors)
    assert len(errors) == 2  # each handler attempt saw one error, after the retries


async def test_handler_failures_are_dead_lettered_with_the_handler_cause(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    store = wx.MemoryStore()
    starts: list[float] = []

    async def handler(msg: wx.Message) -> None:
        if msg.text == "bug":
            starts.append(trio.current_time())
        if msg.text == "slow":
            await trio.sleep(100)
        raise KeyError("bug")

    async with wx.open_monitor(
        ilink_client, handler, store=store, max_attempts=4, handler_timeout=5
    ) as monitor:
        fake_ilink.inject_text(USERS[0], "bug")
        fake_ilink.inject_text(USERS[1], "slow")
        await until(lambda: monitor.statistics().dead_lettered == 2)
        await monitor.wait_idle()
    letters = (await store.load(ilink_client.account_id)).dead_letters
    assert sorted(letter.error.split(":")[0] for letter in letters) == ["handler", "timeout"]
    # Redelivery waits grow per message (capped, jittered): about 1 s, 2 s, 4 s.
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 3
    for gap, nominal in zip(gaps, [1.0, 2.0, 4.0], strict=True):
        assert nominal * 0.79 <= gap <= nominal * 1.21
