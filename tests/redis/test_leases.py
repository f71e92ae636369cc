"""Account leases on a real Redis with the real clock (never ``autojump_clock``).

``Leases`` primitives first, then ``open_leased_accounts``: one node, two nodes sharing
and handing over, a stolen lease, an account added at runtime, and a Redis outage.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import trio

from tests._redis_server import RedisServer
from weixin_trio.redis import Leases, open_leased_accounts, open_redis_store
from weixin_trio.testing import FakeAccount, FakeILinkServer

from ._leaks import IGNORE_COREDIS_LEAK

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import weixin_trio as wx
    from weixin_trio.redis import LeasedAccounts, RedisStore

TTL = 1.5  # renewal rounds every 0.5 s
ROUND = TTL / 3
SAFE_FRACTION = 0.8  # a monitor runs at most until the last renewal sent + 0.8 TTL
USER = "alice@im.wechat"


@attrs.frozen
class Handled:
    node: str
    account: str
    message_id: int


@pytest.fixture
def fake() -> FakeILinkServer:
    return FakeILinkServer(seed=7, hold=0.5)  # short polls: the clock is real


def handler_for(node: str, log: list[Handled]) -> Callable[[wx.Message], Any]:
    async def handle(msg: wx.Message) -> None:
        log.append(Handled(node, msg.client.account_id, msg.message_id))

    return handle


def options(fake: FakeILinkServer) -> dict[str, Any]:
    return {"transport": fake.transport(), "pacing": None}


async def save(store: RedisStore, fake: FakeILinkServer, account: FakeAccount) -> None:
    data = {"token": account.token, "base_url": fake.base_url, "created_at": 0.0}
    await store.save_account(account.bot_id, data)


async def add_accounts(store: RedisStore, fake: FakeILinkServer, n: int) -> list[FakeAccount]:
    accounts = [fake.add_account() for _ in range(n)]
    for account in accounts:
        await save(store, fake, account)
    return accounts


async def wait_for(predicate: Callable[[], bool], timeout: float) -> float:
    """Wait until ``predicate()`` holds; return how long it took."""
    start = trio.current_time()
    with trio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110 - no event to wait on
            await trio.sleep(0.01)
    return trio.current_time() - start


def serving(leased: LeasedAccounts, accounts: list[FakeAccount]) -> bool:
    """Every account's monitor runs in this node."""
    return all(leased.runner.monitor(a.bot_id) is not None for a in accounts)


def stopped(leased: LeasedAccounts, account: FakeAccount) -> bool:
    runner = leased.runner
    return runner.monitor(account.bot_id) is None and not runner.running(account.bot_id)


def polls(fake: FakeILinkServer, account: FakeAccount) -> int:
    return sum(1 for r in fake.requests_to("getupdates") if r.account == account.token)


async def owners(leases: Leases, accounts: list[FakeAccount]) -> dict[str, str | None]:
    return {a.bot_id: await leases.owner(a.bot_id) for a in accounts}


async def wait_no_pending(store: RedisStore, accounts: list[FakeAccount]) -> None:
    """Every done mark is flushed (nothing would be redelivered at a restart)."""
    with trio.fail_after(10):
        for account in accounts:
            while (await store.load(account.bot_id)).pending:  # noqa: ASYNC110
                await trio.sleep(0.02)


def once_each(log: list[Handled]) -> Counter[int]:
    return Counter(h.message_id for h in log)


# --- Leases primitives -------------------------------------------------------------------


def leases_of(store: RedisStore, node: str, ttl: float = 5.0) -> Leases:
    return Leases(store.client, prefix=store.prefix, node_id=node, ttl=ttl)


