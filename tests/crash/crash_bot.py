"""A bot process for crash tests: echoes every message, logging what it handled.

Usage: ``python crash_bot.py BASE_URL TOKEN STATE_DIR HANDLED_LOG [SEED [MAX_DELAY]]``

Each handled message id is appended to HANDLED_LOG (with fsync) *before* the reply,
so the log is a superset of what was answered. Handlers sleep a random 0 to MAX_DELAY
seconds (default 0.03) so that a SIGKILL often lands while handlers are in flight.
"""

from __future__ import annotations

import os
import random
import sys

import trio

import weixin_trio as wx


async def main(
    base_url: str, token: str, state_dir: str, log_path: str, seed: int, max_delay: float
) -> None:
    rng = random.Random(seed)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    async def handler(msg: wx.Message) -> None:
        await trio.sleep(rng.uniform(0, max_delay))
        os.write(log_fd, f"{msg.message_id}\n".encode())
        os.fsync(log_fd)
        await msg.reply(f"echo {msg.message_id}")

    async with (
        wx.FileStore(state_dir) as store,
        wx.open_client(
            token=token, base_url=base_url, account_id="crash-bot", pacing=None, send_window=None
        ) as client,
    ):
        async with wx.open_monitor(client, handler, store=store, max_concurrency=8):
            print("ready", flush=True)
            await trio.sleep_forever()


if __name__ == "__main__":
    base_url, token, state_dir, log_path = sys.argv[1:5]
    seed = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    max_delay = float(sys.argv[6]) if len(sys.argv) > 6 else 0.03
    trio.run(main, base_url, token, state_dir, log_path, seed, max_delay)
