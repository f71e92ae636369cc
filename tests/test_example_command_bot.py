"""examples/command_bot.py runs against the fake: commands, state, a flow, pairing."""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING

import weixin_trio as wx
from weixin_trio.access import AccessBook, AccessControl

from .test_examples import EXAMPLES, load

if TYPE_CHECKING:
    from pathlib import Path

    import pytest
    import trio

    from weixin_trio.testing import FakeILinkServer

OWNER = "owner@im.wechat"
STRANGER = "stranger@im.wechat"


async def test_command_bot(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    command_bot = load("command_bot")
    store = wx.MemoryStore()
    router = command_bot.build_router(AccessControl("pairing", owner=OWNER))
    sent = 0

    async def say(user: str, text: str) -> str:
        nonlocal sent
        fake_ilink.inject_text(user, text)
        sent += 1
        await fake_ilink.wait_for_sent(sent)
        return fake_ilink.sent()[-1].text or ""

    async with wx.open_monitor(ilink_client, router, store=store):
        assert await say(OWNER, "hello") == "Noted. Try /help."
        assert await say(OWNER, "/count") == "You sent 1 messages."
        assert await say(OWNER, "/signup") == "What is your name?"
        assert await say(OWNER, "Ann") == "Hello Ann! Which day? (YYYY-MM-DD)"
        help_text = await say(OWNER, "/help")  # commands work in the middle of a flow
        assert help_text.startswith("Commands:\n/count")
        assert await say(OWNER, "2026-12-24") == "Booked Ann for 2026-12-24."
        pairing = await say(STRANGER, "hi")
        code = re.search(r"pairing code is (\w+)", pairing)
        assert code is not None, pairing
        book = AccessBook(store, ilink_client.account_id)
        assert await book.approve(code.group(1)) is not None
        help_text = await say(STRANGER, "/help")
    for command in ["/count", "/signup", "/cancel", "/echo", "/status", "/toggle-debug"]:
        assert f"\n{command} — " in help_text


def test_command_bot_keeps_its_state_out_of_the_working_copy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("WEIXIN_STATE_DIR", raising=False)
    sys.modules.pop("command_bot", None)
    state = load("command_bot").STATE_DIR
    assert state.is_absolute()
    assert EXAMPLES.parent not in state.parents
    monkeypatch.setenv("WEIXIN_STATE_DIR", str(tmp_path))
    sys.modules.pop("command_bot", None)
    assert load("command_bot").STATE_DIR.parent == tmp_path
    sys.modules.pop("command_bot", None)
