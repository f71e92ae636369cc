"""No inbound JSON takes an account down: a property over the whole pipeline.

Batches of arbitrary JSON (lone surrogates, huge, negative and float numbers, wrong
types, deep nesting, every item type) go through the fake server, the client, the
monitor and each kind of store, with a restart after every batch. The monitor never
stops; every well-formed message is handled (and answered) exactly once; every
malformed one is dead-lettered once with its reason; a last restart changes nothing.
"""

from __future__ import annotations

import functools
import json
import tempfile
import time
import uuid
from collections import Counter
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import trio
from hypothesis import given, settings, strategies as st
from trio.testing import MockClock

import weixin_trio as wx
from weixin_trio._proto.quarantine import synthetic_message_id
from weixin_trio.testing import FakeILinkServer

from ..proto.test_quarantine import json_values, texts

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests._redis_server import RedisServer

GOOD_IDS = 10**15  # well-formed messages: ids from here up
BAD_IDS = 10**6  # deliberately malformed ones: ids from here up (below GOOD_IDS)

ITEM_KINDS = st.sampled_from(
    [
        lambda t: {"type": 1, "text_item": {"text": t}},
        lambda t: {"type": 2, "image_item": {"url": t}},
        lambda t: {"type": 3, "voice_item": {"text": t}},
        lambda t: {"type": 4, "file_item": {"file_name": t, "len": "12"}},
        lambda t: {"type": 5, "video_item": {}},
        lambda t: {"type": 11, "tool_call_start_item": {"name": t}},
        lambda t: {"type": 99, "mystery": {"x": t}},
    ]
)


@attrs.define
class Batch:
    messages: list[Any]
    good: list[int]  # ids that must be handled exactly once
    bad: list[int]  # ids that must be dead-lettered exactly once


@st.composite
def good_message(draw: st.DrawFn, mid: int) -> dict[str, Any]:
    items = [draw(ITEM_KINDS)(draw(texts)) for _ in range(draw(st.integers(0, 3)))]
    message: dict[str, Any] = draw(st.dictionaries(st.sampled_from(["x", "y"]), json_values))
    message.update(
        message_id=mid,
        message_type=1,
        from_user_id=f"user-{mid % 1000}@im.wechat",
        to_user_id="bot@im.bot",
        context_token=f"ctx-{mid}",
        # Absent, bogus (before 2017: the receive time counts) or recent.
        create_time_ms=draw(
            st.one_of(
                st.none(),
                st.integers(max_value=1_500_000_000_000),
                st.just(10**400),
                st.just(int(time.time() * 1000) - 5000),
            )
        ),
        item_list=items,
    )
    return message


def _deep_quote(levels: int) -> dict[str, Any]:
    item: dict[str, Any] = {"type": 1, "text_item": {"text": "q"}}
    for _ in range(levels):
        item = {"type": 1, "ref_msg": {"message_item": item}}
    return item


BROKEN = st.sampled_from(
    [
        lambda m: m.update(from_user_id="u\ud800"),
        lambda m: m.update(context_token="t\udfff"),
        lambda m: m.update(item_list={"not": "a list"}),
        lambda m: m.update(item_list=[{"type": 1, "text_item": {"text": ["a"]}}]),
        lambda m: m.update(create_time_ms="yesterday"),
        lambda m: m.update(create_time_ms=1e400),
        lambda m: m.update(from_user_id=["a", "b"]),
        lambda m: m.update(item_list=[_deep_quote(400)]),
        lambda m: m.update(message_id=2**70),
        lambda m: m.update(message_id=1.5),
        lambda m: m.update(message_id="abc"),
    ]
)


@st.composite
def batches(draw: st.DrawFn) -> list[Batch]:
    good_ids = iter(range(GOOD_IDS, GOOD_IDS + 10**6))
    bad_ids = iter(range(BAD_IDS, BAD_IDS + 10**6))
    out = []
    for _ in range(draw(st.integers(1, 3))):
        batch = Batch([], [], [])
        for _ in range(draw(st.integers(0, 5))):
            kind = draw(st.sampled_from(["good", "broken", "arbitrary"]))
            if kind == "good":
                mid = next(good_ids)
                batch.messages.append(draw(good_message(mid)))
                batch.good.append(mid)
            elif kind == "broken":
                mid = next(bad_ids)
                message = draw(good_message(mid))
                message["nonce"] = mid  # distinct JSON, so distinct synthetic ids
                draw(BROKEN)(message)
                batch.messages.append(message)
                roundtrip = json.loads(json.dumps(message))
                usable = type(message["message_id"]) is int and message["message_id"] < 2**63
                batch.bad.append(mid if usable else synthetic_message_id(roundtrip))
            else:  # anything at all; it may even be a valid message
                value = draw(json_values)
                if isinstance(value, dict) and type(value.get("message_id")) is int:
                    value["message_id"] = -abs(value["message_id"]) - 1
                batch.messages.append(value)
        out.append(batch)
    return out


@asynccontextmanager
async def open_store(kind: str, where: Any) -> AsyncIterator[wx.Store]:
    """The store as a restarted process would open it."""
    if kind == "memory":
        yield where
    elif kind == "file":
        store = wx.FileStore(where)
        try:
            yield store
        finally:
            await store.aclose()
    else:
        yield where


