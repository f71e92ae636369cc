"""The key-value contract, run against every kind of store (memory, file, Redis).

No ``load`` first: the key-value API works without the journal (the CLI uses it
next to a running bot).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from weixin_trio._errors import UnencodableError
from weixin_trio.store import KeyValueStore

from .test_store_contract import reopened

if TYPE_CHECKING:
    from weixin_trio.store import Store

ACCOUNT = "bot1@im.bot"
OTHER = "bot2@im.bot"


def kv(store: Store) -> KeyValueStore:
    assert isinstance(store, KeyValueStore)
    return store


async def test_missing_keys_and_namespaces(store: Store) -> None:
    s = kv(store)
    assert await s.kv_get(ACCOUNT, "ns", "nope") is None
    assert await s.kv_items(ACCOUNT, "ns") == {}
    assert await s.kv_delete(ACCOUNT, "ns", "nope") is False


async def test_round_trip_of_json_values(store: Store) -> None:
    s = kv(store)
    value: dict[str, Any] = {
        "text": '你好 👋 "q" \\ \n\t\u2028 \ud800 end',  # a lone surrogate too
        "big": 2**63 - 5,
        "half": 1.5,
        "none": None,
        "yes": True,
        "list": [1, "two", [3]],
        "tuple": (1, 2),
    }
    await s.kv_put(ACCOUNT, "ns", "用户@im.wechat", value)
    got = await s.kv_get(ACCOUNT, "ns", "用户@im.wechat")
    assert got == {**value, "tuple": [1, 2]}
    scalars: list[Any] = ["s", 0, -1.25, True, [], {}]
    for scalar in scalars:
        await s.kv_put(ACCOUNT, "ns", "k", scalar)
        assert await s.kv_get(ACCOUNT, "ns", "k") == scalar
    assert await s.kv_items(ACCOUNT, "ns") == {"用户@im.wechat": got, "k": {}}


async def test_values_are_copies(store: Store) -> None:
    s = kv(store)
    value = {"items": [1]}
    await s.kv_put(ACCOUNT, "ns", "k", value)
    value["items"].append(2)  # changing the caller's object changes nothing stored
    got = await s.kv_get(ACCOUNT, "ns", "k")
    assert got == {"items": [1]}
    got["items"].append(3)
    assert await s.kv_get(ACCOUNT, "ns", "k") == {"items": [1]}


async def test_overwrite_and_delete(store: Store) -> None:
    s = kv(store)
    await s.kv_put(ACCOUNT, "ns", "a", 1)
    await s.kv_put(ACCOUNT, "ns", "b", 2)
    await s.kv_put(ACCOUNT, "ns", "a", 3)
    assert await s.kv_items(ACCOUNT, "ns") == {"a": 3, "b": 2}
    assert await s.kv_delete(ACCOUNT, "ns", "a") is True
    assert await s.kv_delete(ACCOUNT, "ns", "a") is False
    assert await s.kv_get(ACCOUNT, "ns", "a") is None
    assert await s.kv_items(ACCOUNT, "ns") == {"b": 2}


async def test_accounts_and_namespaces_are_isolated(store: Store) -> None:
    s = kv(store)
    await s.kv_put(ACCOUNT, "one", "k", "a1")
    await s.kv_put(ACCOUNT, "two", "k", "a2")
    await s.kv_put(OTHER, "one", "k", "o1")
    assert await s.kv_items(ACCOUNT, "one") == {"k": "a1"}
    assert await s.kv_items(ACCOUNT, "two") == {"k": "a2"}
    assert await s.kv_items(OTHER, "one") == {"k": "o1"}
    assert await s.kv_items(OTHER, "two") == {}
    await s.kv_delete(ACCOUNT, "one", "k")
    assert await s.kv_get(OTHER, "one", "k") == "o1"


async def test_unencodable_value_writes_nothing(store: Store) -> None:
    s = kv(store)
    await s.kv_put(ACCOUNT, "ns", "k", "old")
    for bad in (object(), {"x": {1, 2}}, [10**5000]):
        with pytest.raises(UnencodableError):
            await s.kv_put(ACCOUNT, "ns", "k", bad)
    with pytest.raises(UnencodableError):
        await s.kv_put(ACCOUNT, "ns", "new", object())
    assert await s.kv_items(ACCOUNT, "ns") == {"k": "old"}


@pytest.mark.parametrize("namespace", ["", ".hidden", "-x", "a/b", "a b", "ü", "x" * 65, "..", 7])
async def test_invalid_namespace_is_refused(store: Store, namespace: Any) -> None:
    s = kv(store)
    with pytest.raises(ValueError, match="namespace"):
        await s.kv_put(ACCOUNT, namespace, "k", 1)
    with pytest.raises(ValueError, match="namespace"):
        await s.kv_get(ACCOUNT, namespace, "k")
    with pytest.raises(ValueError, match="namespace"):
        await s.kv_items(ACCOUNT, namespace)


async def test_invalid_key_is_refused(store: Store) -> None:
    s = kv(store)
    with pytest.raises(ValueError, match="key"):
        await s.kv_put(ACCOUNT, "ns", "", 1)
    with pytest.raises(UnencodableError):
        await s.kv_put(ACCOUNT, "ns", "\ud800", 1)
    assert await s.kv_items(ACCOUNT, "ns") == {}


@pytest.mark.parametrize("account", ["", "x", "ünï/{code}"])
async def test_any_account_name(store: Store, account: str) -> None:
    s = kv(store)
    await s.kv_put(account, "ns", "k", account)
    assert await s.kv_get(account, "ns", "k") == account


async def test_restart_sees_the_same_documents(store: Store, store_redis_url: str | None) -> None:
    s = kv(store)
    await s.kv_put(ACCOUNT, "ns", "k", {"v": 1})
    await s.kv_put(ACCOUNT, "ns", "gone", 1)
    await s.kv_delete(ACCOUNT, "ns", "gone")
    async with reopened(store, store_redis_url) as again:
        assert await kv(again).kv_items(ACCOUNT, "ns") == {"k": {"v": 1}}
        await kv(again).kv_put(ACCOUNT, "ns", "k2", 2)
    async with reopened(store, store_redis_url) as third:
        assert await kv(third).kv_items(ACCOUNT, "ns") == {"k": {"v": 1}, "k2": 2}


async def test_journal_and_documents_side_by_side(store: Store) -> None:
    await store.load(ACCOUNT)
    await kv(store).kv_put(ACCOUNT, "ns", "k", 1)
    await store.accept(ACCOUNT, cursor="c", entries=[], context_tokens={"u": "t"})
    await store.flush(ACCOUNT)
    assert (await store.load(ACCOUNT)).cursor == "c"
    assert await kv(store).kv_get(ACCOUNT, "ns", "k") == 1
