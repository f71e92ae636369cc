"""The ``Store`` contract, run against every kind of store (memory, file, Redis).

Real clock throughout (Redis talks over a real socket); ``load`` comes before any
write of an account, as the monitor does it (``FileStore`` requires it).
"""

from __future__ import annotations

import json
import uuid
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest

import weixin_trio as wx
from weixin_trio.store import AccountState, DeadLetter, JournalEntry, OutboxEntry

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from contextlib import AbstractAsyncContextManager
    from pathlib import Path

    Reopen = Callable[[], AbstractAsyncContextManager[wx.Store]]

ACCOUNT = "bot1@im.bot"
OTHER = "bot2@im.bot"
BIG_ID = 2**63 - 5  # above 2**53: a double (Lua's cjson, JavaScript) would round it


def entry(mid: int, text: str = "x", *, attempts: int = 0) -> JournalEntry:
    raw = {"message_id": mid, "item_list": [{"type": 1, "text_item": {"text": text}}]}
    return JournalEntry(mid, raw, attempts)


@asynccontextmanager
async def reopened(store: wx.Store, redis_url: str | None) -> AsyncIterator[wx.Store]:
    """The same state as seen by a restarted process (memory: the same instance)."""
    if isinstance(store, wx.MemoryStore):
        yield store
    elif isinstance(store, wx.FileStore):
        await store.aclose()  # the old process ends (and releases the writer lock)
        async with wx.FileStore(store.path) as again:
            yield again
    else:
        from weixin_trio.redis import RedisStore, open_redis_store

        assert isinstance(store, RedisStore)
        assert redis_url is not None
        async with open_redis_store(redis_url, prefix=store.prefix) as again:
            yield again


async def test_unknown_account_loads_empty(store: wx.Store) -> None:
    state = await store.load("nobody@im.bot")
    assert state == AccountState()
    assert state.cursor == ""
    assert state.pending == ()
    assert state.seen_ids == ()
    assert state.context_tokens == {}
    assert state.dead_letters == ()
    assert state.last_inbound == {}
    assert state.outbox == ()


async def test_accept_round_trip(store: wx.Store, store_redis_url: str | None) -> None:
    raw: dict[str, Any] = {
        "message_id": BIG_ID,
        "from_user_id": "用户@im.wechat",
        "item_list": [{"type": 1, "text_item": {"text": '你好 👋 "q" \\ \n\t\u2028 end'}}],
        "nested": {"half": 1.5, "none": None, "yes": True, "empty": [], "big": -(2**63)},
        "zz_last_key": "order kept",
        "aa_after": "",
    }
    await store.load(ACCOUNT)
    await store.accept(
        ACCOUNT,
        cursor="c1",
        entries=[entry(10, "first"), JournalEntry(BIG_ID, raw)],
        context_tokens={"alice": "t1", "bob": "b1"},
        last_inbound={"alice": 100.5, "bob": 50.0},
    )
    await store.accept(
        ACCOUNT,
        cursor="c2",
        entries=[entry(3, "third", attempts=2)],
        context_tokens={"alice": "t2"},
        last_inbound={"alice": 90.0, "bob": 60.25},  # alice older: the newer time stays
    )
    await store.accept(
        ACCOUNT, cursor="c3 ünïcode/+=", entries=[entry(7), entry(1)], context_tokens={}
    )
    await store.accept(ACCOUNT, cursor="c4", entries=[], context_tokens={"carol": "c"})

    async with reopened(store, store_redis_url) as again:
        state = await again.load(ACCOUNT)
    assert state.cursor == "c4"
    assert [e.message_id for e in state.pending] == [10, BIG_ID, 3, 7, 1]  # acceptance order
    assert [e.attempts for e in state.pending] == [0, 0, 2, 0, 0]
    big = state.pending[1]
    assert big.message_id == BIG_ID
    assert big.raw == raw
    assert big.raw["message_id"] == BIG_ID
    assert isinstance(big.raw["message_id"], int)
    assert json.dumps(big.raw, ensure_ascii=False) == json.dumps(raw, ensure_ascii=False)
    assert state.pending[0].raw == entry(10, "first").raw
    assert state.seen_ids == (10, BIG_ID, 3, 7, 1)
    assert state.context_tokens == {"alice": "t2", "bob": "b1", "carol": "c"}
    assert state.last_inbound == {"alice": 100.5, "bob": 60.25}


async def test_seen_window_keeps_the_newest_ids(
    store_kind: str, store_redis_url: str | None, tmp_path: Path
) -> None:
    async with _small_window_store(store_kind, store_redis_url, tmp_path) as (store, reopen):
        await store.load(ACCOUNT)
        await store.accept(ACCOUNT, cursor="c1", entries=[entry(1), entry(2)], context_tokens={})
        assert (await store.load(ACCOUNT)).seen_ids == (1, 2)
        await store.accept(
            ACCOUNT, cursor="c2", entries=[entry(3), entry(4), entry(BIG_ID)], context_tokens={}
        )
        await store.accept(ACCOUNT, cursor="c3", entries=[], context_tokens={})
        assert (await store.load(ACCOUNT)).seen_ids == (3, 4, BIG_ID)
        await store.mark_done(ACCOUNT, [1, 2, 3, 4])  # done ids stay in the window
        await store.accept(ACCOUNT, cursor="c4", entries=[entry(5)], context_tokens={})
        async with reopen() as again:
            state = await again.load(ACCOUNT)
        assert state.seen_ids == (4, BIG_ID, 5)
        # Leaving the window does not finish a message.
        assert [e.message_id for e in state.pending] == [BIG_ID, 5]


