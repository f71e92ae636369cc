"""``/toggle-debug``: the switch per account, kept in the store's key-value API; the trace."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import weixin_trio as wx
from weixin_trio._client.message import ReplyContext
from weixin_trio._router.debug import DEBUG_KEY, DEBUG_NAMESPACE, DebugModes

if TYPE_CHECKING:
    import trio

    from weixin_trio.testing import FakeILinkServer

USER = "alice@im.wechat"
TRACE = re.compile(r"⏱ inbound→handler \d+ ms · handler \+\d+ ms · sends (none yet|[\d ms,]+)$")


class KeyValues:
    """A store's key-value API (`KeyValueStore`), in memory, counting reads."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str, str], Any] = {}
        self.reads = 0

    async def kv_get(self, account: str, namespace: str, key: str) -> Any:
        self.reads += 1
        return self.values.get((account, namespace, key))

    async def kv_put(self, account: str, namespace: str, key: str, value: Any) -> None:
        self.values[account, namespace, key] = value

    async def kv_delete(self, account: str, namespace: str, key: str) -> bool:
        raise NotImplementedError

    async def kv_items(self, account: str, namespace: str) -> dict[str, Any]:
        raise NotImplementedError


async def test_switches_are_per_account_persisted_and_read_once() -> None:
    store = KeyValues()
    modes = DebugModes()
    assert await modes.toggle("a", store) is True
    assert await modes.enabled("a", store) is True
    assert await modes.enabled("b", store) is False
    assert store.values == {("a", DEBUG_NAMESPACE, DEBUG_KEY): True}
    reads = store.reads
    assert await modes.enabled("b", store) is False
    assert store.reads == reads  # cached
    assert await DebugModes().enabled("a", store) is True  # a new process reads it back
    assert await modes.toggle("a", store) is False
    assert store.values[("a", DEBUG_NAMESPACE, DEBUG_KEY)] is False


async def test_a_failing_store_reads_as_off_and_is_asked_again() -> None:
    store = KeyValues()
    store.values["a", DEBUG_NAMESPACE, DEBUG_KEY] = True
    modes = DebugModes()
    broken = KeyValues()

    async def fail(account: str, namespace: str, key: str) -> Any:
        raise wx.StoreUnavailableError("down")

    broken.kv_get = fail  # type: ignore[method-assign]
    assert await modes.enabled("a", broken) is False
    assert await modes.enabled("a", store) is True  # not cached while the store failed


async def test_a_store_without_key_values_keeps_the_switch_in_memory() -> None:
    modes = DebugModes()
    assert await modes.toggle("a", object()) is True
    assert await modes.enabled("a", None) is True


async def test_replies_carry_the_trace_while_debug_is_on(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    router = wx.Router(builtins=True)

    @router.command("two")
    async def two(msg: wx.Message, cmd: wx.Command) -> None:
        await msg.reply("one")
        await msg.reply("two")

    async def send(text: str) -> None:
        fake_ilink.inject_text(USER, text)
        (update,) = (await ilink_client.get_updates()).msgs or []
        ctx = ReplyContext(ilink_client, deterministic=False)
        await router(wx.Message.from_wire(update, message_id=1, ctx=ctx))

    await send("/two")
    await send("/toggle-debug")
    await send("/two")
    await send("/toggle-debug")
    await send("/two")
    texts = fake_ilink.sent_texts(USER)
    assert texts[:3] == ["one", "two", "Debug mode on: replies carry a timing trace."]
    first, second = texts[3].split("\n\n"), texts[4].split("\n\n")
    assert first[0] == "one"
    assert TRACE.match(first[1]), first[1]
    assert first[1].endswith("sends none yet")
    assert second[0] == "two"
    assert TRACE.match(second[1]), second[1]
    assert re.search(r"sends \d+ ms$", second[1])  # the first reply's send
    assert texts[5].startswith("Debug mode off.\n\n⏱ ")  # traced: it was on until then
    assert texts[6:] == ["one", "two"]
