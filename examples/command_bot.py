"""A command bot: slash commands, per-user state, a two-step flow, and pairing.

- ``/count`` tells how many chat messages (not commands) you sent; the count is kept
  in ``msg.state``, so it survives restarts;
- ``/signup`` asks your name, then a date (a `Flow`; ``/cancel`` leaves it);
- ``/echo``, ``/help``, ``/status`` and ``/toggle-debug`` are the router's built-ins;
- strangers get a one-time pairing code; the owner approves it with
  ``weixin-trio pair approve CODE`` (the user who scanned the QR code is always allowed).

Against the fake server (no WeChat needed)::

    weixin-trio fake-server --port 8765 &      # prints {"base_url": ..., "token": ...}
    WEIXIN_TOKEN=<token> WEIXIN_BASE_URL=http://127.0.0.1:8765 python examples/command_bot.py
    curl -d '{"user": "alice@im.wechat", "text": "/help"}' http://127.0.0.1:8765/_fake/inject
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from platformdirs import user_state_path

import weixin_trio as wx
from weixin_trio import filters
from weixin_trio.access import AccessControl

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

#: The journal and the lists live in the platform's state directory.
STATE_DIR = (
    Path(os.environ.get("WEIXIN_STATE_DIR") or user_state_path("weixin-trio")) / "command-bot"
)

signup = wx.Flow("signup")


@signup.step("name")
async def got_name(msg: wx.Message, data: dict[str, Any]) -> str | None:
    data["name"] = msg.text.strip()
    await msg.reply(f"Hello {data['name']}! Which day? (YYYY-MM-DD)")
    return "date"


@signup.step("date")
async def got_date(msg: wx.Message, data: dict[str, Any]) -> str | None:
    await msg.reply(f"Booked {data['name']} for {msg.text.strip()}.")
    return None  # done


def build_router(access: AccessControl | None = None) -> wx.Router:
    """The bot: access control first, then a running flow, then the commands."""
    router = wx.Router(builtins=True)
    router.use(access if access is not None else AccessControl("pairing"))

    async def in_flow(msg: wx.Message, call_next: Callable[[wx.Message], Awaitable[None]]) -> None:
        # Commands always work (/cancel, /help); other text goes to the user's flow.
        if filters.is_command()(msg) or not await signup.handle(msg):
            await call_next(msg)

    router.use(in_flow)

    @router.command("count")
    async def count(msg: wx.Message, cmd: wx.Command) -> None:
        """How many chat messages (not commands) you sent me."""
        state = await msg.state.get()
        await msg.reply(f"You sent {state.get('messages', 0)} messages.")

    @router.command("signup")
    async def start_signup(msg: wx.Message, cmd: wx.Command) -> None:
        """Book a day (asks your name, then the date)."""
        await signup.start(msg)
        await msg.reply("What is your name?")

    @router.command("cancel")
    async def cancel(msg: wx.Message, cmd: wx.Command) -> None:
        """Leave the signup."""
        left = await signup.cancel(msg)
        await msg.reply("Cancelled." if left else "Nothing to cancel.")

    @router.fallback
    async def chat(msg: wx.Message) -> None:
        state = await msg.state.get()
        await msg.state.update(messages=state.get("messages", 0) + 1)
        await msg.reply("Noted. Try /help.")

    return router


async def main() -> None:
    """Run until SIGINT/SIGTERM."""
    async with (
        wx.FileStore(STATE_DIR) as store,
        wx.open_client(
            token=os.environ["WEIXIN_TOKEN"],
            base_url=os.environ.get("WEIXIN_BASE_URL", wx.DEFAULT_BASE_URL),
            account_id=os.environ.get("WEIXIN_ACCOUNT", "command-bot"),
        ) as client,
        wx.open_monitor(client, build_router(), store=store) as monitor,
    ):
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                monitor.stop()
                break


if __name__ == "__main__":
    trio.run(main)