@asynccontextmanager
async def _small_window_store(
    kind: str, redis_url: str | None, tmp_path: Path
) -> AsyncIterator[tuple[wx.Store, Reopen]]:
    """A store with ``seen_window=3`` and a function reopening it with the same window."""
    if kind == "memory":
        memory = wx.MemoryStore(seen_window=3)

        @asynccontextmanager
        async def same() -> AsyncIterator[wx.Store]:
            yield memory

        yield memory, same
    elif kind == "file":
        first = wx.FileStore(tmp_path / "small", seen_window=3)

        @asynccontextmanager
        async def new_file_store() -> AsyncIterator[wx.Store]:
            await first.aclose()  # the old process ends (and releases the writer lock)
            async with wx.FileStore(tmp_path / "small", seen_window=3) as again:
                yield again

        async with first:
            yield first, new_file_store
    else:
        from weixin_trio.redis import open_redis_store

        assert redis_url is not None
        prefix = f"t{uuid.uuid4().hex[:12]}"

        @asynccontextmanager
        async def new_redis_store() -> AsyncIterator[wx.Store]:
            async with open_redis_store(redis_url, prefix=prefix, seen_window=3) as again:
                yield again

        async with open_redis_store(redis_url, prefix=prefix, seen_window=3) as redis:
            yield redis, new_redis_store


async def test_mark_done_finishes_messages(store: wx.Store, store_redis_url: str | None) -> None:
    await store.load(ACCOUNT)
    await store.accept(
        ACCOUNT, cursor="c", entries=[entry(1), entry(2), entry(3)], context_tokens={}
    )
    await store.mark_done(ACCOUNT, [2])
    assert [e.message_id for e in (await store.load(ACCOUNT)).pending] == [1, 3]
    await store.mark_done(ACCOUNT, [])
    await store.mark_done(ACCOUNT, [3, 1, 99])  # an unknown id is ignored
    await store.flush(ACCOUNT)
    async with reopened(store, store_redis_url) as again:
        state = await again.load(ACCOUNT)
    assert state.pending == ()
    assert state.cursor == "c"
    assert state.seen_ids == (1, 2, 3)


async def test_record_failure_counts_attempts(store: wx.Store, store_redis_url: str | None) -> None:
    await store.load(ACCOUNT)
    await store.accept(ACCOUNT, cursor="c", entries=[entry(1), entry(2)], context_tokens={})
    await store.record_failure(ACCOUNT, 1, 1)
    await store.record_failure(ACCOUNT, 1, 2)
    await store.record_failure(ACCOUNT, 404, 1)  # unknown: ignored
    await store.mark_done(ACCOUNT, [2])
    await store.record_failure(ACCOUNT, 2, 5)  # finished: ignored, not resurrected
    await store.flush(ACCOUNT)
    async with reopened(store, store_redis_url) as again:
        state = await again.load(ACCOUNT)
    assert [(e.message_id, e.attempts) for e in state.pending] == [(1, 2)]
    assert state.pending[0].raw == entry(1).raw


async def test_dead_letter_is_kept_and_finishes_its_message(
    store: wx.Store, store_redis_url: str | None
) -> None:
    raw = {"message_id": BIG_ID, "text": "坏消息 💥", "n": [1, 2.5, None]}
    await store.load(ACCOUNT)
    await store.accept(
        ACCOUNT, cursor="c", entries=[entry(1), JournalEntry(BIG_ID, raw)], context_tokens={}
    )
    first = DeadLetter(BIG_ID, raw, 3, "RuntimeError('boom: ü')", 1700000000.25)
    second = DeadLetter(1, entry(1).raw, 5, "ValueError()", 1700000001.5)
    await store.dead_letter(ACCOUNT, first)
    await store.dead_letter(ACCOUNT, second)
    async with reopened(store, store_redis_url) as again:
        state = await again.load(ACCOUNT)
    assert state.pending == ()
    assert state.dead_letters == (first, second)
    letter = state.dead_letters[0]
    assert (letter.message_id, letter.attempts, letter.error, letter.at) == (
        BIG_ID,
        3,
        "RuntimeError('boom: ü')",
        1700000000.25,
    )
    assert letter.raw == raw
    assert letter.raw["message_id"] == BIG_ID


