"""A router as the monitor's handler, end to end against the fake server."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import weixin_trio as wx
from weixin_trio._client.message import ReplyContext

from .._helpers import until

if TYPE_CHECKING:
    import trio

    from weixin_trio.testing import FakeILinkServer

USER = "alice@im.wechat"
STATS = re.compile(r"^⏱ inbound→handler \d+ ms · send \d+ ms$")


async def test_echo_answers_the_text_then_latency_statistics(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    async with wx.open_monitor(ilink_client, wx.Router(builtins=True)):
        fake_ilink.inject_text(USER, "/echo hi  there")
        await fake_ilink.wait_for_sent(2)
    text, stats = fake_ilink.sent_texts(USER)
    assert text == "hi  there"
    assert STATS.match(stats), stats


async def test_help_lists_every_command_with_descriptions(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    router = wx.Router(builtins=True)

    @router.command("ping", "p")
    async def ping(msg: wx.Message, cmd: wx.Command) -> None:
        """Answer pong.

        More text that /help does not show.
        """
        await msg.reply("pong")

    child = router.include(wx.Router())

    @child.command("weather", description="Today's weather.")
    async def weather(msg: wx.Message, cmd: wx.Command) -> None:
        await msg.reply("sunny")

    async with wx.open_monitor(ilink_client, router):
        fake_ilink.inject_text(USER, "/help")
        await fake_ilink.wait_for_sent(1)
    assert fake_ilink.sent_texts(USER) == [
        "Commands:\n"
        "/ping (/p) — Answer pong.\n"
        "/weather — Today's weather.\n"
        "/echo — Reply with TEXT, plus latency statistics.\n"
        "/help — List the commands.\n"
        "/status — Show the monitor's statistics.\n"
        "/toggle-debug — Turn the timing trace on replies on or off (per account)."
    ]


async def test_custom_command_and_user_command_overrides_builtin(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    router = wx.Router(builtins=True)

    @router.command("echo")
    async def my_echo(msg: wx.Message, cmd: wx.Command) -> None:
        """My own echo."""
        await msg.reply(f"mine: {cmd.args}")

    @router.command("ping")
    async def ping(msg: wx.Message, cmd: wx.Command) -> None:
        await msg.reply("pong")

    async with wx.open_monitor(ilink_client, router):
        fake_ilink.inject_text(USER, "/ping")
        await fake_ilink.wait_for_sent(1)
        fake_ilink.inject_text(USER, "／ECHO 'a b' c")
        await fake_ilink.wait_for_sent(2)
        fake_ilink.inject_text(USER, "/help")
        await fake_ilink.wait_for_sent(3)
    pong, echo, help_text = fake_ilink.sent_texts(USER)
    assert (pong, echo) == ("pong", "mine: ('a b', 'c')")
    assert "/echo — My own echo." in help_text
    assert "latency" not in help_text  # the shadowed built-in is not listed


async def test_a_failing_route_is_retried_and_dead_lettered_as_today(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    router = wx.Router()
    attempts = 0

    @router.command("fail")
    async def fail(msg: wx.Message, cmd: wx.Command) -> None:
        nonlocal attempts
        attempts += 1
        raise KeyError("broken")

    store = wx.MemoryStore()
    async with wx.open_monitor(ilink_client, router, store=store, max_attempts=3) as monitor:
        mid = fake_ilink.inject_text(USER, "/fail")
        await until(lambda: monitor.statistics().dead_lettered == 1)
    assert attempts == 3
    stats = monitor.statistics()
    assert (stats.failed, stats.dead_lettered) == (3, 1)
    letters = (await store.load(ilink_client.account_id)).dead_letters
    assert [(d.message_id, d.attempts) for d in letters] == [(mid, 3)]
    assert "KeyError('broken')" in letters[0].error  # the route's error, not wrapped


async def test_error_handler_that_handles_finishes_the_message(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    router = wx.Router()

    @router.fallback
    async def fail(msg: wx.Message) -> None:
        raise KeyError("broken")

    @router.error
    async def on_error(msg: wx.Message, exc: Exception) -> bool:
        await msg.reply(f"sorry: {exc!r}")
        return True

    async with wx.open_monitor(ilink_client, router) as monitor:
        fake_ilink.inject_text(USER, "hello")
        await fake_ilink.wait_for_sent(1)
        await monitor.wait_idle()
    assert fake_ilink.sent_texts(USER) == ["sorry: KeyError('broken')"]
    stats = monitor.statistics()
    assert (stats.handled, stats.failed, stats.dead_lettered) == (1, 0, 0)


async def test_builtins_outside_a_monitor(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    router = wx.Router(builtins=True)
    for text in ["/status", "/toggle-debug", "/echo x"]:
        fake_ilink.inject_text(USER, text)
        (update,) = (await ilink_client.get_updates()).msgs or []
        ctx = ReplyContext(ilink_client, deterministic=False)
        await router(wx.Message.from_wire(update, message_id=1, ctx=ctx))
    status, toggled, echo, stats = fake_ilink.sent_texts(USER)
    assert status == "No monitor statistics here (the router runs outside a monitor)."
    assert toggled == "Debug mode on: replies carry a timing trace."
    assert echo.startswith("x\n\n⏱ inbound→handler ")  # traced (kept in memory)
    assert stats.startswith("⏱ inbound→handler ")