async def run_pipeline(kind: str, where: Any, plan: list[Batch], *, real_time: bool) -> None:
    fake = FakeILinkServer(seed=0, hold=0.05 if real_time else 35.0)
    acct = fake.default
    handled: Counter[int] = Counter()

    async def handler(msg: wx.Message) -> None:
        handled[msg.message_id] += 1
        await msg.reply(f"ok {msg.message_id}")

    async def one_run(batch: Batch | None) -> wx.MonitorStatistics:
        async with open_store(kind, where) as store:
            async with wx.open_client(
                token=fake.token,
                base_url=fake.base_url,
                transport=fake.transport(),
                account_id=acct.bot_id,
                pacing=None,
            ) as client:
                async with wx.open_monitor(client, handler, store=store) as monitor:
                    if batch is not None:
                        acct.queue.extend(batch.messages)
                        acct.wake()
                    # Until the monitor presents the batch's cursor (it then journaled
                    # and dispatched the batch); the fake has no event for that.
                    while acct.queue or acct.acked_seq < acct.cursor_seq:  # noqa: ASYNC110
                        await trio.sleep(0.01)
                    await monitor.wait_idle()
                    return monitor.statistics()
        raise AssertionError("unreachable")  # pragma: no cover

    guard = 60 if real_time else 100_000
    with trio.fail_after(guard):
        for batch in plan:
            await one_run(batch)
        final = await one_run(None)
        async with open_store(kind, where) as store:
            state = await store.load(acct.bot_id)

    good = [mid for batch in plan for mid in batch.good]
    bad = [mid for batch in plan for mid in batch.bad]
    assert final.redelivered == 0
    assert state.pending == ()
    for mid in good:
        assert handled[mid] == 1, mid
        shown = [s.text for s in fake.sent_to(f"user-{mid % 1000}@im.wechat")]
        assert shown.count(f"ok {mid}") == 1
    letters = Counter(letter.message_id for letter in state.dead_letters)
    for mid in bad:
        assert letters[mid] == 1, mid
        assert handled[mid] == 0
    assert all(n == 1 for n in letters.values())
    assert all(letter.error.startswith("malformed: ") for letter in state.dead_letters)
    assert not set(letters) & set(handled)


@settings(max_examples=40)
@given(plan=batches())
@pytest.mark.parametrize("kind", ["memory", "file"])
def test_no_input_takes_the_account_down(kind: str, plan: list[Batch]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        where: Any = wx.MemoryStore() if kind == "memory" else Path(tmp) / "state"
        # FileStore works in threads, which race an autojumping clock (the jump to the
        # next deadline can cut the stop's final write): it runs in real time, with
        # short long polls, like Redis.
        real_time = kind == "file"
        pipeline = functools.partial(run_pipeline, kind, where, plan, real_time=real_time)
        trio.run(pipeline, clock=None if real_time else MockClock(autojump_threshold=0))


@settings(max_examples=12)
@given(plan=batches())
def test_no_input_takes_a_redis_account_down(redis_server: RedisServer, plan: list[Batch]) -> None:
    from weixin_trio.redis import open_redis_store

    async def main() -> None:
        prefix = f"t{uuid.uuid4().hex[:12]}"
        async with open_redis_store(redis_server.url, prefix=prefix) as store:
            await run_pipeline("redis", store, plan, real_time=True)

    trio.run(main)


@pytest.mark.parametrize("kind", ["memory", "file"])
async def test_a_message_the_store_cannot_encode_is_set_aside_not_fatal(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's encode error (a `ValueError` and a `StoreError`) reaches the monitor's
    set-aside path: the batch's other messages are handled, the account goes on."""
    from weixin_trio._wire import _parse

    real_loads = _parse._loads

    def loads_with_a_huge_int(body: bytes) -> Any:
        # Stands in for a decoder that accepts what the store's encoder refuses.
        obj = real_loads(body)
        for msg in obj.get("msgs") or ():
            if isinstance(msg, dict) and msg.get("x") == "HUGE":
                msg["x"] = 10**5000
        return obj

    monkeypatch.setattr(_parse, "_loads", loads_with_a_huge_int)
    fake = FakeILinkServer(seed=0, hold=0.05)
    handled: list[int] = []

    async def handler(msg: wx.Message) -> None:
        handled.append(msg.message_id)

    user = "enc@im.wechat"
    store: wx.Store = wx.MemoryStore() if kind == "memory" else wx.FileStore(tmp_path)
    with trio.fail_after(30):
        async with wx.open_client(
            token=fake.token,
            base_url=fake.base_url,
            transport=fake.transport(),
            account_id=fake.default.bot_id,
            pacing=None,
        ) as client:
            async with wx.open_monitor(client, handler, store=store) as monitor:
                bad = fake.inject_message(user, [{"type": 1, "text_item": {"text": "a"}}], x="HUGE")
                good = fake.inject_text(user, "b")
                while not handled:  # noqa: ASYNC110 - the handler is the only signal
                    await trio.sleep(0.01)
                await monitor.wait_idle()
        state = await store.load(fake.default.bot_id)
        await store.aclose()
    assert handled == [good]
    [letter] = state.dead_letters
    assert letter.message_id == bad
    assert letter.error.startswith("malformed: ")
    assert state.pending == ()
