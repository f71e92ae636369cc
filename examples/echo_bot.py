"""The smallest useful bot: answer every message with its text.

Against a real account::

    WEIXIN_TOKEN=... WEIXIN_BASE_URL=https://ilinkai.weixin.qq.com python examples/echo_bot.py

Against the fake server (no WeChat needed)::

    weixin-trio fake-server --port 8765 &      # prints {"base_url": ..., "token": ...}
    WEIXIN_TOKEN=<token> WEIXIN_BASE_URL=http://127.0.0.1:8765 python examples/echo_bot.py
    curl -d '{"user": "alice@im.wechat", "text": "hi"}' http://127.0.0.1:8765/_fake/inject

Ctrl+C stops it cleanly: the parked long poll is aborted at once, running replies get
up to ten seconds, the journal is flushed and ``notifystop`` sent. The journal lives in
the platform's state directory (``$WEIXIN_STATE_DIR/echo-bot`` when that is set).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import trio
from platformdirs import user_state_path

import weixin_trio as wx

#: The journal lives in the platform's state directory, not in the working copy.
STATE_DIR = Path(os.environ.get("WEIXIN_STATE_DIR") or user_state_path("weixin-trio")) / "echo-bot"


async def handle(msg: wx.Message) -> None:
    """Reply with the message's text."""
    await msg.reply(f"echo: {msg.text}" if msg.text else "echo: (no text)")


async def main() -> None:
    """Run until SIGINT/SIGTERM."""
    async with (
        wx.FileStore(STATE_DIR) as store,  # one writer per state dir; closed at the end
        wx.open_client(
            token=os.environ["WEIXIN_TOKEN"],
            base_url=os.environ.get("WEIXIN_BASE_URL", wx.DEFAULT_BASE_URL),
            account_id=os.environ.get("WEIXIN_ACCOUNT", "echo-bot"),
        ) as client,
    ):
        async with wx.open_monitor(client, handle, store=store) as monitor:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    monitor.stop()
                    break


if __name__ == "__main__":
    trio.run(main)
