"""The handler of the multi-process fan-out test (``weixin-trio worker fanout_bot:handle``).

Each handled message is appended to ``$WEIXIN_TRIO_TEST_LOG`` (with fsync) *before* the
reply, as ``<account> <message id> <worker pid>``, so the log is a superset of what was
answered. The handler sleeps 0-30 ms so a SIGKILL often lands while one is in flight.
"""

from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    import weixin_trio as wx

_LOG = os.open(os.environ["WEIXIN_TRIO_TEST_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


async def handle(msg: wx.Message) -> None:
    """Log the message, then echo it."""
    await trio.sleep(random.uniform(0, 0.03))
    os.write(_LOG, f"{msg.client.account_id} {msg.message_id} {os.getpid()}\n".encode())
    os.fsync(_LOG)
    await msg.reply(f"echo {msg.text}")
