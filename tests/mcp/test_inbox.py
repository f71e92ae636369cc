"""The MCP inbox: bounded, counted, handed out once, kept across restarts."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
import trio

import weixin_trio as wx
from weixin_trio._mcp.inbox import Inbox

from .._helpers import SRC

if TYPE_CHECKING:
    from pathlib import Path


async def test_the_cap_drops_the_oldest_and_counts_them() -> None:
    store = wx.MemoryStore()
    inbox = await Inbox.load(store, "acct", cap=3)
    for i in range(1, 6):
        assert await inbox.add("a@im.wechat", f"m{i}", i, at=float(i))
    assert [m["text"] for m in inbox.messages()] == ["m3", "m4", "m5"]
    assert inbox.dropped == 2
    again = await Inbox.load(store, "acct", cap=3)
    assert [m["seq"] for m in again.messages()] == [3, 4, 5]
    assert again.dropped == 2


async def test_a_restart_keeps_unread_messages_and_the_read_mark(tmp_path: Path) -> None:
    async with wx.FileStore(tmp_path) as store:
        inbox = await Inbox.load(store, "acct")
        await inbox.add("a@im.wechat", "one", 1)
        assert [m["text"] for m in await inbox.take_unread()] == ["one"]
        await inbox.add("b@im.wechat", "two", 2)
    async with wx.FileStore(tmp_path) as store:
        inbox = await Inbox.load(store, "acct")
        assert inbox.unread == 1
        assert [m["text"] for m in await inbox.take_unread()] == ["two"]
        assert await inbox.take_unread() == []
        assert [m["text"] for m in inbox.messages()] == ["one", "two"]


async def test_a_redelivered_message_is_stored_once() -> None:
    inbox = await Inbox.load(wx.MemoryStore(), "acct")
    assert await inbox.add("a@im.wechat", "hi", 7)
    assert not await inbox.add("a@im.wechat", "hi", 7)
    assert len(inbox.messages()) == 1


async def test_wait_unread_wakes_on_a_new_message(
    autojump_clock: trio.abc.Clock,
) -> None:
    inbox = await Inbox.load(wx.MemoryStore(), "acct")
    with trio.move_on_after(5) as waited:
        await inbox.wait_unread()
    assert waited.cancelled_caught
    assert await inbox.take_unread() == []
    got: list[list[dict[str, object]]] = []
    async with trio.open_nursery() as nursery:

        async def wait() -> None:
            await inbox.wait_unread()
            got.append(await inbox.take_unread())

        nursery.start_soon(wait)
        await trio.sleep(1)
        assert got == []
        await inbox.add("a@im.wechat", "late", 3)
    assert [m["text"] for m in got[0]] == ["late"]


async def test_filters_and_conversations() -> None:
    inbox = await Inbox.load(wx.MemoryStore(), "acct")
    await inbox.add("a@im.wechat", "1", 1, at=10.0)
    await inbox.add("b@im.wechat", "2", 2, at=20.0)
    await inbox.add("a@im.wechat", "3", 3, at=30.0)
    assert [m["text"] for m in inbox.messages("a@im.wechat")] == ["1", "3"]
    assert [m["text"] for m in inbox.messages(since=1)] == ["2", "3"]
    assert inbox.conversations() == [
        {"user": "a@im.wechat", "count": 2, "last_time": 30.0},
        {"user": "b@im.wechat", "count": 1, "last_time": 20.0},
    ]
    with pytest.raises(ValueError, match="cap"):
        Inbox(wx.MemoryStore(), "acct", cap=0)


def test_weixin_trio_and_the_cli_do_not_import_mcp() -> None:
    code = (
        "import sys, weixin_trio, weixin_trio._cli.app, weixin_trio._mcp.inbox;"
        " assert 'mcp' not in sys.modules, 'mcp imported'"
    )
    subprocess.run(
        [sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(SRC)}
    )
