"""The bot process of the benchmarks.

Usage: ``python _bot.py SCENARIO BASE_URL TOKEN COUNT`` prints one JSON line with the
elapsed time (first poll to last reply), peak RSS and per-user reply order.
Scenarios: ``echo`` (trivial handler), ``slow`` (sleeps 200 ms), ``random`` (sleeps
0-50 ms), ``idle`` (waits for SIGINT/SIGTERM and reports stop latency).
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import sys
import time

import trio

import weixin_trio as wx


async def main(scenario: str, base_url: str, token: str, count: int) -> None:
    done = trio.Event()
    handled = 0
    rng = random.Random(3)
    first_poll = 0.0

    async def handler(msg: wx.Message) -> None:
        nonlocal handled
        if scenario == "slow":
            await trio.sleep(0.2)
        elif scenario == "random":
            await trio.sleep(rng.uniform(0, 0.05))
        await msg.reply(msg.text)
        handled += 1
        if handled >= count:
            done.set()

    concurrency = 256 if scenario in ("slow", "random") else 16
    stop_started = 0.0
    senders = int(os.environ.get("BENCH_SENDERS", "4"))
    async with wx.open_client(
        token=token,
        base_url=base_url,
        account_id="bench",
        senders=senders,
        pacing=None,
        send_window=None,
    ) as client:
        first_poll = time.perf_counter()
        async with wx.open_monitor(client, handler, max_concurrency=concurrency) as monitor:
            if scenario == "idle":
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    print(json.dumps({"ready": True}), flush=True)
                    async for _ in signals:
                        stop_started = time.perf_counter()
                        monitor.stop()
                        break
                    await trio.sleep_forever()
            await done.wait()
            elapsed = time.perf_counter() - first_poll
    if scenario == "idle":
        print(json.dumps({"stop_seconds": time.perf_counter() - stop_started}), flush=True)
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "elapsed": elapsed,
        "handled": handled,
        "maxrss_kib": usage.ru_maxrss,
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