async def test_claim_is_exclusive_and_only_the_holder_renews_or_releases(
    redis_store: RedisStore,
) -> None:
    a, b = leases_of(redis_store, "host/a"), leases_of(redis_store, "b")
    name = "bot@im.bot"
    key = a.key(name)
    assert await a.owner(name) is None

    token = await a.claim(name)
    assert token is not None
    assert token.startswith("host/a/")
    assert await b.claim(name) is None  # NX: held
    assert await a.claim(name) is None  # even by its holder (one token per lease)
    assert await a.owner(name) == "host/a"  # a "/" in a node id is kept
    assert 4000 < await redis_store.client.pttl(key) <= 5000
    assert await redis_store.client.get(key) == token

    # renew: only with the holder's token, and it extends the lease
    await redis_store.client.pexpire(key, 300)
    assert not await b.renew(name, "b/0123456789abcdef")
    assert await redis_store.client.pttl(key) <= 300
    assert await a.renew(name, token)
    assert await redis_store.client.pttl(key) > 4000
    assert not await a.renew("free@im.bot", token)  # never creates a lease
    assert await a.owner("free@im.bot") is None

    # release: only by the holder
    assert not await b.release(name, "b/0123456789abcdef")
    assert await a.owner(name) == "host/a"
    assert await a.release(name, token)
    assert await a.owner(name) is None
    assert not await a.release(name, token)  # already free
    assert not await a.renew(name, token)
    other = await b.claim(name)
    assert other is not None
    assert await b.owner(name) == "b"
    assert not await a.release(name, token)  # a stale token frees nothing
    assert await b.owner(name) == "b"


async def test_an_unrenewed_lease_expires_after_its_ttl(redis_store: RedisStore) -> None:
    a, b = leases_of(redis_store, "a", ttl=0.2), leases_of(redis_store, "b")
    token = await a.claim("bot@im.bot")
    assert token is not None
    assert await b.claim("bot@im.bot") is None
    await trio.sleep(0.3)
    assert await a.owner("bot@im.bot") is None
    assert await b.claim("bot@im.bot") is not None
    assert not await a.renew("bot@im.bot", token)  # too late: the lease is b's
    assert await b.owner("bot@im.bot") == "b"


async def test_heartbeat_lists_live_nodes_and_drops_expired_and_leaving_ones(
    redis_store: RedisStore,
) -> None:
    short, long, third = (
        leases_of(redis_store, "n-short", ttl=0.3),
        leases_of(redis_store, "n-long"),
        leases_of(redis_store, "a-third"),
    )
    assert await short.heartbeat() == ["n-short"]
    assert await long.heartbeat() == ["n-long", "n-short"]
    assert await third.heartbeat() == ["a-third", "n-long", "n-short"]  # sorted
    await trio.sleep(0.4)
    assert await long.heartbeat() == ["a-third", "n-long"]  # n-short missed its TTL
    assert await short.heartbeat() == ["a-third", "n-long", "n-short"]  # back again
    assert await third.heartbeat(leaving=True) == ["n-long", "n-short"]
    assert await long.heartbeat() == ["n-long", "n-short"]
    assert await short.heartbeat(leaving=True) == ["n-long"]
    assert await long.heartbeat(leaving=True) == []


# --- open_leased_accounts -------------------------------------------------------------------


async def test_one_node_claims_every_account_and_serves_each(
    redis_store: RedisStore, fake: FakeILinkServer
) -> None:
    accounts = await add_accounts(redis_store, fake, 4)
    ids = sorted(a.bot_id for a in accounts)
    log: list[Handled] = []
    probe = leases_of(redis_store, "probe")
    async with open_leased_accounts(
        handler_for("solo", log),
        store=redis_store,
        node_id="solo",
        lease_ttl=TTL,
        client_options=options(fake),
    ) as leased:
        assert leased.node_id == "solo"
        assert leased.account_ids == ids  # the first round ran before the block
        assert leased.nodes == ["solo"]
        assert set((await owners(probe, accounts)).values()) == {"solo"}
        mids = {fake.inject_text(USER, f"to {a.bot_id}", account=a): a.bot_id for a in accounts}
        await wait_for(lambda: len(log) == 4, timeout=10)
        assert serving(leased, accounts)
        assert sorted(leased.statistics()) == ids
        await trio.sleep(ROUND + 0.1)  # a renewal round changes nothing
        assert leased.account_ids == ids
        assert leased.lost == 0
    assert {h.message_id: h.account for h in log} == mids
    assert all(h.node == "solo" for h in log)
    # leaving released every lease and left the node set
    assert set((await owners(probe, accounts)).values()) == {None}
    assert await probe.heartbeat(leaving=True) == []


