"""``weixin-trio demo``: an echo bot against an embedded fake server, over real HTTP.

No network and no WeChat account: the fake server listens on loopback, simulated
users write to the bot, the bot answers through the real client stack, and the
conversation and the monitor's statistics are printed. Exits 0 by itself.
"""

from __future__ import annotations

import random
import tempfile
from typing import TYPE_CHECKING

import trio

from ._client import open_client
from ._monitor import open_monitor
from .store import FileStore
from .testing import FakeILinkServer

if TYPE_CHECKING:
    from ._messages import Message

__all__ = ["run_demo"]

PHRASES = ("你好", "what's the weather?", "**bold** question", "tell me a joke", "再见")


async def echo(msg: Message) -> None:
    """The demo's handler: a slightly slow echo, as a real bot would be."""
    await trio.sleep(0.05)
    await msg.reply(f"echo: {msg.text}")


async def run_demo(users: int = 3, messages: int = 3) -> int:
    """Run the demo; returns the exit code.

    Cancellation:
        Stops the monitor and the embedded server.
    """
    fake = FakeILinkServer(hold=2.0)
    rng = random.Random(7)
    names = [f"user{i}@im.wechat" for i in range(users)]
    expected = users * messages
    with tempfile.TemporaryDirectory(prefix="weixin-trio-demo-") as state_dir:
        async with trio.open_nursery() as nursery:
            base_url = await nursery.start(fake.serve)
            print(f"fake iLink server on {base_url}")
            async with (
                open_client(
                    token=fake.token,
                    base_url=base_url,
                    account_id=fake.default.bot_id,
                    pacing=None,
                ) as client,
                open_monitor(client, echo, store=FileStore(state_dir)) as monitor,
            ):
                for round_no in range(messages):
                    for name in names:
                        text = f"{rng.choice(PHRASES)} #{round_no + 1}"
                        fake.inject_text(name, text)
                        print(f"  {name:>18} -> bot : {text}")
                    await trio.sleep(0.1)
                with trio.fail_after(30):
                    await fake.wait_for_sent(expected)
                    await monitor.wait_idle()
                stats = monitor.statistics()
            nursery.cancel_scope.cancel()
    print()
    print("conversation as WeChat shows it:")
    for send in fake.sent():
        print(f"  bot -> {send.to_user_id:>18} : {send.text}")
    print()
    print(
        f"statistics: polls={stats.polls} accepted={stats.accepted} handled={stats.handled} "
        f"failed={stats.failed} duplicates={stats.duplicates} pending={stats.pending}"
    )
    ok = stats.handled == expected and len(fake.sent()) == expected
    print("demo finished:", "OK" if ok else "MISMATCH")
    return 0 if ok else 1
