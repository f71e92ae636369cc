"""Chats and the fault panel against a bot running in-process (fake transport)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
import trio

from tests.playground.echo_media_bot import echo
from weixin_trio._playground.chats import WINDOW_QUOTA
from weixin_trio._playground.faults import PRESETS
from weixin_trio._playground.runner import Playground
from weixin_trio.testing import FakeRequest, RecordedSend

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from trio.testing import MockClock

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2f5a1a50000000049454e44ae426082"
)


@pytest.fixture
async def playground() -> AsyncIterator[Playground]:
    pg = Playground()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pg.run_bot, echo)
        yield pg
        nursery.cancel_scope.cancel()


def events(pg: Playground, kind: str, **match: Any) -> list[dict[str, Any]]:
    return [
        e
        for e in pg.hub.events
        if e["type"] == kind and all(e.get(k) == v for k, v in match.items())
    ]


async def wait_for(pg: Playground, kind: str, count: int = 1, **match: Any) -> list[dict[str, Any]]:
    with trio.fail_after(60):
        while len(found := events(pg, kind, **match)) < count:
            await pg.hub.wait_after(len(pg.hub.events))
    return found


async def test_a_text_gets_its_echo_a_run_typing_and_a_window(
    playground: Playground, autojump_clock: MockClock
) -> None:
    pg = playground
    pg.chats.send_text("alice@im.wechat", "hi")
    [reply] = await wait_for(pg, "reply", chat="u:alice@im.wechat")
    assert reply["kind"] == "text"
    assert reply["text"] == "echo: hi"
    progress = events(pg, "progress", chat="u:alice@im.wechat")
    assert [p["status"] for p in progress] == ["running", "completed"]
    assert {p["run_id"] for p in progress} == {reply["run_id"]}
    await wait_for(pg, "typing", user="alice@im.wechat", on=False)
    assert events(pg, "typing", user="alice@im.wechat")[0]["on"] is True
    window = events(pg, "window", user="alice@im.wechat")[-1]
    assert window["open"] is True
    assert window["remaining"] == WINDOW_QUOTA - 3  # two progress items and the answer
    assert not events(pg, "reply", chat="u:bob@im.wechat")


async def test_an_image_goes_through_the_cdn_and_comes_back(
    playground: Playground, autojump_clock: MockClock
) -> None:
    pg = playground
    pg.chats.send_media("bob@im.wechat", "image", PNG, "dot.png")
    [sent] = events(pg, "message", chat="u:bob@im.wechat")
    entry = pg.chats.media.get(sent["media"])
    assert entry is not None
    assert entry.load() == PNG
    [reply] = await wait_for(pg, "reply", chat="u:bob@im.wechat")
    assert reply["kind"] == "image"
    back = pg.chats.media.get(reply["media"])
    assert back is not None
    assert back.load() == PNG  # decrypted from the fake CDN, where the bot uploaded it


async def test_a_file_comes_back_with_its_name(
    playground: Playground, autojump_clock: MockClock
) -> None:
    pg = playground
    pg.chats.send_media("bob@im.wechat", "file", b"a,b\n1,2\n", "table.csv")
    [reply] = await wait_for(pg, "reply", chat="u:bob@im.wechat")
    assert (reply["kind"], reply["name"]) == ("file", "table.csv")
    entry = pg.chats.media.get(reply["media"])
    assert entry is not None
    assert entry.load() == b"a,b\n1,2\n"


async def test_a_group_reply_lands_in_the_group_not_the_direct_chat(
    playground: Playground, autojump_clock: MockClock
) -> None:
    pg = playground
    group = pg.chats.add_group("Team", ["alice@im.wechat", "bob@im.wechat"])
    pg.chats.send_text("bob@im.wechat", "in the group", group=group)
    [reply] = await wait_for(pg, "reply", chat=f"g:{group}")
    assert reply["to"] == "bob@im.wechat"
    assert reply["text"] == "echo: in the group"
    assert not events(pg, "reply", chat="u:bob@im.wechat")
    delivered = pg.fake.default.delivered[-1]
    assert delivered["group_id"] == group


async def test_users_and_groups_are_checked(
    playground: Playground, autojump_clock: MockClock
) -> None:
    pg = playground
    assert pg.chats.add_user("Carol") == "carol@im.wechat"
    assert pg.chats.add_user("Carol") == "carol@im.wechat"  # idempotent
    assert len(events(pg, "user", user="carol@im.wechat")) == 1
    with pytest.raises(ValueError, match="unknown user"):
        pg.chats.send_text("nobody@im.wechat", "hi")
    with pytest.raises(ValueError, match="known members"):
        pg.chats.add_group("x", ["nobody@im.wechat"])
    group = pg.chats.add_group("Pair", ["alice@im.wechat"])
    with pytest.raises(ValueError, match="not in group"):
        pg.chats.send_text("carol@im.wechat", "hi", group=group)
    with pytest.raises(ValueError, match="kind must be"):
        pg.chats.send_media("carol@im.wechat", "sticker", b"x", "x")
    assert pg.chats.window("carol@im.wechat")["open"] is False


@pytest.mark.parametrize("preset", sorted(PRESETS))
async def test_each_fault_is_seen_and_the_bot_recovers_when_it_is_off(
    playground: Playground, autojump_clock: MockClock, preset: str
) -> None:
    pg = playground
    pg.panel.set(preset, True)
    assert [f["on"] for f in pg.panel.state() if f["name"] == preset] == [True]
    pg.chats.send_text("alice@im.wechat", "during the fault")
    await wait_for(pg, "fault_hit")
    await trio.sleep(5)
    pg.panel.set(preset, False)
    assert pg.fake.faults.sticky == {}
    pg.chats.send_text("alice@im.wechat", "after the fault")
    await wait_for(pg, "reply", chat="u:alice@im.wechat", text="echo: after the fault")


async def test_fault_switches_combine_and_unknown_ones_are_refused(
    playground: Playground, autojump_clock: MockClock
) -> None:
    pg = playground
    pg.panel.set("http500", True)
    pg.panel.set("throttle", True)
    assert set(pg.fake.faults.sticky) == {"getupdates", "sendmessage"}
    pg.panel.set("http500", False)
    assert set(pg.fake.faults.sticky) == {"sendmessage"}
    with pytest.raises(KeyError):
        pg.panel.set("meteor", True)


def test_the_send_window_closes_after_ten_sends_or_a_day() -> None:
    pg = Playground()
    user = "alice@im.wechat"
    assert pg.chats.window(user)["reason"] == "no message yet"
    pg.chats.send_text(user, "hi")
    token = pg.fake.default.context_tokens[user]
    now = time.time()
    assert pg.chats.window(user, now)["remaining"] == WINDOW_QUOTA
    assert pg.chats.window(user, now + 25 * 3600)["reason"] == "expired"
    for n in range(WINDOW_QUOTA):
        send = RecordedSend(user, f"c{n}", token, "x", [], None, n, True, pg.fake.token, 0.0)
        pg.fake.send_log.record(send)
    pg.chats.observe(FakeRequest("POST", "/", {}, {}, b""))
    window = [e for e in pg.hub.events if e["type"] == "window"][-1]
    assert (window["open"], window["remaining"], window["reason"]) == (False, 0, "quota")
    pg.chats.send_text(user, "again")  # a new message, a new token: open again
    assert pg.chats.window(user)["remaining"] == WINDOW_QUOTA
