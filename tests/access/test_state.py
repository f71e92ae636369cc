"""``ConversationState`` and ``Flow`` on their own (stand-in messages, every store)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

import weixin_trio as wx
from weixin_trio._errors import UnencodableError
from weixin_trio._state.conversation import STATE_NAMESPACE, ConversationState
from weixin_trio._state.flow import FLOW_KEY

from ._stub import StubMessage

if TYPE_CHECKING:
    from weixin_trio.store import Store

ACCOUNT = "bot@im.bot"


def msg(store: Any, text: str = "", user: str = "u@im.wechat") -> wx.Message:
    stub: Any = StubMessage(user, store=store, text=text)
    return stub  # type: ignore[no-any-return]


async def test_state_get_set_update_clear(store: Store) -> None:
    state = ConversationState(store, ACCOUNT, "u")  # type: ignore[arg-type]
    other = ConversationState(store, ACCOUNT, "v")  # type: ignore[arg-type]
    assert await state.get() == {}
    await state.set({"a": 1})
    assert await state.update(b=[2], c="你") == {"a": 1, "b": [2], "c": "你"}
    assert await state.get() == {"a": 1, "b": [2], "c": "你"}
    assert await other.get() == {}
    with pytest.raises(UnencodableError):
        await state.update(bad=object())
    assert await state.get() == {"a": 1, "b": [2], "c": "你"}
    await state.set({})
    assert await state.get() == {}
    await state.update(x=1)
    await state.clear()
    assert await store.kv_items(ACCOUNT, STATE_NAMESPACE) == {}  # type: ignore[attr-defined]


@pytest.fixture
def two_steps() -> wx.Flow:
    flow = wx.Flow("signup")

    @flow.step("name")
    async def name(m: wx.Message, data: dict[str, Any]) -> str | None:
        if not m.text:
            return "name"
        data["name"] = m.text
        return "date"

    @flow.step("date")
    async def date(m: wx.Message, data: dict[str, Any]) -> str | None:
        if m.text == "boom":
            raise RuntimeError("boom")
        if m.text == "nowhere":
            return "nowhere"
        data["date"] = m.text
        return None

    return flow


async def test_flow_runs_its_steps_in_order(two_steps: wx.Flow) -> None:
    store = wx.MemoryStore()
    assert two_steps.steps == ("name", "date")
    assert await two_steps.handle(msg(store, "x")) is False  # not in the flow
    assert await two_steps.start(msg(store), source="test") == "name"
    assert await two_steps.current(msg(store)) == "name"
    assert await two_steps.handle(msg(store, "")) is True  # stays
    assert await two_steps.current(msg(store)) == "name"
    assert await two_steps.handle(msg(store, "Ann")) is True
    assert await two_steps.current(msg(store)) == "date"
    assert await two_steps.data(msg(store)) == {"source": "test", "name": "Ann"}
    assert await two_steps.current(msg(store, user="someone@else")) is None
    assert await two_steps.handle(msg(store, "2027-01-01")) is True
    assert await two_steps.current(msg(store)) is None
    assert await two_steps.data(msg(store)) == {}
    assert await msg(store).state.get() == {}


async def test_a_failing_step_changes_nothing(two_steps: wx.Flow) -> None:
    store = wx.MemoryStore()
    await two_steps.start(msg(store))
    await two_steps.handle(msg(store, "Ann"))
    before = await msg(store).state.get()
    with pytest.raises(RuntimeError, match="boom"):
        await two_steps.handle(msg(store, "boom"))
    with pytest.raises(ValueError, match="no step 'nowhere'"):
        await two_steps.handle(msg(store, "nowhere"))
    assert await msg(store).state.get() == before


async def test_flow_keeps_other_state_and_other_flows_apart(two_steps: wx.Flow) -> None:
    store = wx.MemoryStore()
    await msg(store).state.update(lang="zh")
    other = wx.Flow("other")

    @other.step("only")
    async def only(m: wx.Message, data: dict[str, Any]) -> str | None:
        return None

    await two_steps.start(msg(store))
    assert await other.current(msg(store)) is None
    assert await other.handle(msg(store, "x")) is False
    assert await other.cancel(msg(store)) is False
    assert (await msg(store).state.get())[FLOW_KEY]["name"] == "signup"
    assert await two_steps.cancel(msg(store)) is True
    assert await msg(store).state.get() == {"lang": "zh"}
    await two_steps.start(msg(store))
    await other.start(msg(store))  # replaces the first flow
    assert await two_steps.current(msg(store)) is None


def test_flow_definition_errors() -> None:
    with pytest.raises(ValueError, match="name"):
        wx.Flow("")
    flow = wx.Flow("f")

    @flow.step("a")
    async def a(m: wx.Message, data: dict[str, Any]) -> str | None:
        return None

    with pytest.raises(ValueError, match="already"):
        flow.step("a")


async def test_a_flow_without_steps_cannot_start() -> None:
    with pytest.raises(ValueError, match="no steps"):
        await wx.Flow("empty").start(msg(wx.MemoryStore()))
