"""A monitor on Redis: an outage holds the batch, a stolen lease stops the monitor."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest
import trio

import weixin_trio as wx
from tests._redis_server import RedisServer
from weixin_trio.redis import RedisStore, open_redis_store
from weixin_trio.redis._scripts import lease_key
from weixin_trio.store import LeaseLostError
from weixin_trio.testing import FakeILinkServer

from .._helpers import until
from ._leaks import IGNORE_COREDIS_LEAK

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

pytestmark = IGNORE_COREDIS_LEAK

USERS = ["alice@im.wechat", "bob@im.wechat", "carol@im.wechat"]
FAST = wx.Backoff(retry_delay=0.1, backoff_delay=0.2)


@pytest.fixture
def own_redis(redis_server: RedisServer) -> Iterator[RedisServer]:
    """A private Redis with an AOF (a restart keeps the data), to stop and start."""
    del redis_server  # only for its skip/fail logic when Redis is missing
    with RedisServer(appendonly=True) as server:
        yield server


@pytest.fixture
def fake() -> FakeILinkServer:
    return FakeILinkServer(seed=0, hold=0.5)  # short polls: the clock is real


@pytest.fixture
async def client(fake: FakeILinkServer) -> AsyncIterator[wx.ILinkClient]:
    async with wx.open_client(
        token=fake.token,
        base_url=fake.base_url,
        transport=fake.transport(),
        account_id=fake.default.bot_id,
        pacing=None,
    ) as client:
        yield client


async def _wait_no_pending(store: RedisStore, account: str) -> None:
    with trio.fail_after(10):
        while (await store.load(account)).pending:  # noqa: ASYNC110 - polling Redis
            await trio.sleep(0.02)


async def test_redis_lost_mid_run_holds_the_batch_until_it_is_back(
    own_redis: RedisServer, fake: FakeILinkServer, client: wx.ILinkClient
) -> None:
    handled: list[tuple[str, str, int]] = []

    async def handler(msg: wx.Message) -> None:
        handled.append((msg.from_user_id, msg.text, msg.message_id))

    account = client.account_id
    async with (
        open_redis_store(own_redis.url, prefix=f"t{uuid.uuid4().hex[:12]}") as store,
        wx.open_monitor(client, handler, store=store, backoff=FAST) as monitor,
    ):
        warm_up = fake.inject_text(USERS[0], "warm-up")
        await until(lambda: len(handled) == 1, timeout=10)
        await _wait_no_pending(store, account)

        await trio.to_thread.run_sync(own_redis.stop)
        sent: dict[str, list[int]] = {user: [] for user in USERS}
        for i in range(3):
            for user in USERS:
                sent[user].append(fake.inject_text(user, f"{user} #{i}"))
        injected = {mid for mids in sent.values() for mid in mids}
        await until(lambda: monitor.statistics().store_failures >= 5, timeout=10)
        await until(lambda: bool(set(fake.delivered_message_ids()) & injected), timeout=10)
        assert [h[2] for h in handled] == [warm_up]  # none handled while Redis is down
        assert not injected & fake.acknowledged_message_ids()  # the cursor never moved
        failures_while_down = monitor.statistics().store_failures

        await trio.to_thread.run_sync(own_redis.start)
        await until(lambda: len(handled) == 1 + len(injected), timeout=20)
        with trio.fail_after(10):
            await monitor.wait_idle()
        await trio.sleep(0.6)  # one more poll: nothing is handled twice
        stats = monitor.statistics()
    assert len(handled) == 1 + len(injected)
    ids = [h[2] for h in handled]
    assert len(set(ids)) == len(ids)  # exactly once
    assert set(ids) == injected | {warm_up}
    for user in USERS:
        assert [h[2] for h in handled[1:] if h[0] == user] == sent[user]  # in order per user
        assert [h[1] for h in handled[1:] if h[0] == user] == [f"{user} #{i}" for i in range(3)]
    assert stats.store_failures >= failures_while_down >= 5
    assert stats.handled == 1 + len(injected)
    async with open_redis_store(own_redis.url, prefix=store.prefix) as again:
        state = await again.load(account)
    assert state.pending == ()
    assert injected <= set(state.seen_ids)


async def test_stolen_lease_stops_the_monitor(
    redis_store: RedisStore, fake: FakeILinkServer, client: wx.ILinkClient
) -> None:
    handled: list[str] = []

    async def handler(msg: wx.Message) -> None:
        handled.append(msg.text)

    account = client.account_id
    key = lease_key(redis_store.prefix, account)
    await redis_store.client.set(key, "token-A")
    redis_store.fence(account, "token-A")
    stolen = -1

    async def run() -> None:
        nonlocal stolen
        async with wx.open_monitor(client, handler, store=redis_store, backoff=FAST):
            # While it holds the lease, the fenced monitor works.
            fake.inject_text(USERS[0], "before")
            await until(lambda: handled == ["before"], timeout=10)
            await _wait_no_pending(redis_store, account)

            await redis_store.client.set(key, "token-B")  # another process took over
            stolen = fake.inject_text(USERS[0], "after")
            with trio.fail_after(10):
                await trio.sleep_forever()  # the crash cancels this

    with pytest.raises(wx.MonitorCrashed, match="lease was lost") as crashed:
        await run()
    assert isinstance(crashed.value.__cause__, LeaseLostError)
    assert handled == ["before"]
    assert stolen not in fake.acknowledged_message_ids()
    state = await redis_store.load(account)
    assert stolen not in state.seen_ids
    assert state.pending == ()
    assert await redis_store.client.get(key) == "token-B"
