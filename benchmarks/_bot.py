"""The bot process of the benchmarks.

Usage: ``python _bot.py SCENARIO BASE_URL TOKEN COUNT`` prints one JSON line with the
elapsed time (first poll to last reply), peak RSS and per-user reply order.
Scenarios: ``echo`` (trivial handler), ``slow`` (sleeps 200 ms), ``random`` (sleeps
0-50 ms), ``idle`` (waits for SIGINT/SIGTERM and reports stop latency).

Environment: ``BENCH_STORE_DIR`` journals into a `FileStore` there (default: the
monitor's `MemoryStore`); ``BENCH_PROFILE=PATH`` runs the bot under cProfile and dumps
the stats to PATH (under pyinstrument, sampling every 0.5 ms, when PATH ends in
``.pyisession``); ``BENCH_SENDERS`` sets ``senders`` (default 4). Besides the totals,
``cpu_run_s`` is the CPU from the first poll to the last reply (start-up excluded) and
``rss_start_kib`` the RSS when the client was opened. Only public names of
``weixin_trio`` are used, so moving private modules cannot break the benchmarks.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import signal
import sys
import time
from pathlib import Path

import trio

import weixin_trio as wx


async def main(scenario: str, base_url: str, token: str, count: int) -> None:
    done = trio.Event()
    handled = 0
    rng = random.Random(3)
    first_poll = 0.0
    cpu_start = 0.0
    rss_start_kib = 0

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
    store_dir = os.environ.get("BENCH_STORE_DIR")
    store: wx.FileStore | None = None
    async with contextlib.AsyncExitStack() as stack:
        if store_dir:
            store = await stack.enter_async_context(wx.FileStore(store_dir))
        client = await stack.enter_async_context(
            wx.open_client(
                token=token,
                base_url=base_url,
                account_id="bench",
                senders=senders,
                pacing=None,
                send_window=None,
            )
        )
        rss_start_kib = _rss_kib()
        cpu_start = _cpu()
        first_poll = time.perf_counter()
        async with wx.open_monitor(
            client, handler, store=store, max_concurrency=concurrency
        ) as monitor:
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
            cpu_run = _cpu() - cpu_start
    if scenario == "idle":
        print(json.dumps({"stop_seconds": time.perf_counter() - stop_started}), flush=True)
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "elapsed": elapsed,
        "handled": handled,
        "maxrss_kib": usage.ru_maxrss,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "cpu_run_s": cpu_run,
        "rss_start_kib": rss_start_kib,
    }
    print(json.dumps(result), flush=True)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run_bot() -> None:
    trio.run(main, sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))


if __name__ == "__main__":
    profile_path = os.environ.get("BENCH_PROFILE")
    if profile_path and profile_path.endswith(".pyisession"):
        from pyinstrument import Profiler  # the dev extra

        sampler = Profiler(interval=0.0005, async_mode="disabled")
        sampler.start()
        run_bot()
        sampler.stop().save(profile_path)
    elif profile_path:
        import cProfile

        profiler = cProfile.Profile()
        profiler.runcall(run_bot)
        profiler.dump_stats(profile_path)
    else:
        run_bot()
