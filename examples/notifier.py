"""A proactive notifier: pushes a message to every user who talked to the bot.

Users subscribe by writing ``/subscribe``. The bot sends each subscriber a notification
at once, then every ``NOTIFY_INTERVAL`` seconds (default 3600; try ``NOTIFY_INTERVAL=20``
to watch it work). WeChat only delivers bot messages within 24 h of the user's
last message (and ~10 per message); ``queue_if_closed=True`` keeps a notification in the
durable pending outbox until the user writes again instead of losing it.

Run it against the fake server like ``echo_bot.py`` (same environment variables).
"""

from __future__ import annotations

import os
import signal
from functools import partial
from pathlib import Path

import trio
from platformdirs import user_state_path

import weixin_trio as wx

INTERVAL = float(os.environ.get("NOTIFY_INTERVAL", "3600"))
#: The journal lives in the platform's state directory, not in the working copy.
STATE_DIR = Path(os.environ.get("WEIXIN_STATE_DIR") or user_state_path("weixin-trio")) / "notifier"


class Notifier:
    """Keeps the subscribers and sends them notifications."""

    def __init__(self) -> None:
        self.subscribers: set[str] = set()

    async def handle(self, msg: wx.Message) -> None:
        """Handle ``/subscribe`` and ``/unsubscribe``."""
        command = msg.text.strip()
        if command == "/subscribe":
            self.subscribers.add(msg.from_user_id)
            await msg.reply("subscribed")
        elif command == "/unsubscribe":
            self.subscribers.discard(msg.from_user_id)
            await msg.reply("unsubscribed")
        else:
            await msg.reply("send /subscribe to get notifications")

    async def notify_all(self, client: wx.ILinkClient, text: str) -> dict[str, wx.SendResult]:
        """Send ``text`` to every subscriber (queued when a window is closed)."""
        results = {}
        for user in sorted(self.subscribers):
            try:
                results[user] = await client.send_text(user, text, queue_if_closed=True)
            except wx.WeixinError as exc:
                print(f"could not notify {user}: {exc}")
        return results

    async def run(
        self, client: wx.ILinkClient, *, interval: float, rounds: int | None = None
    ) -> None:
        """Notify at once, then every ``interval`` seconds (forever, or ``rounds`` times)."""
        n = 0
        while rounds is None or n < rounds:
            if n:
                await trio.sleep(interval)
            n += 1
            await self.notify_all(client, f"notification #{n}")


async def main() -> None:
    """Run until SIGINT/SIGTERM."""
    notifier = Notifier()
    async with (
        wx.FileStore(STATE_DIR) as store,  # one writer per state dir; closed at the end
        wx.open_client(
            token=os.environ["WEIXIN_TOKEN"],
            base_url=os.environ.get("WEIXIN_BASE_URL", wx.DEFAULT_BASE_URL),
            account_id=os.environ.get("WEIXIN_ACCOUNT", "notifier"),
        ) as client,
    ):
        async with wx.open_monitor(client, notifier.handle, store=store) as monitor:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(partial(notifier.run, client, interval=INTERVAL))
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        nursery.cancel_scope.cancel()
                        monitor.stop()
                        break


if __name__ == "__main__":
    trio.run(main)
