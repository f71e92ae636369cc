"""``weixin-trio demo``: the echo bot against an embedded fake server, over real HTTP.

No network and no WeChat account: the fake server listens on loopback, the bot logs
in through the real QR flow (the fake confirms the scan by itself), simulated users
write to the bot, the bot answers through the real client stack, and the conversation
and the monitor's statistics are printed. Exits 0 by itself.
"""

from __future__ import annotations

import random
import tempfile
from typing import TYPE_CHECKING

import trio

from .._client.open import open_client
from .._monitor.accounts import open_accounts
from ..login import QrCode, login
from ..store import FileStore
from ..testing import FakeILinkServer
from .text import qr_text, status_text

if TYPE_CHECKING:
    from .._client.message import Message

__all__ = ["run_demo"]

PHRASES = ("你好", "what's the weather?", "**bold** question", "tell me a joke", "再见")


async def echo(msg: Message) -> None:
    """The demo's handler: a slightly slow echo, as a real bot would be."""
    await trio.sleep(0.05)
    await msg.reply(f"echo: {msg.text}")


def _show_qr(qr: QrCode) -> None:
    print(qr_text(qr))
    print("  (the demo's simulated user scans it and confirms by itself)")


async def run_demo(users: int = 3, messages: int = 3) -> int:
    """Run the demo; returns the exit code.

    Cancellation:
        Stops the monitor and the embedded server.
    """
    fake = FakeILinkServer(hold=2.0)
    fake.qr.auto_confirm = True  # the simulated user scans and confirms at once
    fake.cdn_full_urls = True
    rng = random.Random(7)
    names = [f"user{i}@im.wechat" for i in range(users)]
    expected = users * messages
    with tempfile.TemporaryDirectory(prefix="weixin-trio-demo-") as state_dir:
        async with FileStore(state_dir) as store, trio.open_nursery() as nursery:
            base_url = await nursery.start(fake.serve)
            print(f"fake iLink server on {base_url}")
            async with open_client(base_url=base_url, pacing=None) as qr_client:
                result = await login(
                    qr_client,
                    on_qrcode=_show_qr,
                    on_status=lambda status: print(f"login status: {status_text(status)}"),
                    deadline=60,
                )
            account = result.account
            assert account is not None
            await store.save_account(account.account_id, account.to_json())
            print(f"logged in as {account.account_id}; account saved in {state_dir}")
            options = {"pacing": None, "cdn_base_url": fake.cdn_base_url}
            async with open_accounts(
                echo, [account], store=store, client_options=options
            ) as runner:
                for round_no in range(messages):
                    for name in names:
                        text = f"{rng.choice(PHRASES)} #{round_no + 1}"
                        fake.inject_text(name, text, account=account.token)
                        print(f"  {name:>18} -> bot : {text}")
                    await trio.sleep(0.1)
                monitor = runner.monitor(account.account_id)
                assert monitor is not None
                with trio.fail_after(30):
                    await fake.wait_for_sent(expected, account=account.token)
                    await monitor.wait_idle()
                stats = monitor.statistics()
            nursery.cancel_scope.cancel()
    sent = fake.sent(account=account.token)
    print()
    print("conversation as WeChat shows it:")
    for send in sent:
        print(f"  bot -> {send.to_user_id:>18} : {send.text}")
    print()
    print(
        f"statistics: polls={stats.polls} accepted={stats.accepted} handled={stats.handled} "
        f"failed={stats.failed} duplicates={stats.duplicates} pending={stats.pending}"
    )
    ok = stats.handled == expected and len(sent) == expected
    print("demo finished:", "OK" if ok else "MISMATCH")
    return 0 if ok else 1
