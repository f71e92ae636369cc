"""Send windows per context token (issue 13, item 9; PROTOCOL §7.1a).

The quota of 10 sends belongs to each inbound message's context token: a reply spends
its own message's budget, a proactive send the newest token's. A refusal by the
window finishes the message; it is not a handler failure that burns attempts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import trio

import weixin_trio as wx

from .._helpers import until

if TYPE_CHECKING:
    from weixin_trio.testing import FakeILinkServer

USER = "alice@im.wechat"


async def test_a_burst_of_20_messages_gets_20_replies_then_the_newest_token_has_10(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    store = wx.MemoryStore()

    async def handler(msg: wx.Message) -> None:
        if msg.text != "last":
            await msg.reply(f"re: {msg.text}")

    async with wx.open_monitor(ilink_client, handler, store=store) as monitor:
        for i in range(20):
            fake_ilink.inject_text(USER, f"q{i}")
        await until(lambda: len(fake_ilink.sent_to(USER)) >= 20)
        await monitor.wait_idle()
        stats = monitor.statistics()
        assert sorted(fake_ilink.sent_texts(USER)) == sorted(f"re: q{i}" for i in range(20))
        assert (stats.dead_lettered, stats.failed, stats.refused) == (0, 0, 0)
        # The user writes once more; the bot then sends on its own (the newest token).
        fake_ilink.inject_text(USER, "last")
        await until(lambda: monitor.statistics().handled == 21)
        assert ilink_client.send_window(USER).remaining == 10
        for i in range(10):
            await ilink_client.send_text(USER, f"news {i}")
        assert ilink_client.send_window(USER).remaining == 0
        with pytest.raises(wx.SendWindowClosedError) as info:
            await ilink_client.send_text(USER, "news 10")
        assert info.value.reason == "quota"
    shown = fake_ilink.sent_texts(USER)
    assert len(shown) == 30
    assert shown[20:] == [f"news {i}" for i in range(10)]
    assert (await store.load(ilink_client.account_id)).dead_letters == ()


async def test_a_reply_refused_by_the_window_is_final_not_a_failure(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    store = wx.MemoryStore()
    runs: list[int] = []
    errors: list[Exception] = []

    async def chatty(msg: wx.Message) -> None:
        runs.append(msg.message_id)
        for i in range(11):  # one more than the token's budget
            await msg.reply(f"part {i}")

    async def on_error(msg: wx.Message | None, exc: Exception) -> None:
        errors.append(exc)

    async with wx.open_monitor(
        ilink_client, chatty, store=store, max_attempts=3, on_error=on_error
    ) as monitor:
        mid = fake_ilink.inject_text(USER, "tell me everything")
        await until(lambda: len(runs) == 1)
        await monitor.wait_idle()
        await trio.sleep(10)  # no retry comes
        stats = monitor.statistics()
    assert runs == [mid]
    assert (stats.refused, stats.failed, stats.dead_lettered, stats.handled) == (1, 0, 0, 0)
    assert [type(e) for e in errors] == [wx.SendWindowClosedError]
    assert len(fake_ilink.sent_to(USER)) == 10
    state = await store.load(ilink_client.account_id)
    assert state.pending == ()
    assert state.dead_letters == ()
