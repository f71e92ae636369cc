"""``weixin-trio status`` and ``send`` next to a running bot, then SIGKILL and restart.

Issue 13, item 1: ``status`` and ``send`` used to ``load`` the live state dir, which
compacts and deletes the running bot's journal generation; after a crash the bot then
found its accepted messages gone. Now they read the store read-only. The bot runs in a
subprocess against a served fake server; the CLI commands run in between bursts of
messages; the bot is SIGKILLed while handlers are in flight and restarted. Every
accepted message is handled, and no reply (nor CLI send) is shown twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import trio

import weixin_trio as wx
from weixin_trio.testing import FakeILinkServer

from .._helpers import until
from .test_sigkill import BOT

SRC = str(Path(__file__).resolve().parents[2] / "src")
ACCOUNT = "crash-bot"  # the bot's store namespace (crash_bot.py)
USERS = [f"user{i}@im.wechat" for i in range(5)]


async def start_bot(base_url: str, token: str, state: Path, log: Path, seed: int) -> trio.Process:
    """The crash bot with slow handlers (up to 0.5 s), so a kill finds work pending."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, str(BOT), base_url, token, str(state), str(log), str(seed), "0.5"],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": SRC},
    )
    assert proc.stdout is not None
    with trio.fail_after(20):
        seen = b""
        while b"ready" not in seen:
            chunk = await proc.stdout.receive_some(100)
            assert chunk, "bot exited before it was ready"
            seen += chunk
    return proc


async def cli(*args: str) -> str:
    with trio.fail_after(60):
        result = await trio.run_process(
            [sys.executable, "-m", "weixin_trio", *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env={**os.environ, "PYTHONPATH": SRC},
        )
    out = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, out
    return out


def handled_ids(log: Path) -> list[int]:
    return [int(x) for x in log.read_text().split()] if log.exists() else []


async def test_status_and_send_next_to_a_bot_then_sigkill(tmp_path: Path) -> None:
    fake = FakeILinkServer(seed=3, hold=1.0)
    state, log = tmp_path / "state", tmp_path / "handled.log"
    injected: list[int] = []
    cli_texts: list[str] = []
    with trio.fail_after(150):
        async with trio.open_nursery() as nursery:
            base_url = await nursery.start(fake.serve)
            async with wx.FileStore(state) as store:  # what `weixin-trio login` saves
                account = {"token": fake.token, "base_url": base_url, "created_at": 1.0}
                await store.save_account(ACCOUNT, account)
            proc = await start_bot(base_url, fake.token, state, log, 1)
            for round_no in range(3):
                for i in range(15):
                    injected.append(fake.inject_text(USERS[i % len(USERS)], "ping"))
                # accepted (journaled): handlers now running
                await until(lambda: fake.acknowledged_message_ids() >= set(injected[-15:]))
                out = await cli("status", "--state-dir", str(state))
                assert ACCOUNT in out
                text = f"cli send {round_no}"
                out = await cli("send", USERS[0], text, "--state-dir", str(state))
                assert "sent" in out
                cli_texts.append(text)
            # A last burst, accepted, and the bot dies with most of it unhandled.
            for i in range(30):
                injected.append(fake.inject_text(USERS[i % len(USERS)], "ping"))
            await until(lambda: fake.acknowledged_message_ids() >= set(injected[-30:]))
            await cli("status", "--state-dir", str(state))
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            killed_with = len(set(injected) - set(handled_ids(log)))

            proc = await start_bot(base_url, fake.token, state, log, 2)  # restart
            await until(lambda: set(handled_ids(log)) >= fake.acknowledged_message_ids())
            await cli("status", "--state-dir", str(state))
            await cli("send", USERS[1], "after restart", "--state-dir", str(state))
            cli_texts.append("after restart")
            await until(lambda: len(fake.sent()) >= len(set(injected)) + len(cli_texts))
            await trio.sleep(1.5)  # a re-send, had there been one, would show by now
            proc.send_signal(signal.SIGTERM)
            with trio.fail_after(20):
                await proc.wait()
            nursery.cancel_scope.cancel()

    accepted = fake.acknowledged_message_ids()
    handled = set(handled_ids(log))
    assert killed_with > 0, "the kill found nothing pending: the test proved nothing"
    assert set(injected) == accepted, sorted(set(injected) - accepted)
    assert accepted <= handled, f"accepted but never handled: {sorted(accepted - handled)}"
    shown = Counter(s.text for s in fake.sent())
    duplicates = {text: n for text, n in shown.items() if n > 1}
    assert not duplicates, f"shown twice: {duplicates}"
    for mid in injected:
        assert shown[f"echo {mid}"] == 1, mid
    for text in cli_texts:
        assert shown[text] == 1, text
    async with wx.FileStore(state) as store:
        final = await store.load(ACCOUNT)
    assert final.pending == ()
