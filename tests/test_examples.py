"""Every example runs against the fake server."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import trio

import weixin_trio as wx

if TYPE_CHECKING:
    from types import ModuleType

    import pytest

    from weixin_trio.testing import FakeILinkServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
USER = "alice@im.wechat"


def load(name: str) -> ModuleType:
    sys.path.insert(0, str(EXAMPLES))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(EXAMPLES))


async def test_echo_bot(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    echo_bot = load("echo_bot")
    async with wx.open_monitor(ilink_client, echo_bot.handle):
        fake_ilink.inject_text(USER, "hi")
        await fake_ilink.wait_for_sent(1)
    assert fake_ilink.sent_texts(USER) == ["echo: hi"]


async def test_llm_bot_streams_filtered_answer_with_typing_and_progress(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    llm_bot = load("llm_bot")
    ilink_client._messenger.markdown = False
    async with wx.open_monitor(ilink_client, llm_bot.handle) as monitor:
        fake_ilink.inject_text(USER, "weather?")
        await trio.sleep(0.1)
        await monitor.wait_idle()
    sends = fake_ilink.sent_to(USER)
    assert [s.items[0]["type"] for s in sends[:2]] == [11, 12]
    texts = [s.text for s in sends[2:]]
    assert "今天适合出门，气温 **22°C**。" in texts  # CJK italics removed, bold kept
    assert any("`snake_case_name`" in t for t in texts)
    assert not any("radar" in t for t in texts)  # the image is gone, parentheses and all
    assert texts[-1].strip().endswith("Have a nice day!")
    assert len({s.run_id for s in sends}) == 1
    statuses = [status for _, status in fake_ilink.typing_events()]
    assert statuses[0] == 1
    assert statuses[-1] == 2


async def test_notifier_sends_and_queues(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    notifier_mod = load("notifier")
    notifier = notifier_mod.Notifier()
    async with wx.open_monitor(ilink_client, notifier.handle) as monitor:
        fake_ilink.inject_text(USER, "/subscribe")
        fake_ilink.inject_text("bob@im.wechat", "hello")
        await fake_ilink.wait_for_sent(2)
        await monitor.wait_idle()
        await notifier.run(ilink_client, interval=60, rounds=2)
    assert fake_ilink.sent_texts(USER) == ["subscribed", "notification #1", "notification #2"]
    assert fake_ilink.sent_texts("bob@im.wechat") == ["send /subscribe to get notifications"]


async def test_notifier_sends_the_first_notification_at_once(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    notifier = load("notifier").Notifier()
    async with wx.open_monitor(ilink_client, notifier.handle) as monitor:
        fake_ilink.inject_text(USER, "/subscribe")
        await fake_ilink.wait_for_sent(1)
        await monitor.wait_idle()
        start = trio.current_time()
        await notifier.run(ilink_client, interval=3600, rounds=1)
        assert trio.current_time() == start  # not an hour of silence first
    assert fake_ilink.sent_texts(USER) == ["subscribed", "notification #1"]


def test_examples_keep_their_state_out_of_the_working_copy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("echo_bot", "notifier"):
        monkeypatch.delenv("WEIXIN_STATE_DIR", raising=False)
        sys.modules.pop(name, None)
        state = load(name).STATE_DIR
        assert state.is_absolute()
        assert EXAMPLES.parent not in state.parents
        monkeypatch.setenv("WEIXIN_STATE_DIR", str(tmp_path))
        sys.modules.pop(name, None)
        assert load(name).STATE_DIR.parent == tmp_path
        sys.modules.pop(name, None)
