"""Access control, ``msg.state`` and flows under a monitor, against the fake server."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

import weixin_trio as wx
from weixin_trio.access import AccessBook, AccessControl, AccessStatistics

from .._helpers import until

if TYPE_CHECKING:
    from pathlib import Path

    import trio

    from weixin_trio.testing import FakeILinkServer

STRANGER = "stranger@im.wechat"
CODE = re.compile(r"code: ([A-Z2-9]{6})")


async def echo(msg: wx.Message) -> None:
    await msg.reply(f"echo: {msg.text}")


async def test_pairing_on_every_store(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    store_clock: trio.abc.Clock | None,
    store: wx.Store,
) -> None:
    access = AccessControl(pairing_reply="code: {code}")
    account = ilink_client.account_id
    async with wx.open_monitor(ilink_client, access.guard(echo), store=store) as monitor:
        fake_ilink.inject_text(STRANGER, "hi")
        fake_ilink.inject_text(STRANGER, "hello?")
        await until(lambda: monitor.statistics().handled == 2)
        (reply,) = fake_ilink.sent_texts(STRANGER)  # one code for both messages
        code = CODE.fullmatch(reply).group(1)  # type: ignore[union-attr]
        assert await AccessBook(store, account).approve(code) is not None  # type: ignore[arg-type]
        fake_ilink.inject_text(STRANGER, "let me in")
        await fake_ilink.wait_for_sent(2)
        await until(lambda: monitor.statistics().handled == 3)
    assert fake_ilink.sent_texts(STRANGER) == [reply, "echo: let me in"]
    assert access.statistics() == AccessStatistics(passed=1, denied=2, codes_issued=1)
    assert (await store.load(account)).pending == ()  # refusals were acknowledged


async def test_refused_messages_are_acknowledged_and_counted(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    store = wx.MemoryStore()
    owner = fake_ilink.default.owner_id
    await store.save_account(
        ilink_client.account_id,
        {"account_id": ilink_client.account_id, "user_id": owner, "token": "t"},
    )
    handled: list[str] = []

    async def handler(msg: wx.Message) -> None:
        handled.append(msg.text)

    access = AccessControl("allowlist")
    async with wx.open_monitor(ilink_client, access.guard(handler), store=store) as monitor:
        for n in range(3):
            fake_ilink.inject_text(STRANGER, f"no {n}")
        fake_ilink.inject_text(owner, "owner here")
        await until(lambda: monitor.statistics().handled == 4)
        await monitor.wait_idle()
        stats = monitor.statistics()
    assert handled == ["owner here"]
    assert access.statistics().denied == 3
    assert stats.handled == 4
    assert fake_ilink.sends == []
    async with wx.open_monitor(ilink_client, access.guard(handler), store=store) as monitor:
        await monitor.wait_idle()  # a restart redelivers nothing
        assert monitor.statistics().redelivered == 0
    assert handled == ["owner here"]


async def test_as_router_middleware(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    store = wx.MemoryStore()
    router = wx.Router()
    access = router.use(AccessControl("allowlist", denied_reply="private bot"))

    @router.command("ping")
    async def ping(msg: wx.Message, cmd: Any) -> None:
        await msg.reply("pong")

    async with wx.open_monitor(ilink_client, router, store=store):
        fake_ilink.inject_text(STRANGER, "/ping")
        await fake_ilink.wait_for_sent(1)
        await AccessBook(store, ilink_client.account_id).allow(STRANGER)
        fake_ilink.inject_text(STRANGER, "/ping")
        await fake_ilink.wait_for_sent(2)
    assert fake_ilink.sent_texts(STRANGER) == ["private bot", "pong"]
    assert access.statistics().passed == 1


async def test_router_access_argument_guards_builtins_and_fallback(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    store = wx.MemoryStore()
    access = AccessControl("allowlist", denied_reply="private bot")
    router = wx.Router(builtins=True, access=access)
    reached: list[str] = []

    @router.fallback
    async def anything(msg: wx.Message) -> None:
        reached.append(msg.text)

    async with wx.open_monitor(ilink_client, router, store=store) as monitor:
        fake_ilink.inject_text(STRANGER, "/echo hi")
        fake_ilink.inject_text(STRANGER, "hello")
        await fake_ilink.wait_for_sent(2)
        await until(lambda: access.statistics().denied == 2)
        await monitor.wait_idle()
    assert fake_ilink.sent_texts(STRANGER) == ["private bot", "private bot"]  # no echo
    assert reached == []
    assert monitor.statistics().handled == 2  # acknowledged, not redelivered


async def test_state_is_per_user_and_per_account(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    store = wx.MemoryStore()

    async def count(msg: wx.Message) -> None:
        state = await msg.state.get()
        state = await msg.state.update(n=state.get("n", 0) + 1)
        await msg.reply(f"{msg.from_user_id} {state['n']}")

    async with wx.open_monitor(ilink_client, count, store=store):
        for n, user in enumerate(("a@im.wechat", "b@im.wechat", "a@im.wechat"), 1):
            fake_ilink.inject_text(user, "x")
            await fake_ilink.wait_for_sent(n)
    assert fake_ilink.sent_texts("a@im.wechat") == ["a@im.wechat 1", "a@im.wechat 2"]
    assert fake_ilink.sent_texts("b@im.wechat") == ["b@im.wechat 1"]
    state = wx.ConversationState(store, "other@im.bot", "a@im.wechat")
    assert await state.get() == {}


def test_a_message_built_by_hand_has_no_store() -> None:
    raw = {"message_id": 1, "from_user_id": "u", "message_type": 1, "item_list": []}
    msg = wx.Message.from_json(raw, message_id=1)
    assert msg.store is None
    with pytest.raises(wx.NoStoreError, match="state"):
        _ = msg.state


signup = wx.Flow("signup")


@signup.step("name")
async def got_name(msg: wx.Message, data: dict[str, Any]) -> str | None:
    data["name"] = msg.text
    await msg.reply("date?")
    return "date"


@signup.step("date")
async def got_date(msg: wx.Message, data: dict[str, Any]) -> str | None:
    await msg.reply(f"{data['name']} on {msg.text}")
    return None


async def booking(msg: wx.Message) -> None:
    if not await signup.handle(msg):
        await signup.start(msg)
        await msg.reply("name?")


async def test_a_flow_survives_a_restart_with_a_file_store(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    tmp_path: Path,
) -> None:
    user = "ann@im.wechat"
    async with wx.FileStore(tmp_path / "state") as store:
        async with wx.open_monitor(ilink_client, booking, store=store) as monitor:
            fake_ilink.inject_text(user, "book")
            await until(lambda: len(fake_ilink.sends) == 1)
            fake_ilink.inject_text(user, "Ann")
            await until(lambda: len(fake_ilink.sends) == 2)
            await monitor.wait_idle()
    # a new process: a new store object on the same directory
    async with wx.FileStore(tmp_path / "state") as store:
        async with wx.open_monitor(ilink_client, booking, store=store) as monitor:
            fake_ilink.inject_text(user, "2027-01-15")
            await until(lambda: len(fake_ilink.sends) == 3)
            await monitor.wait_idle()
        assert await store.kv_items(ilink_client.account_id, "state") == {}
    assert fake_ilink.sent_texts(user) == ["name?", "date?", "Ann on 2027-01-15"]
