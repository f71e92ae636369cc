"""FileStore's key-value documents: files of their own, other writers, faults.

The bot holds the journal's writer lock; ``weixin-trio pair approve`` (another
process) still changes the documents, and the bot sees the change on its next read.
A failed write leaves the old document; a reader sees the old or the new one.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
from typing import TYPE_CHECKING

import pytest
import trio

import weixin_trio as wx
from weixin_trio.store import StoreError, StoreUnavailableError
from weixin_trio.store._kv_file import kv_put as blocking_put, kv_read

from .faults import KINDS, FaultyOps, applicable

if TYPE_CHECKING:
    from pathlib import Path

ACCOUNT = "bot1@im.bot"
SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")


async def test_layout_and_modes(tmp_path: Path) -> None:
    async with wx.FileStore(tmp_path / "state") as store:
        await store.kv_put(ACCOUNT, "access.allow", "u@im.wechat", {"at": 1.0, "s": "你"})
        directory = store.account_dir(ACCOUNT) / "kv"
    document = directory / "access.allow.json"
    assert json.loads(document.read_bytes()) == {"u@im.wechat": {"at": 1.0, "s": "你"}}
    assert document.read_bytes().isascii()
    assert stat.S_IMODE(document.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert sorted(p.name for p in directory.iterdir()) == ["access.allow.json", "access.allow.lock"]


async def test_another_writer_while_the_bot_holds_the_journal(tmp_path: Path) -> None:
    root = tmp_path / "state"
    async with wx.FileStore(root) as bot:
        await bot.load(ACCOUNT)  # the writer lock of the journal
        with pytest.raises(wx.StoreLockedError):
            async with wx.FileStore(root) as other:
                await other.load(ACCOUNT)
        async with wx.FileStore(root) as cli:  # no load: the documents only
            await cli.kv_put(ACCOUNT, "ns", "k", "from the cli")
        assert await bot.kv_get(ACCOUNT, "ns", "k") == "from the cli"
        # ... and from another process, too
        code = (
            "import trio, weixin_trio as wx\n"
            "async def main():\n"
            f"    async with wx.FileStore({str(root)!r}) as s:\n"
            f"        await s.kv_put({ACCOUNT!r}, 'ns', 'k2', [1, 2])\n"
            "trio.run(main)\n"
        )
        env = {**os.environ, "PYTHONPATH": SRC}
        await trio.run_process([sys.executable, "-c", code], env=env)
        assert await bot.kv_items(ACCOUNT, "ns") == {"k": "from the cli", "k2": [1, 2]}
        await bot.kv_put(ACCOUNT, "ns", "k", "bot")
    async with wx.FileStore(root, read_only=True) as reader:
        assert await reader.kv_items(ACCOUNT, "ns") == {"k": "bot", "k2": [1, 2]}


async def test_read_only_reads_and_refuses_writes(tmp_path: Path) -> None:
    root = tmp_path / "state"
    async with wx.FileStore(root, read_only=True) as reader:
        assert await reader.kv_get(ACCOUNT, "ns", "k") is None
        assert await reader.kv_items(ACCOUNT, "ns") == {}
        with pytest.raises(StoreError, match="read-only"):
            await reader.kv_put(ACCOUNT, "ns", "k", 1)
        with pytest.raises(StoreError, match="read-only"):
            await reader.kv_delete(ACCOUNT, "ns", "k")
    assert not root.exists()  # a reader creates nothing


async def test_delete_of_nothing_creates_nothing(tmp_path: Path) -> None:
    async with wx.FileStore(tmp_path / "state") as store:
        assert await store.kv_delete(ACCOUNT, "ns", "k") is False
    assert not (tmp_path / "state").exists()


def test_concurrent_writers_lose_no_change(tmp_path: Path) -> None:
    """Threads with their own lock handles, as separate processes would have."""
    account_dir = tmp_path / "acct"

    def writer(n: int) -> None:
        for i in range(25):
            blocking_put(account_dir, "ns", f"{n}-{i}", i)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(kv_read(account_dir, "ns")) == 100


async def test_corrupt_document_is_named(tmp_path: Path) -> None:
    async with wx.FileStore(tmp_path / "state") as store:
        await store.kv_put(ACCOUNT, "ns", "k", 1)
        path = store.account_dir(ACCOUNT) / "kv" / "ns.json"
        path.write_text("[1, 2]")
        with pytest.raises(StoreError, match=f"corrupt key-value document {path}"):
            await store.kv_get(ACCOUNT, "ns", "k")
        path.write_text("{not json")
        with pytest.raises(StoreError, match="corrupt"):
            await store.kv_put(ACCOUNT, "ns", "k", 2)
        assert path.read_text() == "{not json"  # never overwritten


async def _points(path: Path, op: str) -> list[str]:
    async with wx.FileStore(path) as store:
        await store.kv_put(ACCOUNT, "ns", "keep", "old")
        await store.kv_put(ACCOUNT, "ns", "k", "old")
        with FaultyOps().installed() as dry:
            await _run(store, op)
    return dry.calls


async def _run(store: wx.FileStore, op: str) -> None:
    if op == "put":
        await store.kv_put(ACCOUNT, "ns", "k", {"new": "\ud800 你"})
    elif op == "create":
        await store.kv_put(ACCOUNT, "other", "k", "new")
    else:
        assert await store.kv_delete(ACCOUNT, "ns", "k") is True


@pytest.mark.parametrize("op", ["put", "create", "delete"])
async def test_every_fault_at_every_point_leaves_the_old_document(tmp_path: Path, op: str) -> None:
    points = await _points(tmp_path / "dry", op)
    assert points.count("replace") == 1, points
    expected_new = {
        "put": {"ns": {"keep": "old", "k": {"new": "\ud800 你"}}, "other": {}},
        "create": {"ns": {"keep": "old", "k": "old"}, "other": {"k": "new"}},
        "delete": {"ns": {"keep": "old"}, "other": {}},
    }[op]
    old = {"ns": {"keep": "old", "k": "old"}, "other": {}}
    raised_count = 0
    for at, point in enumerate(points):
        for kind in KINDS:
            if not applicable(kind, point):
                continue
            path = tmp_path / f"{at}-{kind}"
            async with wx.FileStore(path) as store:
                await store.kv_put(ACCOUNT, "ns", "keep", "old")
                await store.kv_put(ACCOUNT, "ns", "k", "old")
                raised = None
                with FaultyOps(kind, at).installed() as faults:
                    try:
                        await _run(store, op)
                    except StoreError as exc:
                        raised = exc
                assert faults.fired
                seen = {ns: await store.kv_items(ACCOUNT, ns) for ns in ("ns", "other")}
                case = f"{op} {kind} at {at} ({point})"
                if raised is not None:
                    raised_count += 1
                    assert isinstance(raised, StoreUnavailableError), case
                    if at <= points.index("replace"):
                        assert seen == old, case  # nothing of the failed write is seen
                    else:  # the directory sync after the rename: renamed, maybe not durable
                        assert seen in (old, expected_new), case
                else:
                    assert seen == expected_new, case
                temps = [p.name for p in store.account_dir(ACCOUNT).glob("kv/.*")]
                assert temps == [], case  # no temp file left behind
                # the fault cleared: the same store works again
                await store.kv_put(ACCOUNT, "ns", "after", 1)
                assert await store.kv_get(ACCOUNT, "ns", "after") == 1
    assert raised_count