async def test_two_nodes_share_and_hand_over_without_a_ttl_wait(
    redis_server: RedisServer, redis_store: RedisStore, fake: FakeILinkServer
) -> None:
    accounts = await add_accounts(redis_store, fake, 4)
    ids = sorted(a.bot_id for a in accounts)
    probe = leases_of(redis_store, "probe")
    log: list[Handled] = []
    injected: list[int] = []

    async def inject_round(tag: str) -> set[int]:
        mids = {fake.inject_text(USER, f"{tag} {a.bot_id}", account=a) for a in accounts}
        injected.extend(mids)
        await wait_for(lambda: mids <= {h.message_id for h in log}, timeout=10)
        return mids

    def owner_of(mids: set[int]) -> dict[str, set[str]]:
        nodes: dict[str, set[str]] = {}
        for h in log:
            if h.message_id in mids:
                nodes.setdefault(h.account, set()).add(h.node)
        return nodes

    async with open_leased_accounts(
        handler_for("a", log), store=redis_store, node_id="a", lease_ttl=TTL,
        client_options=options(fake),
    ) as a:  # fmt: skip
        assert a.account_ids == ids
        first = await inject_round("alone")
        assert owner_of(first) == {i: {"a"} for i in ids}

        async with (
            open_redis_store(redis_server.url, prefix=redis_store.prefix) as store_b,
            open_leased_accounts(
                handler_for("b", log), store=store_b, node_id="b", lease_ttl=TTL,
                client_options=options(fake),
            ) as b,
        ):  # fmt: skip
            # a gives up two accounts (drained, then released), b claims them
            await wait_for(lambda: len(a.account_ids) == len(b.account_ids) == 2, timeout=6 * ROUND)
            assert sorted(a.account_ids + b.account_ids) == ids
            assert a.nodes == b.nodes == ["a", "b"]
            current = await owners(probe, accounts)
            assert {i for i, n in current.items() if n == "b"} == set(b.account_ids)
            assert {i for i, n in current.items() if n == "a"} == set(a.account_ids)
            shared = [x for x in accounts if x.bot_id in b.account_ids]
            await wait_for(lambda: serving(b, shared), timeout=5)
            assert not any(a.runner.running(x.bot_id) for x in shared)
            second = await inject_round("shared")
            assert owner_of(second) == {i: {current[i] or "?"} for i in ids}
            b_ids = b.account_ids
            assert a.lost == b.lost == 0
        left = trio.current_time()
        # b released its leases on the way out: nobody waits for them to expire
        current = await owners(probe, accounts)
        assert all(current[i] in (None, "a") for i in b_ids)
        taken = await wait_for(lambda: a.account_ids == ids, timeout=TTL)
        assert trio.current_time() - left < TTL
        assert taken < TTL
        await wait_for(lambda: serving(a, accounts), timeout=5)
        assert a.nodes == ["a"]
        third = await inject_round("after b left")
        assert owner_of(third) == {i: {"a"} for i in ids}
        await trio.sleep(0.6)  # one more poll of each account: nothing comes twice
    counts = once_each(log)
    assert sorted(counts) == sorted(injected)
    assert set(counts.values()) == {1}  # every message handled exactly once
    assert len(injected) == 12


