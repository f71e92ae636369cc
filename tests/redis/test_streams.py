"""Handler fan-out through Redis Streams: publisher, partitions, workers.

A real Redis and the real clock (never ``autojump_clock``); the iLink server is the
in-process fake with short long polls. Messages reach the streams either from a
leased poller running :class:`StreamPublisher` (end to end) or from the publisher
called directly with a hand-built :class:`~weixin_trio.Message` (to place entries in
a partition deterministically).
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
import zlib
from collections import Counter, defaultdict
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import pytest
import trio

import weixin_trio as wx
from weixin_trio._client.message import ReplyContext
from weixin_trio.redis import (
    StreamPublisher,
    agree_partitions,
    open_fanout_worker,
    open_leased_accounts,
    open_redis_store,
    partition_of,
)
from weixin_trio.redis._scripts import partition_keys
from weixin_trio.redis._streams import GROUP
from weixin_trio.testing import FakeAccount, FakeILinkServer, Fault

from .._helpers import until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

    from tests._redis_server import RedisServer
    from weixin_trio.redis import RedisStore

TTL = 3.0  # rounds every 1 s; a partition stops 2.4 s after a renewal was sent, so
# event-loop lag on a loaded machine does not restart partitions (which re-handles)
USERS = [f"user{i}@im.wechat" for i in range(4)]
_message_ids = itertools.count(9_100_000_000_000_001)  # beyond a double's exact range


@pytest.fixture
def fake() -> FakeILinkServer:
    return FakeILinkServer(seed=11, hold=0.5)  # short polls: the clock is real


def options(fake: FakeILinkServer) -> dict[str, Any]:
    return {"transport": fake.transport(), "pacing": None}


async def save_accounts(
    store: RedisStore, fake: FakeILinkServer, accounts: Iterable[FakeAccount]
) -> None:
    for acct in accounts:
        data = {"token": acct.token, "base_url": fake.base_url, "created_at": 0.0}
        await store.save_account(acct.bot_id, data)


def raw_text(acct: FakeAccount, user: str, text: str) -> tuple[int, dict[str, Any]]:
    """A wire message from ``user`` to ``acct`` (as a poller would have received it)."""
    mid = next(_message_ids)
    raw = {
        "seq": 1,
        "message_id": mid,
        "from_user_id": user,
        "to_user_id": acct.bot_id,
        "create_time_ms": int(time.time() * 1000),  # a fresh message: its send window is open
        "message_type": 1,
        "message_state": 2,
        "item_list": [{"type": 1, "text_item": {"text": text}}],
        "context_token": f"ctx-{mid}",
    }
    return mid, raw


class Publisher:
    """Publishes hand-built messages of several accounts (one open client each)."""

    def __init__(self, publisher: StreamPublisher, clients: dict[str, wx.ILinkClient]) -> None:
        self.publisher = publisher
        self.clients = clients
        self.published: dict[tuple[str, str], list[int]] = defaultdict(list)

    async def publish(self, acct: FakeAccount, user: str, text: str) -> int:
        mid, raw = raw_text(acct, user, text)
        ctx = ReplyContext(self.clients[acct.bot_id])
        await self.publisher(wx.Message.from_json(raw, message_id=mid, ctx=ctx))
        self.published[(acct.bot_id, user)].append(mid)
        return mid


@pytest.fixture
async def clients(fake: FakeILinkServer) -> AsyncIterator[dict[str, wx.ILinkClient]]:
    """Clients of three fake accounts, by account id."""
    accounts = [fake.default, fake.add_account(), fake.add_account()]
    async with AsyncExitStack() as stack:
        result: dict[str, wx.ILinkClient] = {}
        for acct in accounts:
            result[acct.bot_id] = await stack.enter_async_context(
                wx.open_client(
                    token=acct.token,
                    base_url=fake.base_url,
                    account_id=acct.bot_id,
                    **options(fake),
                )
            )
        yield result


def accounts_of(fake: FakeILinkServer) -> list[FakeAccount]:
    return list(fake.accounts.values())


class Recorder:
    """A handler that records ``(account, user) -> [message id]`` and echoes."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.order: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.counts = Counter[int]()
        self.sequence: list[int] = []

    async def __call__(self, msg: wx.Message) -> None:
        self.sequence.append(msg.message_id)
        self.order[(msg.client.account_id, msg.from_user_id)].append(msg.message_id)
        self.counts[msg.message_id] += 1
        await msg.reply(f"echo {msg.text}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110 - progress happens in Redis and workers
            await trio.sleep(0.02)


async def stream_lengths(store: RedisStore, partitions: int) -> list[int]:
    return [await store.client.xlen(partition_keys(store.prefix, p)[0]) for p in range(partitions)]


async def wait_streams_empty(store: RedisStore, partitions: int, timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while any(await stream_lengths(store, partitions)):  # noqa: ASYNC110 - polling Redis
            await trio.sleep(0.02)


async def pending_count(store: RedisStore, partition: int) -> int:
    summary: Any = await store.client.xpending(partition_keys(store.prefix, partition)[0], GROUP)
    return int(summary.pending)


def covering_users(accounts: list[FakeAccount], partitions: int) -> list[str]:
    """Users whose lanes (with every account) reach every partition."""
    users: list[str] = []
    covered: set[int] = set()
    for i in itertools.count():
        user = f"user{i}@im.wechat"
        users.append(user)
        covered |= {partition_of(a.bot_id, user, partitions) for a in accounts}
        if len(covered) == partitions:
            return users
    raise AssertionError("unreachable")


# --- partitions and publishing ------------------------------------------------------------


def test_partition_of_is_stable_and_in_range() -> None:
    # pinned: another process (or version) must pick the same stream for a lane
    assert partition_of("bot@im.bot", "alice@im.wechat", 16) == (
        zlib.crc32(b"bot@im.bot\x00alice@im.wechat") % 16
    )
    assert partition_of("bot@im.bot", "alice@im.wechat", 1000) == 302
    assert partition_of("a", "b", 1) == 0
    seen: set[int] = set()
    for i in range(400):
        account, lane = f"bot{i % 7}@im.bot", f"user{i}@im.wechat"
        p = partition_of(account, lane, 16)
        assert 0 <= p < 16
        assert partition_of(account, lane, 16) == p
        seen.add(p)
    assert seen == set(range(16))  # lanes spread over every partition
    # the account is part of the key: the same user of two bots may land apart
    assert len({partition_of(f"bot{i}@im.bot", "alice@im.wechat", 16) for i in range(50)}) > 1


async def test_agree_partitions_first_wins_and_a_mismatch_raises(
    redis_store: RedisStore, redis_server: RedisServer
) -> None:
    assert await agree_partitions(redis_store, 8) == 8
    assert await agree_partitions(redis_store, None) == 8
    assert await agree_partitions(redis_store, 8) == 8
    with pytest.raises(ValueError, match="8 partitions, not 4"):
        await agree_partitions(redis_store, 4)
    with pytest.raises(ValueError, match=">= 1"):
        await agree_partitions(redis_store, 0)
    assert await redis_store.client.hget(f"{redis_store.prefix}:fanout", "partitions") == "8"
    async with open_redis_store(redis_server.url, prefix=f"t{uuid.uuid4().hex[:12]}") as fresh:
        assert await agree_partitions(fresh, None) == 16  # the default, now fixed
        with pytest.raises(ValueError, match="16 partitions, not 8"):
            await agree_partitions(fresh, 8)


async def test_publishing_the_same_message_twice_adds_one_entry(
    redis_store: RedisStore, fake: FakeILinkServer, clients: dict[str, wx.ILinkClient]
) -> None:
    acct = fake.default
    pub = Publisher(StreamPublisher(redis_store, partitions=4), clients)
    mid, raw = raw_text(acct, "alice@im.wechat", "héllo")
    msg = wx.Message.from_json(raw, message_id=mid, ctx=ReplyContext(clients[acct.bot_id]))
    partition = partition_of(acct.bot_id, "alice@im.wechat", 4)
    stream = partition_keys(redis_store.prefix, partition)[0]

    await pub.publisher(msg)
    await pub.publisher(msg)  # redelivered to a poller after a crash
    assert await redis_store.client.xlen(stream) == 1
    assert pub.publisher.published == 2
    assert sum(await stream_lengths(redis_store, 4)) == 1  # only in the lane's partition
    (entry,) = await redis_store.client.xrange(stream)
    fields = entry.field_values
    assert fields["a"] == acct.bot_id
    assert int(fields["id"]) == mid  # exact: no round trip through a double
    assert json.loads(fields["m"])["message_id"] == mid
    assert json.loads(fields["m"])["item_list"][0]["text_item"]["text"] == "héllo"

    # the same id of another account is another message
    other = fake.accounts[list(fake.accounts)[1]]
    msg2 = wx.Message.from_json(
        {**raw, "to_user_id": other.bot_id}, message_id=mid, ctx=ReplyContext(clients[other.bot_id])
    )
    await pub.publisher(msg2)
    assert sum(await stream_lengths(redis_store, 4)) == 2

    # past the dedupe window the id is forgotten
    short = StreamPublisher(redis_store, partitions=4, dedupe_window=0.05)
    mid3, raw3 = raw_text(acct, "alice@im.wechat", "again")
    msg3 = wx.Message.from_json(raw3, message_id=mid3, ctx=ReplyContext(clients[acct.bot_id]))
    await short(msg3)
    await short(msg3)
    assert await redis_store.client.xlen(stream) == 2
    await trio.sleep(0.15)
    await short(msg3)
    assert await redis_store.client.xlen(stream) == 3


async def test_a_custom_lane_key_chooses_the_partition(
    redis_store: RedisStore, fake: FakeILinkServer, clients: dict[str, wx.ILinkClient]
) -> None:
    acct = fake.default
    publisher = StreamPublisher(redis_store, partitions=8, lane_key=lambda m: "one lane")
    pub = Publisher(publisher, clients)
    for user in USERS:
        await pub.publish(acct, user, "x")
    lengths = await stream_lengths(redis_store, 8)
    assert lengths[partition_of(acct.bot_id, "one lane", 8)] == len(USERS)


# --- workers --------------------------------------------------------------------------


async def test_poller_and_two_workers_handle_each_message_once_in_order(
    redis_store: RedisStore, fake: FakeILinkServer
) -> None:
    store = redis_store
    accounts = [fake.default, fake.add_account(), fake.add_account()]
    await save_accounts(store, fake, accounts)
    users = covering_users(accounts, 8)  # so that both workers get messages
    publisher = StreamPublisher(store, partitions=await agree_partitions(store, 8))
    r1, r2 = Recorder("w1"), Recorder("w2")
    injected: dict[tuple[str, str], list[int]] = defaultdict(list)
    opts = options(fake)
    with trio.fail_after(40):
        async with (
            open_leased_accounts(
                publisher, store=store, lease_ttl=TTL, node_id="P", client_options=opts
            ) as poller,
            open_fanout_worker(
                r1, store=store, lease_ttl=TTL, node_id="w1", client_options=opts
            ) as w1,
            open_fanout_worker(
                r2, store=store, lease_ttl=TTL, node_id="w2", client_options=opts
            ) as w2,
        ):
            await wait_for(lambda: len(w1.held) == 4 and len(w2.held) == 4)
            assert set(w1.held) | set(w2.held) == set(range(8))
            assert len(poller.account_ids) == 3
            for i in range(10):
                for acct in accounts:
                    for user in users:
                        mid = fake.inject_text(user, f"{user} #{i}", account=acct)
                        injected[(acct.bot_id, user)].append(mid)
                if i % 3 == 0:
                    await trio.sleep(0.05)  # several poll batches
            total = sum(len(v) for v in injected.values())
            await wait_for(lambda: r1.total + r2.total >= total, timeout=20)
            await wait_streams_empty(store, 8)
            await trio.sleep(0.3)  # a duplicate would show up now
            held1, held2 = set(w1.held), set(w2.held)
            s1, s2 = w1.statistics(), w2.statistics()

    assert publisher.published == total
    both = r1.counts + r2.counts
    assert len(both) == total
    assert max(both.values()) == 1, "a message was handled twice"
    assert (s1.handled, s2.handled) == (r1.total, r2.total)
    assert min(s1.handled, s2.handled) > 0, "a worker handled nothing"
    assert s1.failed == s2.failed == s1.claimed == s2.claimed == 0
    assert (s1.partitions, s2.partitions) == (4, 4)
    # each lane went to the worker holding its partition, in injection order
    for recorder, held in ((r1, held1), (r2, held2)):
        for (bot, user), mids in recorder.order.items():
            assert partition_of(bot, user, 8) in held
            assert mids == injected[(bot, user)], f"{bot}/{user} out of order"
    for acct in accounts:
        shown = [s.text for s in fake.sent(account=acct)]
        assert len(shown) == 10 * len(users)
        assert not [t for t, n in Counter(shown).items() if n > 1], "a reply was shown twice"
        for user in users:
            assert fake.sent_texts(user, account=acct) == [f"echo {user} #{i}" for i in range(10)]


async def test_a_failing_handler_dead_letters_after_max_attempts(
    redis_store: RedisStore, fake: FakeILinkServer, clients: dict[str, wx.ILinkClient]
) -> None:
    store = redis_store
    acct = fake.default
    await save_accounts(store, fake, accounts_of(fake))
    await agree_partitions(store, 2)
    pub = Publisher(StreamPublisher(store, partitions=2), clients)
    attempts = Counter[int]()
    good: list[int] = []

    async def handler(msg: wx.Message) -> None:
        attempts[msg.message_id] += 1
        if msg.text == "poison":
            raise RuntimeError("boom")
        good.append(msg.message_id)
        await msg.reply("ok")

    user = "alice@im.wechat"
    partition = partition_of(acct.bot_id, user, 2)
    with trio.fail_after(20):
        async with open_fanout_worker(
            handler,
            store=store,
            lease_ttl=TTL,
            node_id="w",
            max_attempts=3,
            retry_delay=0.05,
            client_options=options(fake),
        ) as worker:
            bad = await pub.publish(acct, user, "poison")
            after = await pub.publish(acct, user, "fine")  # same lane: it waits its turn
            await wait_for(lambda: good == [after])
            await wait_streams_empty(store, 2)
            stats = worker.statistics()
            assert await pending_count(store, partition) == 0

    assert attempts == {bad: 3, after: 1}
    assert (stats.handled, stats.failed, stats.dead_lettered) == (1, 3, 1)
    (letter,) = (await store.load(acct.bot_id)).dead_letters
    assert letter.message_id == bad
    assert letter.attempts == 3
    assert "boom" in letter.error
    assert letter.raw["item_list"][0]["text_item"]["text"] == "poison"
    assert [s.text for s in fake.sent(account=acct)] == ["ok"]


async def test_a_new_worker_takes_over_unacknowledged_entries_first_in_order(
    redis_store: RedisStore, fake: FakeILinkServer, clients: dict[str, wx.ILinkClient]
) -> None:
    store = redis_store
    acct = fake.default
    await save_accounts(store, fake, accounts_of(fake))
    await agree_partitions(store, 1)
    pub = Publisher(StreamPublisher(store, partitions=1), clients)
    stream = partition_keys(store.prefix, 0)[0]
    users = ["alice@im.wechat", "bob@im.wechat"]
    order = [await pub.publish(acct, users[i % 2], f"m{i}") for i in range(7)]
    # a worker that died after reading 4 entries, before acknowledging them
    await store.client.xgroup_create(stream, GROUP, identifier="0", mkstream=True)
    read: Any = await store.client.xreadgroup(GROUP, "ghost", streams={stream: ">"}, count=4)
    assert len(read[stream]) == 4
    assert await pending_count(store, 0) == 4
    recorder = Recorder()
    with trio.fail_after(20):
        async with open_fanout_worker(
            recorder, store=store, lease_ttl=TTL, node_id="heir", client_options=options(fake)
        ) as worker:
            await wait_for(lambda: recorder.total == 7)
            await wait_streams_empty(store, 1)
            assert await pending_count(store, 0) == 0
            stats = worker.statistics()

    # each user's messages strictly in stream order (the ghost's first, then those
    # nobody had read); different users' lanes may interleave
    user_of = {mid: users[i % 2] for i, mid in enumerate(order)}
    for user in users:
        assert [m for m in recorder.sequence if user_of[m] == user] == [
            m for m in order if user_of[m] == user
        ]
    assert sorted(recorder.sequence) == sorted(order)
    assert stats.claimed == 4
    assert stats.handled == 7


async def test_malformed_entries_are_acknowledged_and_the_partition_goes_on(
    redis_store: RedisStore, fake: FakeILinkServer, clients: dict[str, wx.ILinkClient]
) -> None:
    store = redis_store
    acct = fake.default
    await save_accounts(store, fake, accounts_of(fake))
    await agree_partitions(store, 1)
    pub = Publisher(StreamPublisher(store, partitions=1), clients)
    stream = partition_keys(store.prefix, 0)[0]
    _, good_raw = raw_text(acct, "alice@im.wechat", "x")
    bad_entries: list[dict[str, str]] = [
        {"a": acct.bot_id, "id": "1"},  # no message
        {"id": "2", "m": json.dumps(good_raw)},  # no account
        {"a": acct.bot_id, "m": json.dumps(good_raw)},  # no id
        {"a": acct.bot_id, "id": "nan", "m": json.dumps(good_raw)},  # id not a number
        {"a": acct.bot_id, "id": "3", "m": "{not json"},
        {"a": "nobody@im.bot", "id": "4", "m": json.dumps(good_raw)},  # unknown account
        {"a": acct.bot_id, "id": "5", "m": "[1, 2]"},  # JSON, not an object
        {"a": acct.bot_id, "id": "6", "m": '{"message_id": "x", "item_list": 5}'},  # wrong types
    ]
    for fields in bad_entries:
        await store.client.xadd(stream, fields)
    recorder = Recorder()
    with trio.fail_after(20):
        async with open_fanout_worker(
            recorder, store=store, lease_ttl=TTL, node_id="w", client_options=options(fake)
        ) as worker:
            mid = await pub.publish(acct, "alice@im.wechat", "after the garbage")
            await wait_for(lambda: recorder.total == 1)
            await wait_streams_empty(store, 1)
            assert await pending_count(store, 0) == 0
            assert worker.held == [0]
            stats = worker.statistics()

    assert list(recorder.counts) == [mid]
    assert (stats.handled, stats.failed, stats.dead_lettered) == (1, 0, 0)
    assert fake.sent_texts("alice@im.wechat", account=acct) == ["echo after the garbage"]


async def test_when_a_worker_leaves_the_other_takes_every_partition(
    redis_store: RedisStore, fake: FakeILinkServer, clients: dict[str, wx.ILinkClient]
) -> None:
    store = redis_store
    accounts = accounts_of(fake)
    await save_accounts(store, fake, accounts)
    await agree_partitions(store, 4)
    pub = Publisher(StreamPublisher(store, partitions=4), clients)
    # one lane per partition, so each worker has work
    lanes: dict[int, tuple[FakeAccount, str]] = {}
    for i in itertools.count():
        acct, user = accounts[i % len(accounts)], f"u{i}@im.wechat"
        lanes.setdefault(partition_of(acct.bot_id, user, 4), (acct, user))
        if len(lanes) == 4:
            break
    r1, r2 = Recorder("w1"), Recorder("w2")
    opts = options(fake)

    async def publish_round(tag: str) -> None:
        for acct, user in lanes.values():
            for n in range(3):
                await pub.publish(acct, user, f"{tag}{n}")

    with trio.fail_after(30):
        async with open_fanout_worker(
            r1, store=store, lease_ttl=TTL, node_id="w1", client_options=opts
        ) as w1:
            async with open_fanout_worker(
                r2, store=store, lease_ttl=TTL, node_id="w2", client_options=opts
            ) as w2:
                await wait_for(lambda: len(w1.held) == 2 and len(w2.held) == 2)
                await publish_round("a")
                await wait_for(lambda: r1.total + r2.total == 12)
                assert min(r1.total, r2.total) > 0, "a worker handled nothing"
                w2_partitions = set(w2.held)
            assert w2.held == []
            await wait_for(lambda: w1.held == [0, 1, 2, 3], timeout=2 * TTL)
            await publish_round("b")
            await wait_for(lambda: r1.total + r2.total == 24)
            await wait_streams_empty(store, 4)
            await trio.sleep(0.2)
            stats = w1.statistics()

    assert r1.total + r2.total == 24
    assert max((r1.counts + r2.counts).values()) == 1
    assert r2.total == 6  # nothing after it left
    assert stats.partitions == 4
    for partition, (acct, user) in lanes.items():
        expected = pub.published[(acct.bot_id, user)]
        got = r1.order[(acct.bot_id, user)]
        if partition in w2_partitions:
            assert r2.order[(acct.bot_id, user)] + got == expected
        else:
            assert got == expected
        assert fake.sent_texts(user, account=acct) == [
            f"echo {t}{n}" for t in "ab" for n in range(3)
        ]


async def test_a_slow_user_does_not_hold_up_others_in_the_same_partition(
    redis_store: RedisStore,
    fake: FakeILinkServer,
    clients: dict[str, wx.ILinkClient],
) -> None:
    """Lanes inside a partition: one user's slow handler, the other users carry on."""
    await save_accounts(redis_store, fake, accounts_of(fake))
    acct = fake.default
    publisher = Publisher(StreamPublisher(redis_store, partitions=1), clients)
    await agree_partitions(redis_store, 1)
    slow_user, quick_user = USERS[0], USERS[1]
    release = trio.Event()
    handled: list[tuple[str, str]] = []

    async def handler(msg: wx.Message) -> None:
        if msg.from_user_id == slow_user and msg.text == "0":
            await release.wait()
        handled.append((msg.from_user_id, msg.text))

    with trio.fail_after(20):
        async with open_fanout_worker(
            handler, store=redis_store, node_id="w", lease_ttl=TTL, client_options=options(fake)
        ):
            for i in range(3):
                await publisher.publish(acct, slow_user, str(i))
                await publisher.publish(acct, quick_user, str(i))
            await until(lambda: len(handled) >= 3, timeout=10)
            # the quick user is done while the slow user's first message still runs
            assert handled == [(quick_user, "0"), (quick_user, "1"), (quick_user, "2")]
            release.set()
            await until(lambda: len(handled) >= 6, timeout=10)
    assert [t for u, t in handled if u == slow_user] == ["0", "1", "2"]


async def test_a_worker_retry_reuses_the_reply_ids_and_a_timeout_counts_as_a_failure(
    redis_store: RedisStore,
    fake: FakeILinkServer,
    clients: dict[str, wx.ILinkClient],
) -> None:
    await save_accounts(redis_store, fake, accounts_of(fake))
    acct, user = fake.default, USERS[0]
    await agree_partitions(redis_store, 1)
    publisher = Publisher(StreamPublisher(redis_store, partitions=1), clients)
    attempts: list[str] = []

    async def handler(msg: wx.Message) -> None:
        attempts.append(msg.text)
        await msg.reply(f"{msg.text}: part 1")
        if msg.text == "flaky" and attempts.count("flaky") == 1:
            raise RuntimeError("first attempt fails")
        if msg.text == "stuck" and attempts.count("stuck") == 1:
            await trio.sleep_forever()  # cut by handler_timeout
        await msg.reply(f"{msg.text}: part 2")

    with trio.fail_after(20):
        async with open_fanout_worker(
            handler,
            store=redis_store,
            node_id="w",
            lease_ttl=TTL,
            retry_delay=0.05,
            handler_timeout=0.5,
            client_options=options(fake),
        ) as worker:
            await publisher.publish(acct, user, "flaky")
            await publisher.publish(acct, user, "stuck")
            await until(lambda: worker.statistics().handled == 2, timeout=10)
            stats = worker.statistics()
    assert attempts == ["flaky", "flaky", "stuck", "stuck"]
    assert stats.failed == 2
    assert stats.dead_lettered == 0
    # each "part 1" went out twice with one client_id: shown once
    assert fake.sent_texts(user) == [
        "flaky: part 1",
        "flaky: part 2",
        "stuck: part 1",
        "stuck: part 2",
    ]


async def test_a_worker_runs_handlers_under_the_monitors_policy(
    redis_store: RedisStore,
    fake: FakeILinkServer,
    clients: dict[str, wx.ILinkClient],
) -> None:
    # Issue 13 item 4: one HandlerRunner for monitor and worker. Transient send errors
    # are retried by the send (the handler runs once), a reply refused by the send
    # window finishes the message, a handler bug is dead-lettered with its cause.
    await save_accounts(redis_store, fake, accounts_of(fake))
    acct, user = fake.default, USERS[1]
    await agree_partitions(redis_store, 1)
    publisher = Publisher(StreamPublisher(redis_store, partitions=1), clients)
    runs = Counter[str]()

    async def handler(msg: wx.Message) -> None:
        runs[msg.text] += 1
        if msg.text == "bug":
            raise KeyError("bug")
        replies = 11 if msg.text == "chatty" else 1  # one more than a token's budget
        for i in range(replies):
            await msg.reply(f"{msg.text} {i}")

    fake.inject_fault("sendmessage", Fault.http_status(500), times=3)
    retry = wx.SendRetryPolicy(initial_delay=0.05, max_delay=0.1)
    with trio.fail_after(20):
        async with open_fanout_worker(
            handler,
            store=redis_store,
            node_id="w",
            lease_ttl=TTL,
            max_attempts=2,
            retry_delay=0.05,
            client_options={**options(fake), "send_retry": retry},
        ) as worker:
            for text in ("storm", "chatty", "bug"):
                await publisher.publish(acct, user, text)
            await wait_streams_empty(redis_store, 1)
            stats = worker.statistics()
    assert runs == {"storm": 1, "chatty": 1, "bug": 2}
    assert (stats.handled, stats.refused, stats.failed, stats.dead_lettered) == (1, 1, 2, 1)
    assert fake.sent_texts(user) == ["storm 0"] + [f"chatty {i}" for i in range(10)]
    (letter,) = (await redis_store.load(acct.bot_id)).dead_letters
    assert letter.error.startswith("handler: KeyError(")
    assert letter.attempts == 2


async def test_a_hung_acknowledgement_cannot_hold_the_worker(
    redis_store: RedisStore,
    fake: FakeILinkServer,
    clients: dict[str, wx.ILinkClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Issue 13 item 6, sibling in the worker: its shielded store writes carry their own
    # deadline, so a hung Redis cannot hold a drain; the entry stays pending.
    from weixin_trio.redis import _partitions

    monkeypatch.setattr(_partitions, "STORE_STEP_TIMEOUT", 0.3)
    await save_accounts(redis_store, fake, accounts_of(fake))
    acct, user = fake.default, USERS[2]
    await agree_partitions(redis_store, 1)
    publisher = Publisher(StreamPublisher(redis_store, partitions=1), clients)
    handled: list[int] = []

    async def handler(msg: wx.Message) -> None:
        handled.append(msg.message_id)

    async def hung_ack(**kwargs: Any) -> None:
        await trio.sleep(1000)

    with trio.fail_after(20):
        async with open_fanout_worker(
            handler,
            store=redis_store,
            node_id="w",
            lease_ttl=TTL,
            drain_timeout=1.0,
            client_options=options(fake),
        ) as worker:
            monkeypatch.setattr(worker, "_ack", hung_ack)
            await publisher.publish(acct, user, "x")
            await until(lambda: len(handled) == 1, timeout=10)
            start = trio.current_time()
        took = trio.current_time() - start
    assert took < 1.0 + 0.3 + 1.0  # drain + one store step + scheduling slack
    assert await pending_count(redis_store, 0) == 1


async def test_a_worker_message_keeps_conversation_state_in_the_store(
    redis_store: RedisStore, fake: FakeILinkServer, clients: dict[str, wx.ILinkClient]
) -> None:
    store = redis_store
    acct = fake.default
    await save_accounts(store, fake, accounts_of(fake))
    await agree_partitions(store, 2)
    pub = Publisher(StreamPublisher(store, partitions=2), clients)
    counts: list[int] = []

    async def handler(msg: wx.Message) -> None:
        state = await msg.state.get()
        state = await msg.state.update(n=state.get("n", 0) + 1)
        counts.append(state["n"])

    user = "alice@im.wechat"
    with trio.fail_after(20):
        async with open_fanout_worker(
            handler, store=store, lease_ttl=TTL, node_id="w", client_options=options(fake)
        ):
            await pub.publish(acct, user, "one")
            await pub.publish(acct, user, "two")
            await wait_for(lambda: len(counts) == 2)
    assert counts == [1, 2]
    assert await store.kv_items(acct.bot_id, "state") != {}
