"""RedisStore specifics: fencing, hash tags, outages, corrupt values, URLs and prefixes."""

from __future__ import annotations

import re
import socket
import ssl
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import coredis
import pytest
import trio

import weixin_trio as wx
from tests._redis_server import RedisServer
from weixin_trio.redis import RedisStore, open_redis_store
from weixin_trio.redis._scripts import ACCOUNT_KEYS, account_keys, lease_key
from weixin_trio.redis._store import safe_url
from weixin_trio.store import (
    DeadLetter,
    JournalEntry,
    LeaseLostError,
    OutboxEntry,
    StoreError,
    StoreUnavailableError,
)

from ._leaks import IGNORE_COREDIS_LEAK

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = IGNORE_COREDIS_LEAK

ACCOUNT = "bot1@im.bot"
OTHER = "bot2@im.bot"

Write = Callable[[RedisStore, str], Awaitable[None]]


def entry(mid: int) -> JournalEntry:
    return JournalEntry(mid, {"message_id": mid, "item_list": [{"type": 1}]})


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def messages(exc: BaseException) -> str:
    """Every message in ``exc``'s cause/context chain, joined."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def cluster_tag(key: str) -> str | None:
    """The hash tag Redis Cluster hashes ``key`` by (``None``: the whole key)."""
    start = key.find("{")
    if start < 0:
        return None
    end = key.find("}", start + 1)
    if end <= start + 1:
        return None
    return key[start + 1 : end]


async def _seed(store: RedisStore, account: str = ACCOUNT) -> None:
    """One pending message (1), one finished (2), a token, a queued text."""
    await store.load(account)
    await store.accept(
        account, cursor="c1", entries=[entry(1), entry(2)], context_tokens={"u": "t1"}
    )
    await store.mark_done(account, [2])
    await store.outbox_put(account, OutboxEntry("o1", "u", "queued", 1.0))


# Every write of an account, each changing something that load shows.
WRITES: dict[str, Write] = {
    "accept": lambda s, a: s.accept(
        a, cursor="c2", entries=[entry(3)], context_tokens={"u": "t2"}, last_inbound={"u": 9.0}
    ),
    "accept-empty": lambda s, a: s.accept(a, cursor="c2", entries=[], context_tokens={}),
    "mark_done": lambda s, a: s.mark_done(a, [1]),
    "record_failure": lambda s, a: s.record_failure(a, 1, 2),
    "dead_letter": lambda s, a: s.dead_letter(a, DeadLetter(1, entry(1).raw, 3, "E", 5.0)),
    "outbox_put": lambda s, a: s.outbox_put(a, OutboxEntry("o2", "u", "more", 2.0)),
    "outbox_remove": lambda s, a: s.outbox_remove(a, "o1"),
}


# --- fencing -------------------------------------------------------------------------


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
async def test_fenced_write_with_the_lease_succeeds(redis_store: RedisStore, write: Write) -> None:
    await _seed(redis_store)
    before = await redis_store.load(ACCOUNT)
    await redis_store.client.set(lease_key(redis_store.prefix, ACCOUNT), "token-A")
    redis_store.fence(ACCOUNT, "token-A")
    await write(redis_store, ACCOUNT)
    assert await redis_store.load(ACCOUNT) != before


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
async def test_fenced_write_after_takeover_is_refused(
    redis_store: RedisStore, write: Write
) -> None:
    await _seed(redis_store)
    before = await redis_store.load(ACCOUNT)
    key = lease_key(redis_store.prefix, ACCOUNT)
    await redis_store.client.set(key, "token-A")
    redis_store.fence(ACCOUNT, "token-A")
    await redis_store.client.set(key, "token-B")  # another process took over
    with pytest.raises(LeaseLostError, match="no longer holds the lease") as caught:
        await write(redis_store, ACCOUNT)
    assert isinstance(caught.value, StoreError)
    assert not isinstance(caught.value, StoreUnavailableError)
    assert ACCOUNT in str(caught.value)
    assert await redis_store.load(ACCOUNT) == before  # nothing was written
    assert await redis_store.client.get(key) == "token-B"


async def test_fenced_write_without_a_lease_key_is_refused(redis_store: RedisStore) -> None:
    await _seed(redis_store)
    before = await redis_store.load(ACCOUNT)
    redis_store.fence(ACCOUNT, "token-A")  # the lease expired (or was never taken)
    with pytest.raises(LeaseLostError):
        await redis_store.accept(ACCOUNT, cursor="c9", entries=[entry(9)], context_tokens={})
    assert await redis_store.load(ACCOUNT) == before


async def test_unfencing_and_other_accounts(redis_store: RedisStore) -> None:
    await _seed(redis_store)
    await _seed(redis_store, OTHER)
    await redis_store.client.set(lease_key(redis_store.prefix, ACCOUNT), "token-B")
    redis_store.fence(ACCOUNT, "token-A")
    with pytest.raises(LeaseLostError):
        await redis_store.mark_done(ACCOUNT, [1])
    # Fencing is per account: OTHER is not fenced.
    await redis_store.mark_done(OTHER, [1])
    assert (await redis_store.load(OTHER)).pending == ()
    # Un-fenced, writes go through whatever the lease key holds.
    redis_store.fence(ACCOUNT, None)
    redis_store.fence(ACCOUNT, None)  # idempotent
    await redis_store.mark_done(ACCOUNT, [1])
    assert (await redis_store.load(ACCOUNT)).pending == ()


async def test_only_the_lease_holder_writes(redis_server: RedisServer) -> None:
    """Two processes (two stores on one prefix): the new owner writes, the old cannot."""
    prefix = unique_prefix()
    key = lease_key(prefix, ACCOUNT)
    async with (
        open_redis_store(redis_server.url, prefix=prefix) as old,
        open_redis_store(redis_server.url, prefix=prefix) as new,
    ):
        await old.client.set(key, "old")
        old.fence(ACCOUNT, "old")
        await _seed(old)
        await new.client.set(key, "new")
        new.fence(ACCOUNT, "new")
        await new.accept(ACCOUNT, cursor="c-new", entries=[entry(5)], context_tokens={})
        with pytest.raises(LeaseLostError):
            await old.accept(ACCOUNT, cursor="c-old", entries=[entry(6)], context_tokens={})
        with pytest.raises(LeaseLostError):
            await old.mark_done(ACCOUNT, [5])
        state = await old.load(ACCOUNT)  # reads are not fenced
    assert state.cursor == "c-new"
    assert [e.message_id for e in state.pending] == [1, 5]


async def test_finished_and_unknown_ids_leave_no_stray_failure_counts(
    redis_store: RedisStore,
) -> None:
    """``load`` only shows counts of pending ids; the fails hash must not grow anyway."""
    keys = account_keys(redis_store.prefix, ACCOUNT)
    fails = keys[ACCOUNT_KEYS.index("fails")]
    await _seed(redis_store)  # 1 pending, 2 done
    await redis_store.accept(ACCOUNT, cursor="c", entries=[entry(3)], context_tokens={})
    await redis_store.record_failure(ACCOUNT, 1, 1)
    await redis_store.record_failure(ACCOUNT, 3, 2)
    assert await redis_store.client.hgetall(fails) == {"1": "1", "3": "2"}
    await redis_store.record_failure(ACCOUNT, 2, 1)  # finished
    await redis_store.record_failure(ACCOUNT, 404, 1)  # unknown
    assert set(await redis_store.client.hgetall(fails)) == {"1", "3"}
    await redis_store.mark_done(ACCOUNT, [1])
    await redis_store.dead_letter(ACCOUNT, DeadLetter(3, entry(3).raw, 2, "E", 1.0))
    assert await redis_store.client.hgetall(fails) == {}
    assert (await redis_store.load(ACCOUNT)).pending == ()


# --- key layout ----------------------------------------------------------------------


async def test_keys_of_an_account_share_one_hash_tag(redis_store: RedisStore) -> None:
    await _seed(redis_store)
    await redis_store.record_failure(ACCOUNT, 1, 1)
    await redis_store.dead_letter(ACCOUNT, DeadLetter(1, entry(1).raw, 1, "E", 1.0))
    await redis_store.accept(
        ACCOUNT, cursor="c", entries=[entry(3)], context_tokens={}, last_inbound={"u": 1.0}
    )
    await redis_store.record_failure(ACCOUNT, 3, 1)
    await redis_store.client.set(lease_key(redis_store.prefix, ACCOUNT), "x")
    await redis_store.save_account(ACCOUNT, {"token": "t"})
    keys = set(await redis_store.client.keys(redis_store.prefix + "*"))
    account_data = keys - {redis_store.accounts_key}
    assert redis_store.accounts_key in keys
    assert {k.rsplit(":", 1)[1] for k in account_data} == set(ACCOUNT_KEYS)
    tags = {cluster_tag(k) for k in account_data}
    assert len(tags) == 1
    (tag,) = tags
    assert tag
    assert all(k.startswith(f"{redis_store.prefix}:{{{tag}}}:") for k in account_data)
    assert account_data == set(account_keys(redis_store.prefix, ACCOUNT))


HOSTILE = ["a{b}c@im.bot", "{", "}", "}{", "{}", "with space", "x/y", "x/../y", "{x}:{y}"]


async def test_hostile_account_ids_get_one_tag_each_and_stay_isolated(
    redis_store: RedisStore,
) -> None:
    for n, account in enumerate(HOSTILE):
        await redis_store.load(account)
        await redis_store.accept(
            account, cursor=f"c{n}", entries=[entry(n)], context_tokens={"u": account}
        )
        await redis_store.outbox_put(account, OutboxEntry(f"o{n}", "u", account, 1.0))
    keys = await redis_store.client.keys(redis_store.prefix + "*")
    by_tag: dict[str | None, set[str]] = {}
    for key in keys:
        by_tag.setdefault(cluster_tag(key), set()).add(key)
    assert None not in by_tag
    assert len(by_tag) == len(HOSTILE)  # one tag per account, none shared
    for account in HOSTILE:
        own = set(account_keys(redis_store.prefix, account))
        (tag,) = {cluster_tag(k) for k in own}
        assert tag
        assert not set(tag) & set("{} /")
        assert by_tag[tag] == own & set(keys)
    for n, account in enumerate(HOSTILE):
        state = await redis_store.load(account)
        assert state.cursor == f"c{n}"
        assert [e.message_id for e in state.pending] == [n]
        assert state.context_tokens == {"u": account}
        assert [o.text for o in state.outbox] == [account]


# --- connecting, URLs, prefixes --------------------------------------------------------


async def test_nothing_listening_is_unavailable_not_a_group() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with trio.fail_after(10), pytest.raises(StoreUnavailableError) as caught:
        async with open_redis_store(url, connect_timeout=2):
            pytest.fail("connected to nothing")
    assert type(caught.value) is StoreUnavailableError
    assert url in str(caught.value)


@pytest.mark.parametrize(
    "auth", ["user:hunter2-secret", ":hunter2-secret", "user:hunter2-secret%40x"]
)
async def test_password_never_shows_when_unreachable(auth: str) -> None:
    port = free_port()
    with trio.fail_after(10), pytest.raises(StoreUnavailableError) as caught:
        async with open_redis_store(f"redis://{auth}@127.0.0.1:{port}/0", connect_timeout=2):
            pytest.fail("connected to nothing")
    text = messages(caught.value)
    assert "hunter2" not in text
    user = auth.partition(":")[0]
    assert f"redis://{user}:***@127.0.0.1:{port}/0" in str(caught.value)


async def test_wrong_password_is_a_store_error_without_the_password(
    redis_server: RedisServer,
) -> None:
    url = redis_server.url.replace("redis://", "redis://nobody:hunter2-secret@")
    with trio.fail_after(10), pytest.raises(StoreError) as caught:
        async with open_redis_store(url, connect_timeout=2):
            pytest.fail("authenticated with a wrong password")
    assert not isinstance(caught.value, BaseExceptionGroup)
    assert "hunter2" not in messages(caught.value)
    assert "nobody:***@127.0.0.1" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://user@host:1/2", "redis://user@host:1/2"),
        ("redis://user:pw@host:1/2", "redis://user:***@host:1/2"),
        ("redis://:pw@host/0", "redis://:***@host/0"),
        ("rediss://u:p%40ss@Cache.Example:6380/1?ssl_cert_reqs=none",
         "rediss://u:***@Cache.Example:6380/1?ssl_cert_reqs=none"),
        ("redis://u:pw@[::1]:6379/0", "redis://u:***@[::1]:6379/0"),
        ("redis://u:p@w@host:1/0", "redis://u:***@host:1/0"),
    ],
)  # fmt: skip
def test_safe_url(url: str, shown: str) -> None:
    assert safe_url(url) == shown


@pytest.mark.parametrize("prefix", ["", "a b", "a{b", "b}", "p/q", "ü", "x\n", "*"])
async def test_invalid_prefix_is_a_value_error(redis_server: RedisServer, prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        async with open_redis_store(redis_server.url, prefix=prefix):
            pytest.fail("an invalid prefix was accepted")
    client: coredis.Redis[str] = coredis.Redis.from_url(redis_server.url, decode_responses=True)
    with pytest.raises(ValueError, match="prefix"):
        RedisStore(client, prefix=prefix)


async def test_valid_prefix_characters(redis_server: RedisServer) -> None:
    prefix = f"App_1.bot-{uuid.uuid4().hex[:8]}:v2"
    async with open_redis_store(redis_server.url, prefix=prefix) as store:
        await _seed(store)
        assert (await store.load(ACCOUNT)).cursor == "c1"
        assert all(k.startswith(prefix + ":") for k in await store.client.keys(prefix + "*"))


# --- outages -------------------------------------------------------------------------


@pytest.fixture
def own_redis(redis_server: RedisServer) -> Iterator[RedisServer]:
    """A private Redis (with an AOF, so a restart keeps the data) to stop and start."""
    del redis_server  # only for its skip/fail logic when Redis is missing
    with RedisServer(appendonly=True) as server:
        yield server


async def test_outage_then_recovery_on_the_same_store(own_redis: RedisServer) -> None:
    async with open_redis_store(own_redis.url, prefix="out") as store:
        await _seed(store)
        before = await store.load(ACCOUNT)
        await trio.to_thread.run_sync(own_redis.stop)

        with trio.fail_after(20):
            for write in WRITES.values():
                with pytest.raises(StoreUnavailableError, match=re.escape(ACCOUNT)):
                    await write(store, ACCOUNT)
            with pytest.raises(StoreUnavailableError, match=re.escape(ACCOUNT)):
                await store.load(ACCOUNT)
            with pytest.raises(StoreUnavailableError):
                await store.save_account(ACCOUNT, {"token": "t"})
            with pytest.raises(StoreUnavailableError):
                await store.load_accounts()
            with pytest.raises(StoreUnavailableError):
                await store.remove_account(ACCOUNT)

        await trio.to_thread.run_sync(own_redis.start)
        with trio.fail_after(10):
            while True:
                try:
                    state = await store.load(ACCOUNT)
                except StoreUnavailableError:
                    await trio.sleep(0.05)
                else:
                    break
        assert state == before  # the failed writes left nothing behind
        await store.accept(ACCOUNT, cursor="c2", entries=[entry(3)], context_tokens={})
        await store.mark_done(ACCOUNT, [1])
        await store.save_account(ACCOUNT, {"token": "t"})
        state = await store.load(ACCOUNT)
        assert state.cursor == "c2"
        assert [e.message_id for e in state.pending] == [3]
        assert [a["account_id"] for a in await store.load_accounts()] == [ACCOUNT]


async def test_open_while_down_then_up(own_redis: RedisServer) -> None:
    await trio.to_thread.run_sync(own_redis.stop)
    with trio.fail_after(10), pytest.raises(StoreUnavailableError, match=re.escape(own_redis.url)):
        async with open_redis_store(own_redis.url, connect_timeout=2):
            pytest.fail("connected while Redis was down")
    await trio.to_thread.run_sync(own_redis.start)
    async with open_redis_store(own_redis.url, prefix="up") as store:
        await _seed(store)
        assert (await store.load(ACCOUNT)).cursor == "c1"


# --- corrupt values ------------------------------------------------------------------


CORRUPTIONS: dict[str, tuple[str, str, str]] = {
    # name: (key, field ("" for a list), value)
    "pending-garbage": ("pending", "7", "garbage"),
    "pending-not-json": ("pending", "7", "1:not json"),
    "pending-no-raw": ("pending", "7", '1:{"n":0}'),
    "pending-not-object": ("pending", "7", "1:[1,2]"),
    "pending-bad-id": ("pending", "seven", '1:{"raw":{},"n":0}'),
    "fails-not-int": ("fails", "1", "many"),
    "seen-not-int": ("seen", "", "abc"),
    "inbound-not-float": ("inbound", "u", "yesterday"),
    "dead-not-json": ("dead", "", "{"),
    "dead-missing-field": ("dead", "", '{"id":1}'),
    "outbox-garbage": ("outbox", "o9", "junk"),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
async def test_corrupt_value_is_a_store_error_naming_the_account(
    redis_store: RedisStore, corruption: tuple[str, str, str]
) -> None:
    name, field, value = corruption
    await _seed(redis_store)
    await _seed(redis_store, OTHER)
    key = account_keys(redis_store.prefix, ACCOUNT)[ACCOUNT_KEYS.index(name)]
    if field:
        await redis_store.client.hset(key, {field: value})
    else:
        await redis_store.client.rpush(key, [value])
    with pytest.raises(StoreError, match=f"corrupt.*{re.escape(ACCOUNT)}") as caught:
        await redis_store.load(ACCOUNT)
    assert not isinstance(caught.value, StoreUnavailableError)
    assert (await redis_store.load(OTHER)).cursor == "c1"  # the other account is fine


async def test_wrong_type_key_is_a_store_error_naming_the_account(
    redis_store: RedisStore,
) -> None:
    await _seed(redis_store)
    pending = account_keys(redis_store.prefix, ACCOUNT)[ACCOUNT_KEYS.index("pending")]
    await redis_store.client.delete([pending])
    await redis_store.client.set(pending, "a string, not a hash")
    with pytest.raises(StoreError, match=re.escape(ACCOUNT)) as caught:
        await redis_store.load(ACCOUNT)
    assert not isinstance(caught.value, (StoreUnavailableError, LeaseLostError))


@pytest.mark.parametrize(
    "body", ["{not json", "[1, 2]", '{"token": "t"}', '{"account_id": "someone-else"}']
)
async def test_corrupt_account_is_a_store_error_naming_it(
    redis_store: RedisStore, body: str
) -> None:
    await redis_store.save_account("good@im.bot", {"token": "t"})
    await redis_store.client.hset(redis_store.accounts_key, {"bad@im.bot": body})
    with pytest.raises(StoreError, match=re.escape("'bad@im.bot'")):
        await redis_store.load_accounts()
    assert await redis_store.remove_account("bad@im.bot") is True
    assert [a["account_id"] for a in await redis_store.load_accounts()] == ["good@im.bot"]


async def test_store_satisfies_the_protocol(redis_store: RedisStore) -> None:
    assert isinstance(redis_store, wx.Store)
    assert redis_store.prefix in repr(redis_store)
    await redis_store.flush(ACCOUNT)
    await redis_store.aclose()
    assert (await redis_store.load(ACCOUNT)).pending == ()  # aclose leaves the pool to its owner


def test_tls_urls_verify_certificates_and_host_names_by_default() -> None:
    """coredis alone accepts any certificate name for ``rediss://``; we do not."""
    seen: dict[str, Any] = {}
    real_from_url = coredis.Redis.from_url

    def spy(url: str, **kwargs: Any) -> Any:
        seen.update(kwargs)
        return real_from_url(url, **kwargs)

    async def main() -> None:
        with pytest.raises(StoreUnavailableError):
            async with open_redis_store("rediss://127.0.0.1:1/0", connect_timeout=0.5):
                pass

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(coredis.Redis, "from_url", spy)
        trio.run(main)
    context = seen["ssl_context"]
    assert context.check_hostname is True
    assert context.verify_mode == ssl.CERT_REQUIRED
