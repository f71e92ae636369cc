"""Load benchmark: 10 accounts x N messages handled by one bot process.

Run: ``.venv/bin/python benchmarks/bench_load.py [--messages N] [--accounts K]``
(default N = 10000 per account, K = 10).

Layout: each account gets its own ``weixin-trio fake-server`` process (the fake has one
account per process), so the servers' work never counts against the bot. The bot is a
separate process (this script with ``--bot``) running ``weixin_trio.open_accounts`` over
all accounts with pacing and the send window off; its handler sleeps a random 0-50 ms
and replies. This (orchestrating) process injects every message in bulk once the bot
is ready, samples ``/proc/<bot pid>/fd`` every second, and prints a table.

Latency is measured inside the bot from the fake's ``create_time_ms`` (stamped at
injection, same host clock) to the moment the reply was accepted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import trio

import weixin_trio as wx

sys.path.insert(0, str(Path(__file__).parent))

from _harness import call, fake_server

USERS_PER_ACCOUNT = 50


@attrs.frozen
class BenchAccount:
    account_id: str
    token: str
    base_url: str


def fd_count(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(q * (len(ordered) - 1)))
    return ordered[index]


# --- the bot process -------------------------------------------------------------------


async def bot_main(accounts: list[BenchAccount], total: int) -> dict[str, Any]:
    rng = random.Random(7)
    latencies: list[float] = []
    done = trio.Event()
    first_created = float("inf")
    last_reply = 0.0

    async def handler(msg: wx.Message) -> None:
        nonlocal first_created, last_reply
        await trio.sleep(rng.uniform(0, 0.05))
        await msg.reply(f"echo {msg.text}")
        now = time.time()
        created = msg.create_time.timestamp() if msg.create_time is not None else now
        first_created = min(first_created, created)
        last_reply = max(last_reply, now)
        latencies.append(now - created)
        if len(latencies) >= total:
            done.set()

    fds_start = fd_count()
    async with wx.open_accounts(
        handler,
        accounts,
        store=wx.MemoryStore(),
        client_options={"pacing": None, "send_window": None},
        max_concurrency=256,
        max_pending=1024,
    ) as runner:
        fds_running = fd_count()
        print(json.dumps({"ready": True, "fds_running": fds_running}), flush=True)
        await done.wait()
        stats = runner.statistics()
    await trio.sleep(0.5)  # let closed sockets settle
    fds_end = fd_count()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "handled": len(latencies),
        "elapsed": last_reply - first_created,
        "p50_ms": 1000 * percentile(latencies, 0.50),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "max_ms": 1000 * max(latencies, default=float("nan")),
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "fds_start": fds_start,
        "fds_running": fds_running,
        "fds_end": fds_end,
        "poll_failures": sum(s.poll_failures for s in stats.values()),
        "failed": sum(s.failed for s in stats.values()),
        "duplicates": sum(s.duplicates for s in stats.values()),
    }


def run_bot(config: str) -> None:
    spec = json.loads(config)
    accounts = [BenchAccount(**a) for a in spec["accounts"]]
    result = trio.run(bot_main, accounts, int(spec["total"]))
    print(json.dumps(result), flush=True)


# --- the orchestrator ------------------------------------------------------------------


def run(messages: int, n_accounts: int) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(fake_server()) for _ in range(n_accounts)]
        accounts = [
            BenchAccount(f"acct{i}", token, base_url) for i, (base_url, token) in enumerate(servers)
        ]
        config = json.dumps(
            {"accounts": [attrs.asdict(a) for a in accounts], "total": messages * n_accounts}
        )
        bot = subprocess.Popen(
            [sys.executable, __file__, "--bot", config], stdout=subprocess.PIPE, text=True
        )
        assert bot.stdout is not None
        ready = json.loads(bot.stdout.readline())
        assert ready.get("ready"), ready
        fd_samples: list[int] = [fd_count(bot.pid)]
        started = time.perf_counter()
        for i, (base_url, _) in enumerate(servers):
            batch = [
                {"user": f"u{k % USERS_PER_ACCOUNT}@im.wechat", "text": f"a{i}-m{k}"}
                for k in range(messages)
            ]
            call(base_url, "/_fake/inject", batch)
        inject_s = time.perf_counter() - started
        while bot.poll() is None:
            with contextlib.suppress(FileNotFoundError):
                fd_samples.append(fd_count(bot.pid))
            time.sleep(1.0)
        result: dict[str, Any] = json.loads(bot.stdout.read().strip().splitlines()[-1])
        if bot.returncode != 0:
            raise SystemExit(f"bot exited with {bot.returncode}")
        shown = [call(base_url, "/_fake/stats")["sent"] for base_url, _ in servers]
    result.update(
        accounts=n_accounts,
        messages_per_account=messages,
        inject_s=inject_s,
        shown=sum(shown),
        fd_samples=fd_samples,
        wall_s=time.perf_counter() - started,
    )
    return result


def print_table(r: dict[str, Any]) -> None:
    total = r["accounts"] * r["messages_per_account"]
    rows = [
        ("accounts x messages", f"{r['accounts']} x {r['messages_per_account']} = {total}"),
        ("handled / replies shown", f"{r['handled']} / {r['shown']}"),
        ("throughput (msgs/s)", f"{r['handled'] / r['elapsed']:.0f}"),
        ("first inject -> last reply (s)", f"{r['elapsed']:.2f}"),
        ("latency p50 (ms)", f"{r['p50_ms']:.0f}"),
        ("latency p99 (ms)", f"{r['p99_ms']:.0f}"),
        ("latency max (ms)", f"{r['max_ms']:.0f}"),
        ("bot CPU (ms/msg)", f"{1000 * r['cpu_s'] / max(r['handled'], 1):.3f}"),
        ("bot peak RSS (MiB)", f"{r['peak_rss_mib']:.1f}"),
        ("fds start / running / end", f"{r['fds_start']} / {r['fds_running']} / {r['fds_end']}"),
        ("fds sampled (min / max)", f"{min(r['fd_samples'])} / {max(r['fd_samples'])}"),
        ("fds over time (1 s)", " ".join(map(str, r["fd_samples"]))),
        ("poll failures / handler failures", f"{r['poll_failures']} / {r['failed']}"),
        ("duplicates dropped", str(r["duplicates"])),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=10000, help="messages per account")
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--bot", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bot:
        run_bot(args.bot)
        return
    result = run(args.messages, args.accounts)
    print_table(result)
    ok = result["handled"] == result["shown"] == args.messages * args.accounts
    ok = ok and result["fds_end"] <= result["fds_start"]
    if not ok:
        raise SystemExit("FAILED: lost/extra replies or file descriptors leaked")


if __name__ == "__main__":
    main()