async def test_a_stolen_lease_stops_the_account_here(
    redis_store: RedisStore, fake: FakeILinkServer
) -> None:
    accounts = await add_accounts(redis_store, fake, 2)
    victim, kept = accounts
    log: list[Handled] = []
    async with open_leased_accounts(
        handler_for("n", log), store=redis_store, node_id="n", lease_ttl=TTL,
        client_options=options(fake),
    ) as leased:  # fmt: skip
        await wait_for(lambda: serving(leased, accounts), timeout=5)
        fake.inject_text(USER, "before", account=victim)
        await wait_for(lambda: len(log) == 1, timeout=5)

        key = leased_key(redis_store, victim)
        await redis_store.client.set(key, "thief/0123456789abcdef")  # no TTL: kept
        await wait_for(lambda: leased.lost == 1, timeout=2 * ROUND + 0.5)
        # at once, not at the safe end of the last renewal (up to 0.8 TTL later)
        await wait_for(lambda: stopped(leased, victim), timeout=0.4)
        assert leased.account_ids == [kept.bot_id]
        assert serving(leased, [kept])
        polled = polls(fake, victim)

        stolen = fake.inject_text(USER, "after the theft", account=victim)
        other = fake.inject_text(USER, "still served", account=kept)
        await wait_for(lambda: other in {h.message_id for h in log}, timeout=5)
        await trio.sleep(2 * TTL)  # several rounds: it is never claimed nor polled again
        assert stolen not in {h.message_id for h in log}
        assert polls(fake, victim) == polled
        assert stopped(leased, victim)
        assert leased.lost == 1
        assert leased.account_ids == [kept.bot_id]
        assert await redis_store.client.get(key) == "thief/0123456789abcdef"

        # the thief lets go: the account is claimed again and the message handled
        await redis_store.client.delete([key])
        await wait_for(lambda: stolen in {h.message_id for h in log}, timeout=3 * TTL)
        assert leased.account_ids == sorted(a.bot_id for a in accounts)
    assert set(once_each(log).values()) == {1}
    assert [h.node for h in log] == ["n"] * 3


async def test_a_handler_draining_after_its_lease_was_lost_cannot_write(
    redis_store: RedisStore, fake: FakeILinkServer
) -> None:
    (victim,) = await add_accounts(redis_store, fake, 1)
    entered, gate = trio.Event(), trio.Event()

    async def slow(msg: wx.Message) -> None:
        entered.set()
        await gate.wait()

    async with open_leased_accounts(
        slow, store=redis_store, node_id="n", lease_ttl=TTL, client_options=options(fake),
        drain_timeout=5.0,
    ) as leased:  # fmt: skip
        mid = fake.inject_text(USER, "slow", account=victim)
        with trio.fail_after(5):
            await entered.wait()
        await redis_store.client.set(leased_key(redis_store, victim), "thief/0123456789abcdef")
        await wait_for(lambda: leased.lost == 1, timeout=2 * ROUND + 0.5)
        gate.set()  # the handler finishes while its monitor drains
        await wait_for(lambda: stopped(leased, victim), timeout=5)
    # its done mark was refused (fenced): the new owner redelivers the message
    state = await redis_store.load(victim.bot_id)
    assert [e.message_id for e in state.pending] == [mid]
    assert await redis_store.client.get(leased_key(redis_store, victim)) == (
        "thief/0123456789abcdef"
    )


def leased_key(store: RedisStore, account: FakeAccount) -> str:
    return leases_of(store, "probe").key(account.bot_id)


async def test_an_account_saved_while_running_is_picked_up(
    redis_store: RedisStore, fake: FakeILinkServer
) -> None:
    first = await add_accounts(redis_store, fake, 1)
    log: list[Handled] = []
    async with open_leased_accounts(
        handler_for("n", log), store=redis_store, node_id="n", lease_ttl=TTL,
        client_options=options(fake),
    ) as leased:  # fmt: skip
        assert leased.account_ids == [first[0].bot_id]
        changed = False

        async def watch(*, task_status: trio.TaskStatus[None]) -> None:
            nonlocal changed
            task_status.started()
            await leased.wait_changed()
            changed = True

        async with trio.open_nursery() as nursery:
            await nursery.start(watch)
            fresh = fake.add_account()  # a new QR login
            mid = fake.inject_text(USER, "hello new bot", account=fresh)
            await save(redis_store, fake, fresh)
            took = await wait_for(lambda: fresh.bot_id in leased.account_ids, timeout=2 * TTL)
            assert took < 2 * ROUND + 0.3  # within a couple of rounds
            await wait_for(lambda: changed, timeout=1)
        assert leased.account_ids == sorted([first[0].bot_id, fresh.bot_id])
        await wait_for(lambda: mid in {h.message_id for h in log}, timeout=5)
    assert log == [Handled("n", fresh.bot_id, mid)]


