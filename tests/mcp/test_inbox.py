"""The MCP inbox: bounded, counted, handed out once, kept across restarts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
import trio

import weixin_trio as wx
from weixin_trio._mcp.inbox import DEFAULT_CAP, PAGE, Inbox

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


class CountingStore:
    """A MemoryStore's key-value API that records the size of every document written."""

    def __init__(self) -> None:
        self.store = wx.MemoryStore()
        self.written: list[int] = []

    async def kv_get(self, account: str, namespace: str, key: str) -> Any:
        return await self.store.kv_get(account, namespace, key)

    async def kv_put(self, account: str, namespace: str, key: str, value: Any) -> None:
        self.written.append(len(json.dumps(value)))
        await self.store.kv_put(account, namespace, key, value)

    async def kv_delete(self, account: str, namespace: str, key: str) -> bool:
        return await self.store.kv_delete(account, namespace, key)

    async def kv_items(self, account: str, namespace: str) -> dict[str, Any]:
        return await self.store.kv_items(account, namespace)


async def test_each_message_writes_a_small_document_however_full_the_inbox() -> None:
    store = CountingStore()
    inbox = await Inbox.load(store, "acct")
    text = "x" * 100
    for i in range(1, DEFAULT_CAP + 301):
        await inbox.add("a@im.wechat", text, i, at=float(i))
    assert len(inbox.messages()) == DEFAULT_CAP
    assert max(store.written) < (PAGE + 1) * 200  # one page, never the whole inbox
    store.written.clear()
    assert len(await inbox.take_unread()) == DEFAULT_CAP
    assert store.written == [len(json.dumps(DEFAULT_CAP + 300))]  # only the read mark


@pytest.mark.parametrize("cap", [1, 3, PAGE, 150, 250])
async def test_the_ring_of_pages_keeps_the_newest_messages_across_restarts(
    tmp_path: Path, cap: int
) -> None:
    async with wx.FileStore(tmp_path) as store:
        inbox = await Inbox.load(store, "acct", cap=cap)
        for i in range(1, 3 * cap + PAGE + 8):
            await inbox.add(f"u{i % 3}@im.wechat", f"m{i}", i, at=float(i))
            if i == cap + 5:
                await inbox.take_unread()
        expected = [m["seq"] for m in inbox.messages()]
        total = 3 * cap + PAGE + 7
        assert expected == list(range(total - cap + 1, total + 1))
        assert inbox.dropped == total - cap
    async with wx.FileStore(tmp_path) as store:
        again = await Inbox.load(store, "acct", cap=cap)
        assert [m["seq"] for m in again.messages()] == expected
        assert again.dropped == total - cap
        assert again.unread == cap
        assert await again.add("u@im.wechat", "next", total + 1)
        assert again.messages()[-1]["seq"] == total + 1
        assert not await again.add("u@im.wechat", "dup", total + 1)  # still deduplicated
