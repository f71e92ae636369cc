"""Every JSON the store writes is surrogate-safe, and any value round-trips through load.

Today's regression: a lone surrogate (``"\\ud800"``) anywhere in a message raised
``UnicodeEncodeError`` while journaling, on every restart. Now every record, snapshot,
dead letter and account file is written as ASCII JSON (escapes), and ``json.loads``
gives back the same strings. An int too long to print fails only its own write.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings, strategies as st

import weixin_trio as wx
from weixin_trio._errors import (
    UnencodableError,
)
from weixin_trio.store import (
    DeadLetter,
    JournalEntry,
    OutboxEntry,
    StoreError,
    StoreUnavailableError,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

ACCOUNT = "bot1@im.bot"
SURROGATES = ["\ud800", "a\udfffb", "\udbff", "x\ud83d", "\udc00\ud800"]

HOSTILE: dict[str, Any] = {
    "message_id": 7,
    "text": "lone \ud800 surrogate, 你好, \U0001f600, \x00 nul",
    "\udfff key": ["\ud800", {"deep": "\udbff\udbff"}],
    "huge": 10**400,
    "negative": -(10**400),
    "float": 1.5e300,
    "tiny": -2.5e-300,
}


async def reopen(store: wx.Store, path: Path) -> AsyncIterator[wx.Store]:
    if isinstance(store, wx.MemoryStore):
        yield store
        return
    await store.aclose()
    async with wx.FileStore(path) as again:
        yield again


async def write_everything(store: wx.Store) -> None:
    await store.load(ACCOUNT)
    await store.accept(
        ACCOUNT,
        cursor="cursor \ud800",
        entries=[JournalEntry(7, HOSTILE), JournalEntry(8, {"message_id": 8, "t": "\udc00"})],
        context_tokens={"user\ud800": "token \udfff"},
        last_inbound={"user\ud800": 5.0},
    )
    await store.dead_letter(
        ACCOUNT, DeadLetter(8, {"t": "\udc00", "n": 10**300}, 3, "E \ud800", 1.0)
    )
    await store.outbox_put(ACCOUNT, OutboxEntry("q\ud800", "user\ud800", "later \udfff", 2.0))
    await store.save_account("acct@im.bot", {"token": "t", "name": "名字 \ud800"})
    await store.flush(ACCOUNT)


def check(state: wx.store.AccountState) -> None:
    assert state.cursor == "cursor \ud800"
    assert [e.message_id for e in state.pending] == [7]
    assert state.pending[0].raw == HOSTILE
    assert state.pending[0].raw["huge"] == 10**400
    assert state.context_tokens == {"user\ud800": "token \udfff"}
    assert state.last_inbound == {"user\ud800": 5.0}
    assert state.dead_letters == (DeadLetter(8, {"t": "\udc00", "n": 10**300}, 3, "E \ud800", 1.0),)
    assert state.outbox == (OutboxEntry("q\ud800", "user\ud800", "later \udfff", 2.0),)


@pytest.mark.parametrize("kind", ["memory", "file", "file-compacting"])
async def test_lone_surrogates_and_huge_numbers_round_trip(tmp_path: Path, kind: str) -> None:
    store: wx.Store
    if kind == "memory":
        store = wx.MemoryStore()
    else:  # compact_every=1: every record is also written into a snapshot
        store = wx.FileStore(tmp_path, compact_every=1 if kind == "file-compacting" else 4096)
    try:
        await write_everything(store)
        check(await store.load(ACCOUNT))
        async for again in reopen(store, tmp_path):
            check(await again.load(ACCOUNT))
            accounts = await again.load_accounts()
            assert accounts[0]["name"] == "名字 \ud800"
    finally:
        await store.aclose()
    if kind != "memory":
        for path in tmp_path.rglob("*"):
            if path.is_file() and path.name != "lock":
                path.read_bytes().decode("ascii")  # every byte the store wrote is ASCII


@pytest.mark.parametrize("kind", ["memory", "file"])
async def test_an_unprintable_int_fails_only_its_own_write(tmp_path: Path, kind: str) -> None:
    store: wx.Store = wx.MemoryStore() if kind == "memory" else wx.FileStore(tmp_path)
    try:
        await store.load(ACCOUNT)
        await store.accept(ACCOUNT, cursor="c1", entries=[JournalEntry(1, {})], context_tokens={})
        before = sorted((p.name, p.stat().st_size) for p in tmp_path.rglob("*") if p.is_file())
        poison = JournalEntry(2, {"n": 10**5000})  # beyond int -> str's digit limit
        with pytest.raises(StoreError, match="not encodable") as caught:
            await store.accept(ACCOUNT, cursor="c2", entries=[poison], context_tokens={})
        assert not isinstance(caught.value, StoreUnavailableError)  # retrying cannot help
        assert isinstance(caught.value, UnencodableError)  # what the monitor sets aside
        assert isinstance(caught.value, ValueError)
        with pytest.raises(StoreError, match="not encodable"):
            await store.dead_letter(ACCOUNT, DeadLetter(2, poison.raw, 1, "E", 1.0))
        after = sorted((p.name, p.stat().st_size) for p in tmp_path.rglob("*") if p.is_file())
        assert after == before  # nothing was written
        await store.accept(ACCOUNT, cursor="c3", entries=[JournalEntry(3, {})], context_tokens={})
        state = await store.load(ACCOUNT)
    finally:
        await store.aclose()
    assert state.cursor == "c3"
    assert [e.message_id for e in state.pending] == [1, 3]


texts = (
    st.text()
    | st.sampled_from(SURROGATES)
    | st.builds(
        lambda a, s, b: a + s + b,
        st.text(max_size=5),
        st.sampled_from(SURROGATES),
        st.text(max_size=5),
    )
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**600), max_value=10**600)
    | st.floats(allow_nan=False)
    | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raws=st.lists(st.dictionaries(texts, json_values, max_size=5), min_size=1, max_size=4))
def test_any_json_message_round_trips_through_a_restart(raws: list[dict[str, Any]]) -> None:
    entries = [JournalEntry(i, raw) for i, raw in enumerate(raws)]

    async def run(path: Path) -> None:
        async with wx.FileStore(path, compact_every=3) as store:
            await store.load(ACCOUNT)
            for entry in entries:
                await store.accept(ACCOUNT, cursor="c", entries=[entry], context_tokens={})
        state = await wx.FileStore(path, read_only=True).load(ACCOUNT)
        assert [e.raw for e in state.pending] == raws

    with tempfile.TemporaryDirectory() as path:
        trio.run(run, Path(path))
