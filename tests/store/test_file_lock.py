"""One writer per account directory; readers never write.

A writer ``FileStore`` holds an ``flock`` on ``<account dir>/lock`` from ``load`` until
``aclose`` (or its process dies); a second writer, in this process or another, gets
``StoreLockedError`` naming the holder's pid. ``FileStore(path, read_only=True)``
takes no lock and leaves every byte of the directory as it was.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio

import weixin_trio as wx
from weixin_trio.store import (
    DeadLetter,
    JournalEntry,
    OutboxEntry,
    StoreError,
    StoreLockedError,
    _file_read,
)

ACCOUNT = "bot1@im.bot"
SRC = str(Path(__file__).resolve().parents[2] / "src")

HOLDER = textwrap.dedent(
    """
    import sys, trio, weixin_trio as wx

    async def main() -> None:
        store = wx.FileStore(sys.argv[1])
        await store.load(sys.argv[2])
        await store.accept(sys.argv[2], cursor="child", entries=[], context_tokens={})
        print("ready", flush=True)
        await trio.sleep_forever()

    trio.run(main)
    """
)


def entry(mid: int) -> JournalEntry:
    return JournalEntry(mid, {"message_id": mid, "text": f"m{mid} \ud800"})


async def start_holder(root: Path) -> trio.Process:
    """A process that loads ``ACCOUNT`` for writing and keeps it."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-c", HOLDER, str(root), ACCOUNT],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    assert proc.stdout is not None
    with trio.fail_after(20):
        seen = b""
        while b"ready" not in seen:
            chunk = await proc.stdout.receive_some(100)
            assert chunk, "the holder exited before it was ready"
            seen += chunk
    return proc


async def test_second_store_in_the_same_process_is_refused(tmp_path: Path) -> None:
    async with wx.FileStore(tmp_path) as first:
        await first.load(ACCOUNT)
        second = wx.FileStore(tmp_path)
        with pytest.raises(StoreLockedError) as caught:
            await second.load(ACCOUNT)
        assert f"pid {os.getpid()}" in str(caught.value)
        assert str(first.account_dir(ACCOUNT)) in str(caught.value)
        with pytest.raises(StoreError, match="not loaded"):  # and it cannot write either
            await second.accept(ACCOUNT, cursor="x", entries=[], context_tokens={})
        await first.load(ACCOUNT)  # the holder itself may reload (a monitor restart)
        await first.accept(ACCOUNT, cursor="c1", entries=[entry(1)], context_tokens={})
        await second.load("other@im.bot")  # other accounts are not locked
        await second.aclose()
    # aclose released it.
    async with wx.FileStore(tmp_path) as third:
        state = await third.load(ACCOUNT)
    assert state.cursor == "c1"
    lock = wx.FileStore(tmp_path).account_dir(ACCOUNT) / "lock"
    assert oct(lock.stat().st_mode & 0o777) == "0o600"


async def test_dropped_store_releases_its_lock(tmp_path: Path) -> None:
    store = wx.FileStore(tmp_path)
    await store.load(ACCOUNT)
    del store  # never closed: the finalizer closes the lock file
    async with wx.FileStore(tmp_path) as again:
        await again.load(ACCOUNT)


async def test_another_process_is_refused_until_it_dies(tmp_path: Path) -> None:
    proc = await start_holder(tmp_path)
    try:
        store = wx.FileStore(tmp_path)
        with pytest.raises(StoreLockedError, match=rf"\(pid {proc.pid}\)"):
            await store.load(ACCOUNT)
        # A reader works next to it and sees what it wrote.
        reader = wx.FileStore(tmp_path, read_only=True)
        assert (await reader.load(ACCOUNT)).cursor == "child"
    finally:
        proc.send_signal(signal.SIGKILL)
        with trio.fail_after(20):
            await proc.wait()
    # SIGKILL released the lock (the kernel closes the dead process's files).
    async with store:
        state = await store.load(ACCOUNT)
    assert state.cursor == "child"


