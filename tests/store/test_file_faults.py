"""A write is complete, or it failed: faults at every write and sync point of FileStore.

For every store operation, a dry run numbers the call points (each ``write``,
``fsync``, ``fdatasync`` and ``replace``); then, at each point in turn, a short write, a
short write followed by ``ENOSPC``, ``ENOSPC`` and ``EIO`` are injected. Properties:

- an operation that returned normally is durable: a fresh store sees it;
- an operation that raised raised ``StoreUnavailableError`` (transient), left the files
  loadable and every earlier acknowledged write in place, and a synced write that
  raised is not there at all (the cursor did not move);
- once the fault clears, the same store keeps working, and its in-memory state never
  held the failed write (a compaction from memory would write it back).

A ``MemoryStore`` running the same operations is the model of the expected state.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any

import pytest

import weixin_trio as wx
from weixin_trio.store import (
    AccountState,
    DeadLetter,
    JournalEntry,
    OutboxEntry,
    StoreError,
    StoreUnavailableError,
)

from .faults import KINDS, FaultyOps, applicable

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    Op = Callable[[wx.Store], Awaitable[None]]

ACCOUNT = "bot1@im.bot"


def entry(mid: int) -> JournalEntry:
    text = f"message {mid}: 你好 \ud800 {10**40}"  # non-ASCII and a lone surrogate
    return JournalEntry(mid, {"message_id": mid, "item_list": [{"type": 1, "text": text}]})


async def baseline(store: wx.Store) -> None:
    """Acknowledged data written before the faulty operation (3 journal records)."""
    await store.load(ACCOUNT)
    await store.accept(
        ACCOUNT,
        cursor="c1",
        entries=[entry(1), entry(2), entry(3)],
        context_tokens={"u": "t1"},
        last_inbound={"u": 1.0},
    )
    await store.outbox_put(ACCOUNT, OutboxEntry("e1", "u", "one", 1.0))
    await store.outbox_put(ACCOUNT, OutboxEntry("e2", "u", "two 你", 2.0))
    await store.save_account("a@im.bot", {"token": "v1"})


async def follow_up(store: wx.Store) -> None:
    """Writes after the fault cleared; five records, so a compaction from memory runs."""
    await store.accept(ACCOUNT, cursor="c9", entries=[entry(9)], context_tokens={"w": "t9"})
    for _ in range(4):
        await store.mark_done(ACCOUNT, [])
    await store.flush(ACCOUNT)


async def op_accept(store: wx.Store) -> None:
    await store.accept(
        ACCOUNT, cursor="c2", entries=[entry(4), entry(5)], context_tokens={"u": "t2"}
    )


async def op_mark_done(store: wx.Store) -> None:
    await store.mark_done(ACCOUNT, [1, 2])
    await store.flush(ACCOUNT)


async def op_record_failure(store: wx.Store) -> None:
    await store.record_failure(ACCOUNT, 2, 1)
    await store.flush(ACCOUNT)


async def op_dead_letter(store: wx.Store) -> None:
    await store.dead_letter(ACCOUNT, DeadLetter(3, entry(3).raw, 3, "E \ud800", 5.0))


async def op_outbox_put(store: wx.Store) -> None:
    await store.outbox_put(ACCOUNT, OutboxEntry("e3", "v", "three \ud800", 3.0))


async def op_outbox_remove(store: wx.Store) -> None:
    await store.outbox_remove(ACCOUNT, "e1")
    await store.flush(ACCOUNT)


async def op_save_account(store: wx.Store) -> None:
    await store.save_account("a@im.bot", {"token": "v2"})


#: name -> (operation, compact_every, whether a raise means "not written at all")
OPERATIONS: dict[str, tuple[Op, int, bool]] = {
    "accept": (op_accept, 6, True),
    "mark_done": (op_mark_done, 6, False),  # the mark may be in the page cache
    "record_failure": (op_record_failure, 6, False),
    "dead_letter": (op_dead_letter, 6, True),
    "outbox_put": (op_outbox_put, 6, True),
    "outbox_remove": (op_outbox_remove, 6, False),
    "save_account": (op_save_account, 6, False),  # a failed directory fsync: renamed
    # the 4th record since the snapshot: the accept, then a compaction
    "compaction": (op_accept, 4, True),
}


async def model(op: Op | None) -> tuple[AccountState, list[dict[str, Any]]]:
    memory = wx.MemoryStore()
    await baseline(memory)
    if op is not None:
        await op(memory)
    await follow_up(memory)
    return await memory.load(ACCOUNT), await memory.load_accounts()


async def model_before_follow_up(op: Op | None) -> AccountState:
    memory = wx.MemoryStore()
    await baseline(memory)
    if op is not None:
        await op(memory)
    return await memory.load(ACCOUNT)


async def read(path: Path) -> tuple[AccountState, list[dict[str, Any]]]:
    reader = wx.FileStore(path, read_only=True)
    return await reader.load(ACCOUNT), await reader.load_accounts()


async def call_points(path: Path, op: Op, compact_every: int) -> list[str]:
    async with wx.FileStore(path, compact_every=compact_every) as store:
        await baseline(store)
        with FaultyOps().installed() as dry:
            await op(store)
    return dry.calls


async def run_case(
    path: Path, name: str, at: int, point: str, kind: str
) -> tuple[bool, AccountState]:
    """One faulty run; returns whether the operation raised, and the state after it."""
    op, compact_every, raise_means_absent = OPERATIONS[name]
    case = f"{name}: {kind} at call point {at} ({point})"
    without_op = await model_before_follow_up(None)
    with_op = await model_before_follow_up(op)
    final_without, accounts_without = await model(None)
    final_with, accounts_with = await model(op)
    store = wx.FileStore(path, compact_every=compact_every)
    try:
        await baseline(store)
        raised: Exception | None = None
        with FaultyOps(kind, at).installed() as faults:
            try:
                await op(store)
            except StoreError as exc:
                raised = exc
        assert faults.fired, case
        if raised is not None:
            assert isinstance(raised, StoreUnavailableError), f"{case}: {raised!r}"
        # What a restart would see right now.
        state, accounts = await read(path)
        if raised is None:
            assert state == with_op, f"{case}: returned, but a restart does not see it"
        elif raise_means_absent:
            assert state == without_op, f"{case}: raised, but left something behind"
        else:
            assert state in (without_op, with_op), f"{case}: raised and corrupted"
        got_op = state == with_op and with_op != without_op
        if name == "save_account":
            tokens = [a["token"] for a in accounts]
            got_op = tokens == [a["token"] for a in accounts_with]
            assert got_op or raised is not None, case
            assert tokens == [a["token"] for a in accounts_without] or got_op, case
        leftovers = [p.name for p in path.rglob("*.tmp")]
        assert not leftovers, f"{case}: temp files left: {leftovers}"
        # The fault cleared: the same store carries on.
        await follow_up(store)
        await store.save_account("b@im.bot", {"token": "b"})
    finally:
        await store.aclose()
    expected = final_with if got_op else final_without
    expected_accounts = [*(accounts_with if got_op else accounts_without), {"token": "b"}]
    state, accounts = await read(path)
    assert state == expected, f"{case}: after recovery"
    async with wx.FileStore(path) as again:  # a restarted writer
        assert await again.load(ACCOUNT) == expected, f"{case}: after a restart"
    assert [a["token"] for a in accounts] == [a["token"] for a in expected_accounts], case
    return raised is not None, state


@pytest.mark.parametrize("name", list(OPERATIONS))
async def test_every_fault_at_every_point(tmp_path: Path, name: str) -> None:
    op, compact_every, _ = OPERATIONS[name]
    points = await call_points(tmp_path / "dry", op, compact_every)
    assert points, f"{name} wrote nothing"
    if name == "compaction":
        assert "replace" in points, points  # the compaction really ran inside the op
    outcomes: dict[str, int] = {"raised": 0, "returned": 0}
    for at, point in enumerate(points):
        for kind in KINDS:
            if not applicable(kind, point):
                continue
            raised, _ = await run_case(tmp_path / f"{at}-{kind}", name, at, point, kind)
            outcomes["raised" if raised else "returned"] += 1
    assert outcomes["raised"], outcomes  # the injection reached the operation
    if name == "compaction":
        assert outcomes["returned"] > outcomes["raised"], outcomes  # compaction is best effort


async def test_failed_undo_refuses_writes_until_reloaded(tmp_path: Path) -> None:
    """A failed write whose truncation also failed: no more writes until a reload."""
    store = wx.FileStore(tmp_path)
    try:
        await baseline(store)
        faults = FaultyOps("short+enospc", 0)
        faults.fail_truncate = True
        with faults.installed():
            with pytest.raises(StoreError) as caught:
                await op_accept(store)
            assert not isinstance(caught.value, StoreUnavailableError)
            assert "could not be undone" in str(caught.value)
        with pytest.raises(StoreError, match="refusing writes"):
            await op_accept(store)
        # The torn tail is ignored by readers ...
        state, _ = await read(tmp_path)
        assert state == await model_before_follow_up(None)
        # ... and cut off by a reload, after which writing works again.
        await store.load(ACCOUNT)
        await follow_up(store)
    finally:
        await store.aclose()
    state, _ = await read(tmp_path)
    assert state == (await model(None))[0]


async def test_full_disk_then_room_again(tmp_path: Path) -> None:
    """A run of ENOSPC: every write fails transiently, and then works again."""
    store = wx.FileStore(tmp_path, compact_every=2)
    try:
        await baseline(store)
        faults = FaultyOps()
        with faults.installed():
            faults.full = True
            for op, _, _ in OPERATIONS.values():
                with pytest.raises(StoreUnavailableError, match=os.strerror(errno.ENOSPC)):
                    await op(store)
            faults.full = False
            await op_accept(store)  # a compaction is due, and runs now
        assert "replace" in faults.calls
    finally:
        await store.aclose()
    state, _ = await read(tmp_path)
    assert state == await model_before_follow_up(op_accept)


async def test_every_fault_during_a_writers_load(tmp_path: Path) -> None:
    """A load cuts a torn tail and compacts: faults there never cost acknowledged data."""

    async def prepare(path: Path) -> None:
        async with wx.FileStore(path) as store:
            await baseline(store)
            journal = next(store.account_dir(ACCOUNT).glob("journal-*.log"))
        with journal.open("ab") as f:
            f.write(b'{"t":"a","c":"torn"')  # a crash mid-append

    expected = await model_before_follow_up(None)
    await prepare(tmp_path / "dry")
    with FaultyOps().installed() as dry:
        async with wx.FileStore(tmp_path / "dry") as store:
            assert await store.load(ACCOUNT) == expected
    assert {"write", "fdatasync", "replace"} <= set(dry.calls), dry.calls
    for at, point in enumerate(dry.calls):
        for kind in KINDS:
            if not applicable(kind, point):
                continue
            case = f"load: {kind} at call point {at} ({point})"
            path = tmp_path / f"{at}-{kind}"
            await prepare(path)
            async with wx.FileStore(path) as store:
                with FaultyOps(kind, at).installed():
                    try:
                        state = await store.load(ACCOUNT)
                    except StoreUnavailableError:
                        state = None
                if state is not None:
                    assert state == expected, case
                assert (await read(path))[0] == expected, case
                assert await store.load(ACCOUNT) == expected, case  # the fault cleared
                await follow_up(store)
            async with wx.FileStore(path) as again:
                assert await again.load(ACCOUNT) == (await model(None))[0], case
