"""FileStore keeps its append handles open, and still notices files changed under it."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

import pytest

import weixin_trio as wx
from weixin_trio.store import JournalEntry, StoreError, _file as store_file

if TYPE_CHECKING:
    from pathlib import Path

ACCOUNT = "bot1@im.bot"


def entry(mid: int) -> JournalEntry:
    return JournalEntry(mid, {"message_id": mid, "item_list": []})


def _journal(store: wx.FileStore) -> Path:
    (journal,) = store.account_dir(ACCOUNT).glob("journal-*.log")
    return journal


async def test_writes_reuse_one_handle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = wx.FileStore(tmp_path)
    await store.load(ACCOUNT)
    opens: list[str] = []
    real_open = os.open

    def counting_open(path: str | os.PathLike[str], flags: int, *args: int) -> int:
        opens.append(os.fspath(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", counting_open)
    for mid in range(1, 21):
        await store.accept(ACCOUNT, cursor=f"c{mid}", entries=[entry(mid)], context_tokens={})
        await store.mark_done(ACCOUNT, [mid])
    await store.flush(ACCOUNT)
    assert [p for p in opens if "journal-" in p] == [str(_journal(store))]  # 41 writes, one open
    monkeypatch.undo()
    await store.aclose()
    state = await wx.FileStore(tmp_path, read_only=True).load(ACCOUNT)
    assert state.cursor == "c20"
    assert state.pending == ()


async def test_journal_replaced_after_a_write_is_refused(tmp_path: Path) -> None:
    store = wx.FileStore(tmp_path)
    await store.load(ACCOUNT)
    await store.accept(ACCOUNT, cursor="c1", entries=[entry(1)], context_tokens={})
    journal = _journal(store)
    replacement = journal.with_name("other")
    replacement.write_bytes(journal.read_bytes() + b'{"t":"d","ids":[1]}\n')
    os.replace(replacement, journal)  # written by someone else: refused, not appended to
    with pytest.raises(StoreError, match="changed under the store"):
        await store.accept(ACCOUNT, cursor="c2", entries=[entry(2)], context_tokens={})
    await store.aclose()


async def test_journal_replaced_by_a_same_length_file_is_not_written(tmp_path: Path) -> None:
    store = wx.FileStore(tmp_path)
    await store.load(ACCOUNT)
    await store.accept(ACCOUNT, cursor="c1", entries=[entry(1)], context_tokens={})
    journal = _journal(store)
    body = journal.read_bytes()
    journal.unlink()
    journal.write_bytes(body)  # a new file of the same length: the old handle is stale
    await store.mark_done(ACCOUNT, [1])
    await store.aclose()
    # The mark went into the file on disk, not into the unlinked one.
    assert journal.read_bytes() == body + b'{"t":"d","ids":[1]}\n'


async def test_journal_removed_after_a_write_is_an_error(tmp_path: Path) -> None:
    store = wx.FileStore(tmp_path)
    await store.load(ACCOUNT)
    await store.accept(ACCOUNT, cursor="c1", entries=[entry(1)], context_tokens={})
    _journal(store).unlink()
    with pytest.raises(StoreError):
        await store.accept(ACCOUNT, cursor="c2", entries=[entry(2)], context_tokens={})
    await store.aclose()


async def test_handles_follow_compaction(tmp_path: Path) -> None:
    store = wx.FileStore(tmp_path, compact_every=5)
    await store.load(ACCOUNT)
    for mid in range(1, 31):
        await store.accept(ACCOUNT, cursor=f"c{mid}", entries=[entry(mid)], context_tokens={})
        if mid % 3 == 0:
            await store.mark_done(ACCOUNT, [mid])
    assert len(list(store.account_dir(ACCOUNT).glob("journal-*.log"))) == 1
    await store.aclose()
    state = await wx.FileStore(tmp_path, read_only=True).load(ACCOUNT)
    assert state.cursor == "c30"
    assert [e.message_id for e in state.pending] == [m for m in range(1, 31) if m % 3]
    fds = os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []
    links = [os.path.realpath(f"/proc/self/fd/{fd}") for fd in fds]
    assert not [link for link in links if str(tmp_path) in link]  # aclose closed them all


def _open_journals(root: Path) -> set[str]:
    """The accounts (directory names) with a journal open in this process."""
    names = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/self/fd/{fd}")
            if link.startswith(str(root)) and "journal-" in link:
                names.add(os.path.basename(os.path.dirname(link)))
    return names


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
async def test_only_the_latest_writers_keep_their_journal_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A parked account holds its lock only: thousands of accounts must not hold two fds.
    monkeypatch.setattr(store_file, "HANDLE_ACCOUNTS", 2)
    store = wx.FileStore(tmp_path)
    accounts = [f"bot{i}@im.bot" for i in range(5)]
    for account in accounts:
        await store.load(account)
        await store.accept(account, cursor="c1", entries=[entry(1)], context_tokens={})
    keys = [store.account_dir(a).name for a in accounts]
    assert _open_journals(tmp_path) == set(keys[-2:])
    await store.mark_done(accounts[0], [1])  # a closed handle is opened again
    assert _open_journals(tmp_path) == {keys[0], keys[-1]}
    await store.aclose()
    assert _open_journals(tmp_path) == set()
    for account in accounts:
        state = await wx.FileStore(tmp_path, read_only=True).load(account)
        assert state.cursor == "c1"
    assert (await wx.FileStore(tmp_path, read_only=True).load(accounts[0])).pending == ()
