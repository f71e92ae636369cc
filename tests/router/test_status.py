"""``/status`` and the running monitor a handler finds (``_monitor/current.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import weixin_trio as wx
from weixin_trio._monitor.current import running_monitor

from .._helpers import until

if TYPE_CHECKING:
    import trio

    from weixin_trio.testing import FakeILinkServer

USER = "alice@im.wechat"


async def test_status_reports_the_running_monitors_counters(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    async with wx.open_monitor(ilink_client, wx.Router(builtins=True)):
        fake_ilink.inject_text(USER, "hello")  # matches nothing: handled, no reply
        fake_ilink.inject_text(USER, "/status")
        await fake_ilink.wait_for_sent(1)
    (status,) = fake_ilink.sent_texts(USER)
    assert status.startswith(f"Account {ilink_client.account_id}\nhandled 1 · failed 0")
    assert "in flight 1 · pending 1 · lanes 1" in status  # /status itself is running
    assert "accepted 2" in status


async def test_handlers_and_the_body_see_their_monitor(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    seen: list[object] = []

    async def handler(msg: wx.Message) -> None:
        running = running_monitor()
        assert running is not None
        seen.extend([running.monitor, running.store])

    store = wx.MemoryStore()
    assert running_monitor() is None
    async with wx.open_monitor(ilink_client, handler, store=store) as monitor:
        body = running_monitor()
        assert body is not None
        assert body.monitor is monitor
        fake_ilink.inject_text(USER, "hi")
        await until(lambda: bool(seen))
    assert running_monitor() is None
    assert seen == [monitor, store]


async def test_toggle_debug_is_kept_in_the_monitors_store(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    store = wx.MemoryStore()

    def router() -> wx.Router:  # a new router per run: nothing cached
        fresh = wx.Router(builtins=True)

        @fresh.command("ping")
        async def ping(msg: wx.Message, cmd: wx.Command) -> None:
            await msg.reply("pong")

        return fresh

    async with wx.open_monitor(ilink_client, router(), store=store):
        fake_ilink.inject_text(USER, "/toggle-debug")
        await fake_ilink.wait_for_sent(1)
    assert await store.kv_get(ilink_client.account_id, "router", "debug") is True
    async with wx.open_monitor(ilink_client, router(), store=store):
        fake_ilink.inject_text(USER, "/ping")
        await fake_ilink.wait_for_sent(2)
    toggled, pong = fake_ilink.sent_texts(USER)
    assert toggled == "Debug mode on: replies carry a timing trace."
    assert pong.startswith("pong\n\n⏱ inbound→handler ")