@pytest.fixture
def own_redis(redis_server: RedisServer) -> Iterator[RedisServer]:
    """A private Redis with an AOF (a restart keeps accounts and leases), to stop."""
    del redis_server  # only for its skip/fail logic when Redis is missing
    with RedisServer(appendonly=True) as server:
        yield server


@IGNORE_COREDIS_LEAK
async def test_redis_outage_stops_polling_at_the_safe_end_and_resumes(
    own_redis: RedisServer, fake: FakeILinkServer, caplog: pytest.LogCaptureFixture
) -> None:
    # The "lease round failed" warnings keep their exception (and through its traceback
    # coredis's failed connections) in caplog's records until the session ends, where
    # the leak filter no longer applies: drop them before the teardown's collection.
    try:
        await _outage(own_redis, fake, caplog)
    finally:
        caplog.clear()


async def _outage(
    own_redis: RedisServer, fake: FakeILinkServer, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[Handled] = []
    prefix = f"t{uuid.uuid4().hex[:12]}"
    async with open_redis_store(own_redis.url, prefix=prefix) as store:
        accounts = await add_accounts(store, fake, 2)
        async with open_leased_accounts(
            handler_for("n", log), store=store, node_id="n", lease_ttl=TTL,
            client_options=options(fake),
        ) as leased:  # fmt: skip
            warm_up = {fake.inject_text(USER, "warm-up", account=a) for a in accounts}
            await wait_for(lambda: len(log) == 2, timeout=10)
            await wait_no_pending(store, accounts)

            await trio.to_thread.run_sync(own_redis.stop)
            down = trio.current_time()
            # the leases may expire from now + 0.8 TTL... polling must stop before that
            await trio.sleep_until(down + SAFE_FRACTION * TTL + 0.15)
            assert all(stopped(leased, a) for a in accounts)
            polled = {a.bot_id: polls(fake, a) for a in accounts}
            meanwhile = {
                fake.inject_text(USER, f"while down #{i}", account=a): a.bot_id
                for i in range(2)
                for a in accounts
            }
            await trio.sleep(ROUND + 0.2)  # rounds keep failing: nothing restarts
            assert {a.bot_id: polls(fake, a) for a in accounts} == polled
            assert len(log) == 2  # nothing handled while Redis is down
            assert all(stopped(leased, a) for a in accounts)

            await trio.to_thread.run_sync(own_redis.start)
            # the leases expired meanwhile: lost, then claimed again
            await wait_for(lambda: serving(leased, accounts), timeout=5 * TTL)
            await wait_for(lambda: len(log) == 2 + len(meanwhile), timeout=10)
            assert leased.lost == len(accounts)
            failed_rounds = [
                r
                for r in caplog.records
                if r.name == "weixin_trio.leases" and r.levelname == "WARNING"
            ]
            assert failed_rounds  # every failed round was logged, and the block survived
            assert leased.account_ids == sorted(a.bot_id for a in accounts)
            await trio.sleep(0.6)  # one more poll of each account: nothing comes twice
    assert set(once_each(log).values()) == {1}  # exactly once, the warm-up included
    handled = {h.message_id: h.account for h in log}
    assert set(handled) == warm_up | set(meanwhile)
    assert {mid: handled[mid] for mid in meanwhile} == meanwhile