async def test_cli_run_on_a_locked_dir_exits_with_one_line(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    async with wx.FileStore(state) as store:
        await store.save_account(
            ACCOUNT, {"token": "t", "base_url": "http://127.0.0.1:9", "created_at": 0.0}
        )
        await store.load(ACCOUNT)
        (tmp_path / "lockbot.py").write_text("async def handle(msg):\n    pass\n")
        with trio.fail_after(60):
            result = await trio.run_process(
                [
                    sys.executable,
                    "-m",
                    "weixin_trio",
                    "run",
                    "lockbot:handle",
                    "--state-dir",
                    state,
                ],
                cwd=tmp_path,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env={**os.environ, "PYTHONPATH": SRC},
            )
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert f"locked by another writer (pid {os.getpid()})" in err
    assert str(store.account_dir(ACCOUNT)) in err


def fingerprint(root: Path) -> dict[str, tuple[str, int, int, int]]:
    """Every path under ``root``: content hash, mode, size and mtime."""
    found = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        found[str(path.relative_to(root))] = (digest, st.st_mode, st.st_size, st.st_mtime_ns)
    return found


async def test_read_only_load_leaves_every_byte_as_it_was(tmp_path: Path) -> None:
    """Everything a writer's load would change (tail, stale files, compaction) is there."""
    async with wx.FileStore(tmp_path, compact_every=1000) as writer:
        await writer.load(ACCOUNT)
        await writer.save_account(ACCOUNT, {"token": "t"})
        await writer.accept(
            ACCOUNT, cursor="c1", entries=[entry(1), entry(2)], context_tokens={"u": "tok"}
        )
        await writer.dead_letter(ACCOUNT, DeadLetter(1, entry(1).raw, 3, "E", 1.0))
        await writer.outbox_put(ACCOUNT, OutboxEntry("o", "u", "later", 2.0))
        await writer.mark_done(ACCOUNT, [2])
        await writer.flush(ACCOUNT)
        directory = writer.account_dir(ACCOUNT)
        journal = next(directory.glob("journal-*.log"))
        with journal.open("ab") as f:
            f.write(b'{"t":"a","c":"torn"')  # a crash mid-append
        with (directory / "dead-letters.jsonl").open("ab") as f:
            f.write(b'{"id":')
        (directory / "journal-0.log").write_text("an old generation")
        (directory / ".snapshot.json.dead.tmp").write_text("partial")
        before = fingerprint(tmp_path)

        reader = wx.FileStore(tmp_path, read_only=True)
        state = await reader.load(ACCOUNT)
        assert (await reader.load("never@im.bot")).pending == ()
        assert [a["account_id"] for a in await reader.load_accounts()] == [ACCOUNT]
        await reader.flush(ACCOUNT)
        for write in (
            reader.accept(ACCOUNT, cursor="x", entries=[], context_tokens={}),
            reader.mark_done(ACCOUNT, [1]),
            reader.record_failure(ACCOUNT, 1, 1),
            reader.dead_letter(ACCOUNT, DeadLetter(2, {}, 1, "E", 1.0)),
            reader.outbox_put(ACCOUNT, OutboxEntry("p", "u", "x", 1.0)),
            reader.outbox_remove(ACCOUNT, "o"),
            reader.save_account("x@im.bot", {}),
            reader.remove_account(ACCOUNT),
        ):
            with pytest.raises(StoreError, match="read-only"):
                await write
        await reader.aclose()
        assert fingerprint(tmp_path) == before
    assert state.cursor == "c1"
    assert state.pending == ()  # 1 dead-lettered, 2 done
    assert [d.message_id for d in state.dead_letters] == [1]
    assert [o.entry_id for o in state.outbox] == ["o"]
    assert state.context_tokens == {"u": "tok"}


async def test_read_only_load_of_a_missing_root_creates_nothing(tmp_path: Path) -> None:
    reader = wx.FileStore(tmp_path / "nowhere", read_only=True)
    assert (await reader.load(ACCOUNT)).cursor == ""
    assert await reader.load_accounts() == []
    assert not (tmp_path / "nowhere").exists()


async def test_read_only_load_follows_a_concurrent_compaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer compacts between the reader's snapshot read and its journal read."""
    async with wx.FileStore(tmp_path, compact_every=2) as writer:
        await writer.load(ACCOUNT)
        await writer.accept(ACCOUNT, cursor="c1", entries=[entry(1)], context_tokens={})

        async def compact_twice() -> None:  # the journal the reader is about to read goes
            for mid in (2, 3, 4, 5):
                await writer.accept(
                    ACCOUNT, cursor=f"c{mid}", entries=[entry(mid)], context_tokens={}
                )

        real_read = _file_read._read_bytes
        raced: list[Path] = []

        def racing_read(path: Path) -> bytes | None:
            if path.name.startswith("journal-") and not raced:
                raced.append(path)
                trio.from_thread.run(compact_twice)
            return real_read(path)

        monkeypatch.setattr(_file_read, "_read_bytes", racing_read)
        state = await wx.FileStore(tmp_path, read_only=True).load(ACCOUNT)
    assert raced
    assert not raced[0].exists()  # the generation it started from was deleted
    assert state.cursor == "c5"
    assert [e.message_id for e in state.pending] == [1, 2, 3, 4, 5]
