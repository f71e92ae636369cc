"""``account_lease``: a single-account command holds the account's Redis lease.

Real Redis and the real clock (short TTLs), every wait bounded by ``trio.fail_after``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import trio

from weixin_trio._cli.account_lease import account_lease
from weixin_trio._cli.common import CliError

if TYPE_CHECKING:
    from weixin_trio.redis import RedisStore

pytestmark = pytest.mark.slow


async def test_the_lease_is_held_fenced_renewed_and_released(redis_store: RedisStore) -> None:
    from weixin_trio.redis import Leases

    leases = Leases(redis_store.client, prefix=redis_store.prefix, node_id="other", ttl=5)
    with trio.fail_after(10):
        async with account_lease(redis_store, "acct", command="mcp", ttl=0.6):
            assert (await leases.owner("acct") or "").startswith("mcp-")
            assert redis_store.fence_token("acct")
            await trio.sleep(1.5)  # outlives the TTL: renewals keep it
            assert (await leases.owner("acct") or "").startswith("mcp-")
            with pytest.raises(CliError, match="is served by mcp-"):
                async with account_lease(redis_store, "acct", command="mcp"):
                    pass
        assert await leases.owner("acct") is None
        assert redis_store.fence_token("acct") == ""


async def test_a_lost_lease_stops_the_work(redis_store: RedisStore) -> None:
    from weixin_trio.redis import Leases

    leases = Leases(redis_store.client, prefix=redis_store.prefix, node_id="other", ttl=5)
    with trio.fail_after(10), pytest.raises(CliError, match="lost the Redis lease"):  # noqa: PT012
        async with account_lease(redis_store, "acct", command="mcp", ttl=0.6):
            await redis_store.client.set(leases.key("acct"), "other/0123")  # taken over
            await trio.sleep_forever()
    assert await leases.owner("acct") == "other"  # not released: not ours any more


async def test_an_error_of_the_block_arrives_as_itself(redis_store: RedisStore) -> None:
    with trio.fail_after(10), pytest.raises(CliError, match="from the block"):
        async with account_lease(redis_store, "acct", command="mcp", ttl=5):
            raise CliError("from the block")