async def test_outbox_keeps_queue_order(store: wx.Store, store_redis_url: str | None) -> None:
    queued = [
        OutboxEntry("e3", "alice", "third-id but first in", 10.0),
        OutboxEntry("e1", "bob", "多行\n文本 🙂", 11.5),
        OutboxEntry("e2", "alice", "", 12.0),
        OutboxEntry("e0", "carol", "last", 13.0),
    ]
    await store.load(ACCOUNT)
    for item in queued:
        await store.outbox_put(ACCOUNT, item)
    assert (await store.load(ACCOUNT)).outbox == tuple(queued)
    await store.outbox_remove(ACCOUNT, "e1")
    await store.outbox_remove(ACCOUNT, "missing")
    await store.flush(ACCOUNT)
    async with reopened(store, store_redis_url) as again:
        state = await again.load(ACCOUNT)
    assert state.outbox == (queued[0], queued[2], queued[3])


def account_json(account_id: str, **more: Any) -> dict[str, Any]:
    """Credentials as ``Account.to_json()`` gives them (the id included)."""
    return {"account_id": account_id, **more}


async def test_accounts_save_load_remove(store: wx.Store, store_redis_url: str | None) -> None:
    assert await store.load_accounts() == []
    a = account_json("a@im.bot", token="ta", name="名字")
    b = account_json("b@im.bot", token="tb", nested={"n": [1, 2]})
    c = account_json("c@im.bot", token="tc", base_url="https://x")
    await store.save_account("c@im.bot", c)
    await store.save_account("a@im.bot", a)
    await store.save_account("b@im.bot", account_json("b@im.bot", token="tb-old"))
    await store.save_account("b@im.bot", b)  # overwrites
    async with reopened(store, store_redis_url) as again:
        assert await again.load_accounts() == [a, b, c]  # sorted by id
    assert await store.remove_account("b@im.bot") is True
    assert await store.remove_account("b@im.bot") is False
    assert await store.remove_account("never@im.bot") is False
    async with reopened(store, store_redis_url) as again:
        assert await again.load_accounts() == [a, c]


async def test_accounts_are_isolated(store: wx.Store, store_redis_url: str | None) -> None:
    await store.load(ACCOUNT)
    await store.load(OTHER)
    await store.accept(
        ACCOUNT,
        cursor="a1",
        entries=[entry(1), entry(2)],
        context_tokens={"u": "ta"},
        last_inbound={"u": 5.0},
    )
    await store.accept(OTHER, cursor="b1", entries=[entry(2)], context_tokens={"u": "tb"})
    await store.mark_done(OTHER, [2])  # finishes OTHER's 2 only
    await store.record_failure(ACCOUNT, 1, 1)
    await store.outbox_put(OTHER, OutboxEntry("o", "u", "hi", 1.0))
    await store.dead_letter(ACCOUNT, DeadLetter(1, entry(1).raw, 1, "E", 2.0))
    async with reopened(store, store_redis_url) as again:
        mine = await again.load(ACCOUNT)
        other = await again.load(OTHER)
    assert (mine.cursor, other.cursor) == ("a1", "b1")
    assert [e.message_id for e in mine.pending] == [2]
    assert other.pending == ()
    assert (mine.seen_ids, other.seen_ids) == ((1, 2), (2,))
    assert (mine.context_tokens, other.context_tokens) == ({"u": "ta"}, {"u": "tb"})
    assert (mine.last_inbound, other.last_inbound) == ({"u": 5.0}, {})
    assert [d.message_id for d in mine.dead_letters] == [1]
    assert other.dead_letters == ()
    assert (mine.outbox, [o.entry_id for o in other.outbox]) == ((), ["o"])


async def test_restart_sees_the_same_state(store: wx.Store, store_redis_url: str | None) -> None:
    await store.load(ACCOUNT)
    await store.accept(
        ACCOUNT,
        cursor="c1",
        entries=[entry(1), entry(2), entry(3)],
        context_tokens={"u": "t"},
        last_inbound={"u": 42.0},
    )
    await store.mark_done(ACCOUNT, [1])
    await store.record_failure(ACCOUNT, 3, 2)
    await store.dead_letter(ACCOUNT, DeadLetter(2, entry(2).raw, 3, "E", 7.0))
    await store.outbox_put(ACCOUNT, OutboxEntry("q", "u", "later", 8.0))
    await store.flush(ACCOUNT)
    before = await store.load(ACCOUNT)
    assert [(e.message_id, e.attempts) for e in before.pending] == [(3, 2)]

    async with reopened(store, store_redis_url) as again:
        after = await again.load(ACCOUNT)
        assert after == before
        # ... and the restarted store carries on from there.
        await again.accept(ACCOUNT, cursor="c2", entries=[entry(4)], context_tokens={})
        await again.mark_done(ACCOUNT, [3])
        await again.flush(ACCOUNT)
    async with reopened(store, store_redis_url) as third:
        final = await third.load(ACCOUNT)
    assert final.cursor == "c2"
    assert [e.message_id for e in final.pending] == [4]
    assert final.seen_ids == (1, 2, 3, 4)
    assert final.dead_letters == before.dead_letters
    assert final.outbox == before.outbox


@pytest.mark.parametrize("unknown", ["", "x", "ünï/{code}"])
async def test_store_is_a_store(store: wx.Store, unknown: str) -> None:
    assert isinstance(store, wx.Store)
    assert (await store.load(unknown)).pending == ()
