"""SIGKILL a real bot process mid-run, restart it on the same state, lose nothing.

Runs on a real loopback socket with the real clock (never under ``autojump_clock``).
The number of kill/restart rounds comes from ``WEIXIN_TRIO_CRASH_ROUNDS`` (default 4;
raise it for a long soak run).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import trio

from weixin_trio.testing import FakeILinkServer

BOT = Path(__file__).with_name("crash_bot.py")
ROUNDS = int(os.environ.get("WEIXIN_TRIO_CRASH_ROUNDS", "4"))


async def start_bot(base_url: str, token: str, state: Path, log: Path, seed: int) -> trio.Process:
    proc = await trio.lowlevel.open_process(
        [sys.executable, str(BOT), base_url, token, str(state), str(log), str(seed)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    with trio.fail_after(20):
        line = b""
        while b"ready" not in line:
            chunk = await proc.stdout.receive_some(100)
            assert chunk, "bot exited before it was ready"
            line += chunk
    return proc


async def test_sigkill_loses_nothing_and_shows_no_duplicates(tmp_path: Path) -> None:
    fake = FakeILinkServer(seed=1, hold=2.0)
    rng = random.Random(1234)
    state, log = tmp_path / "state", tmp_path / "handled.log"
    users = [f"user{i}@im.wechat" for i in range(8)]
    injected: list[int] = []
    with trio.fail_after(30 + 15 * ROUNDS):
        async with trio.open_nursery() as nursery:
            base_url = await nursery.start(fake.serve)
            for round_no in range(ROUNDS):
                proc = await start_bot(base_url, fake.token, state, log, round_no)
                for _ in range(rng.randint(10, 40)):
                    injected.append(fake.inject_text(rng.choice(users), "ping"))
                    if rng.random() < 0.3:
                        await trio.sleep(rng.uniform(0, 0.02))
                await trio.sleep(rng.uniform(0.0, 0.3))
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
            # A last, clean life: everything accepted must be finished now.
            proc = await start_bot(base_url, fake.token, state, log, 999)
            acked = fake.acknowledged_message_ids
            handled: set[int] = set()
            while True:
                handled = {int(x) for x in log.read_text().split()} if log.exists() else set()
                delivered = set(fake.delivered_message_ids())
                if (
                    not fake.default.queue
                    and acked() >= delivered - _in_transit(fake)
                    and acked() <= handled
                ):
                    break
                await trio.sleep(0.05)
            await trio.sleep(2.5)  # one more poll presents the final cursor
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
            nursery.cancel_scope.cancel()
    accepted = fake.acknowledged_message_ids()
    lost_in_transit = set(injected) - accepted
    assert accepted <= handled, f"accepted but never handled: {sorted(accepted - handled)}"
    # Messages the server handed to a process that died before journaling them are the
    # protocol's at-most-once window; the fake must tell us exactly which they were.
    assert lost_in_transit <= _in_transit(fake)
    shown = Counter(s.text for s in fake.sent())
    duplicates = {text: n for text, n in shown.items() if n > 1}
    assert not duplicates, f"replies shown twice: {duplicates}"
    for mid in accepted:
        assert shown[f"echo {mid}"] == 1, mid
    print(f"injected={len(injected)} accepted={len(accepted)} in_transit={len(lost_in_transit)}")
    assert len(accepted) >= len(injected) * 0.8


def _in_transit(fake: FakeILinkServer) -> set[int]:
    """Delivered messages whose batch cursor was never presented again."""
    return fake.in_transit_message_ids()
