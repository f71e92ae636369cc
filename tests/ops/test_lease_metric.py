"""The Redis-mode lease gauge: 1 while this node holds an account, 0 once it let go.

Real Redis and the real clock (leases renew on trio's clock against a real server);
the ``redis_server`` fixture fails, never skips, under ``CI=true``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio
from prometheus_client import CollectorRegistry

from weixin_trio._ops.collector import OpsCollector
from weixin_trio._ops.readiness import readiness
from weixin_trio._ops.sample import take_sample
from weixin_trio.redis import open_leased_accounts
from weixin_trio.testing import FakeILinkServer

if TYPE_CHECKING:
    from collections.abc import Callable

    import weixin_trio as wx
    from weixin_trio.redis import RedisStore

TTL = 1.5


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110 - no event to wait on
            await trio.sleep(0.01)


async def test_lease_gauge_per_account_and_node(redis_store: RedisStore) -> None:
    fake = FakeILinkServer(seed=9, hold=0.5)
    accounts = [fake.add_account() for _ in range(2)]
    for account in accounts:
        data = {"token": account.token, "base_url": fake.base_url, "created_at": 0.0}
        await redis_store.save_account(account.bot_id, data)
    first, second = sorted(a.bot_id for a in accounts)

    async def handler(msg: wx.Message) -> None:
        pass

    options: dict[str, Any] = {"transport": fake.transport(), "pacing": None}
    async with open_leased_accounts(
        handler, store=redis_store, node_id="n1", lease_ttl=TTL, client_options=options
    ) as leased:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(OpsCollector(leased))

        def held(account_id: str) -> float | None:
            labels = {"account": account_id, "node": "n1"}
            return registry.get_sample_value("weixin_trio_lease_held", labels)

        assert held(first) == 1
        assert held(second) == 1
        await wait_for(lambda: readiness(take_sample(leased), trio.current_time()).ready)
        assert registry.get_sample_value("weixin_trio_polls_total", {"account": first})
        await redis_store.remove_account(second)  # the next round lets it go
        await wait_for(lambda: held(second) == 0)
        assert held(first) == 1
        assert readiness(take_sample(leased), trio.current_time()).accounts == 1
