"""Scrape cost of ``run --metrics-port`` with many accounts (issue 19).

Run: ``.venv/bin/python benchmarks/bench_metrics.py [--accounts 1000] [--scrapes 20]``.

One process: the in-process `FakeILinkServer` with N accounts, ``open_accounts`` over
its transport (``pacing=None``), one message answered per account (so every histogram
has a sample), then ``--scrapes`` scrapes of the operations collector
as ``/metrics`` does them: the sample taken in the event loop, then rendered (in a
worker thread in the server; here inline) through a registry of its own. Printed: the
median time of each part and the worst total per scrape, the exposition's size, and
the time of one ``/readyz`` readiness pass. Also the per-send counting alone
(``SendMetrics.observe``), in nanoseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time
import timeit
from dataclasses import dataclass

import trio

import weixin_trio as wx
from weixin_trio._monitor.accounts import open_accounts
from weixin_trio._ops.collector import LeaseMemory, render
from weixin_trio._ops.readiness import readiness
from weixin_trio._ops.sample import take_sample
from weixin_trio._proto.send_metrics import SendMetrics
from weixin_trio.testing import FakeILinkServer


@dataclass(frozen=True)
class BenchAccount:
    account_id: str
    token: str
    base_url: str


async def bench(accounts: int, scrapes: int) -> None:
    fake = FakeILinkServer(seed=1, hold=30.0)
    fakes = [fake.default, *(fake.add_account() for _ in range(accounts - 1))]
    bots = [BenchAccount(a.bot_id, a.token, fake.base_url) for a in fakes]

    async def echo(msg: wx.Message) -> None:
        await msg.reply("ok")

    options = {"transport": fake.transport(), "pacing": None, "send_window": None}
    started = time.perf_counter()
    async with open_accounts(echo, bots, store=wx.MemoryStore(), client_options=options) as runner:
        print(f"accounts={accounts} start_s={time.perf_counter() - started:.2f}")
        for a in fakes:
            fake.inject_text("u@im.wechat", "hi", account=a)
        for a in fakes:
            await fake.wait_for_sent(1, account=a, timeout=120)
        leases = LeaseMemory()
        sample_times, render_times = [], []
        size = 0
        for _ in range(scrapes):
            t0 = time.perf_counter()
            sample = take_sample(runner)  # in the event loop
            ever_held = leases.update(sample)
            t1 = time.perf_counter()
            body, _ = render(sample, trio.current_time(), ever_held, "")  # a worker thread
            render_times.append(time.perf_counter() - t1)
            sample_times.append(t1 - t0)
            size = len(body)
        print(
            f"scrape_ms sample={statistics.median(sample_times) * 1e3:.1f} (event loop)"
            f" render={statistics.median(render_times) * 1e3:.1f} (thread)"
            f" max_total={max(map(sum, zip(sample_times, render_times, strict=True))) * 1e3:.1f}"
            f" bytes={size}"
        )
        ready_times = []
        for _ in range(scrapes):
            t0 = time.perf_counter()
            state = readiness(take_sample(runner, sends=False), trio.current_time())
            ready_times.append(time.perf_counter() - t0)
        print(f"readyz_ms median={statistics.median(ready_times) * 1e3:.1f} ready={state.ready}")
        runner.stop()


def observe_ns() -> float:
    metrics = SendMetrics()
    n = 1_000_000
    spent = timeit.timeit(lambda: metrics.observe(0.0123), number=n)
    empty = timeit.timeit(lambda: None, number=n)
    return (spent - empty) / n * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description="issue 19: scrape cost with many accounts")
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--scrapes", type=int, default=20)
    args = parser.parse_args()
    print(f"SendMetrics.observe_ns={observe_ns():.0f}")
    trio.run(bench, args.accounts, args.scrapes)


if __name__ == "__main__":
    main()
