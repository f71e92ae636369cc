"""RedisStore's key-value documents: one hash per account and namespace, hash-tagged."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from weixin_trio.redis._scripts import account_keys
from weixin_trio.store import StoreError

if TYPE_CHECKING:
    from weixin_trio.redis import RedisStore

ACCOUNT = "bot1@im.bot"


async def test_one_hash_per_namespace_in_the_accounts_slot(redis_store: RedisStore) -> None:
    await redis_store.kv_put(ACCOUNT, "access.allow", "u@im.wechat", {"at": 1.5, "s": "你"})
    name = redis_store.kv_key(ACCOUNT, "access.allow")
    tag = account_keys(redis_store.prefix, ACCOUNT)[0].split("}")[0] + "}"
    assert name == f"{tag}:kv:access.allow"
    assert name.startswith(f"{redis_store.prefix}:{{")
    stored = await redis_store.client.hgetall(name)
    assert stored == {"u@im.wechat": '{"at":1.5,"s":"\\u4f60"}'}  # the stores' ASCII JSON
    # a lease fence does not apply: the command line writes next to a leased bot
    redis_store.fence(ACCOUNT, "someone-elses-token")
    await redis_store.kv_put(ACCOUNT, "access.allow", "v@im.wechat", 1)
    assert sorted(await redis_store.kv_items(ACCOUNT, "access.allow")) == [
        "u@im.wechat",
        "v@im.wechat",
    ]


async def test_corrupt_value_is_named(redis_store: RedisStore) -> None:
    name = redis_store.kv_key(ACCOUNT, "ns")
    await redis_store.client.hset(name, {"k": "{not json"})
    with pytest.raises(StoreError, match=f"corrupt value of 'k' in Redis hash {name}"):
        await redis_store.kv_get(ACCOUNT, "ns", "k")
    with pytest.raises(StoreError, match="corrupt"):
        await redis_store.kv_items(ACCOUNT, "ns")
