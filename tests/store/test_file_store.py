"""FileStore: durability, torn writes, corruption, compaction, permissions."""

from __future__ import annotations

import json
import os
import stat
from typing import TYPE_CHECKING

import pytest

import weixin_trio as wx
from weixin_trio.store import DeadLetter, JournalEntry, StoreError, account_key

if TYPE_CHECKING:
    from pathlib import Path

ACCOUNT = "bot1@im.bot"


def entry(mid: int, text: str = "x") -> JournalEntry:
    return JournalEntry(
        mid, {"message_id": mid, "item_list": [{"type": 1, "text_item": {"text": text}}]}
    )


async def test_round_trip_and_reload(tmp_path: Path) -> None:
    store = wx.FileStore(tmp_path)
    state = await store.load(ACCOUNT)
    assert state.cursor == ""
    await store.accept(
        ACCOUNT, cursor="c1", entries=[entry(1), entry(2)], context_tokens={"u": "t1"}
    )
    await store.mark_done(ACCOUNT, [1])
    await store.record_failure(ACCOUNT, 2, 1)
    again = await wx.FileStore(tmp_path, read_only=True).load(ACCOUNT)
    assert again.cursor == "c1"
    assert [(e.message_id, e.attempts) for e in again.pending] == [(2, 1)]
    assert again.pending[0].raw["message_id"] == 2
    assert again.seen_ids == (1, 2)
    assert again.context_tokens == {"u": "t1"}


async def test_files_are_private(tmp_path: Path) -> None:
    store = wx.FileStore(tmp_path / "root")
    await store.load(ACCOUNT)
    await store.accept(ACCOUNT, cursor="c", entries=[entry(1)], context_tokens={})
    directory = store.account_dir(ACCOUNT)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = list(directory.iterdir())
    assert files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


async def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    store = wx.FileStore(tmp_path)
    await store.load(ACCOUNT)
    await store.accept(ACCOUNT, cursor="c1", entries=[entry(1)], context_tokens={})
    journal = next(store.account_dir(ACCOUNT).glob("journal-*.log"))
    record = json.dumps({"t": "a", "c": "c2", "m": [{"id": 2, "raw": {}}], "x": {}})
    with journal.open("ab") as f:
        f.write(record[: len(record) // 2].encode())  # SIGKILL mid-append
    await store.aclose()
    state = await wx.FileStore(tmp_path).load(ACCOUNT)
    assert state.cursor == "c1"
    assert [e.message_id for e in state.pending] == [1]


async def test_corrupt_middle_line_is_reported_with_its_path(tmp_path: Path) -> None:
    store = wx.FileStore(tmp_path)
    await store.load(ACCOUNT)
    journal = next(store.account_dir(ACCOUNT).glob("journal-*.log"))
    journal.write_bytes(b'{"t":"a","c":"c1","m":[],"x":{}}\nnot json\n{"t":"d","ids":[]}\n')
    with pytest.raises(StoreError, match=r"journal-\d+\.log, line 2"):
        await wx.FileStore(tmp_path, read_only=True).load(ACCOUNT)


async def test_corrupt_snapshot_is_reported(tmp_path: Path) -> None:
    store = wx.FileStore(tmp_path)
    await store.load(ACCOUNT)
    (store.account_dir(ACCOUNT) / "snapshot.json").write_text("{broken")
    with pytest.raises(StoreError, match=r"snapshot\.json"):
        await wx.FileStore(tmp_path, read_only=True).load(ACCOUNT)


async def test_compaction_keeps_state_and_bounds_the_journal(tmp_path: Path) -> None:
    store = wx.FileStore(tmp_path, compact_every=10, seen_window=25)
    await store.load(ACCOUNT)
    for mid in range(1, 101):
        await store.accept(ACCOUNT, cursor=f"c{mid}", entries=[entry(mid)], context_tokens={})
        if mid % 2 == 0:
            await store.mark_done(ACCOUNT, [mid])
    directory = store.account_dir(ACCOUNT)
    journals = list(directory.glob("journal-*.log"))
    assert len(journals) == 1
    assert len(journals[0].read_bytes().splitlines()) < 10
    state = await wx.FileStore(tmp_path, seen_window=25, read_only=True).load(ACCOUNT)
    assert state.cursor == "c100"
    assert [e.message_id for e in state.pending] == list(range(1, 101, 2))
    assert state.seen_ids == tuple(range(76, 101))  # bounded window, newest kept


async def test_dead_letters_survive_compaction(tmp_path: Path) -> None:
    store = wx.FileStore(tmp_path, compact_every=3)
    await store.load(ACCOUNT)
    await store.accept(ACCOUNT, cursor="c", entries=[entry(1), entry(2)], context_tokens={})
    await store.dead_letter(ACCOUNT, DeadLetter(1, entry(1).raw, 3, "RuntimeError('x')", 5.0))
    for mid in range(3, 10):
        await store.accept(ACCOUNT, cursor=f"c{mid}", entries=[entry(mid)], context_tokens={})
    state = await wx.FileStore(tmp_path, read_only=True).load(ACCOUNT)
    assert [d.message_id for d in state.dead_letters] == [1]
    assert state.dead_letters[0].error == "RuntimeError('x')"
    assert 1 not in [e.message_id for e in state.pending]


async def test_stale_files_from_an_interrupted_compaction_are_removed(tmp_path: Path) -> None:
    store = wx.FileStore(tmp_path)
    await store.load(ACCOUNT)
    await store.accept(ACCOUNT, cursor="c1", entries=[entry(1)], context_tokens={})
    directory = store.account_dir(ACCOUNT)
    (directory / ".snapshot.json.dead.tmp").write_text("partial")
    (directory / "journal-0.log").write_text("old generation")
    await store.aclose()
    async with wx.FileStore(tmp_path) as again:
        state = await again.load(ACCOUNT)
    assert state.cursor == "c1"
    names = sorted(p.name for p in directory.iterdir())
    journal = next(n for n in names if n.startswith("journal-"))
    assert names == [journal, "lock", "snapshot.json"]


async def test_unloaded_account_is_an_error(tmp_path: Path) -> None:
    store = wx.FileStore(tmp_path)
    with pytest.raises(StoreError, match="not loaded"):
        await store.accept(ACCOUNT, cursor="c", entries=[], context_tokens={})


async def test_write_failure_raises_store_error(tmp_path: Path) -> None:
    store = wx.FileStore(tmp_path)
    await store.load(ACCOUNT)
    directory = store.account_dir(ACCOUNT)
    if os.geteuid() == 0:
        # root ignores permissions: remove the directory instead
        for path in directory.iterdir():
            path.unlink()
        directory.rmdir()
        directory.write_text("not a directory")
    else:
        directory.chmod(0o500)
        for path in directory.iterdir():
            path.chmod(0o400)
    with pytest.raises(StoreError):
        await store.accept(ACCOUNT, cursor="c", entries=[entry(1)], context_tokens={})


@pytest.mark.parametrize(
    ("account", "expected"),
    [("abc@im.bot", "abc-im-bot"), ("ABC@im.bot", "abc-im-bot-")],
)
def test_account_key(account: str, expected: str) -> None:
    assert account_key(account).startswith(expected)


@pytest.mark.parametrize("hostile", ["../../etc", "a/b", "..", "", "\x00", "C:\\x"])
def test_account_key_is_path_safe(hostile: str) -> None:
    key = account_key(hostile)
    assert key
    assert "/" not in key
    assert "\\" not in key
    assert key not in (".", "..")
    assert account_key(hostile) != account_key(hostile + "x")
