"""Parked accounts in one process: start time, RSS per account, one answer each (issue 16).

Run: ``.venv/bin/python benchmarks/bench_accounts.py [--accounts 1000 10000]
[--store memory|file] [--time-limit S]`` (default 1,000 accounts, `MemoryStore`).

Layout: one ``_fast_fake.py`` process serves every account (tokens ``tok-<i>``, one
held text message each, delivered only after ``/_fast/go``; long polls park for
35 s, the live hold). The bot is a separate process (this script with ``--bot``) that raises its
soft ``RLIMIT_NOFILE`` to the hard limit, measures its RSS (``VmRSS``) inside
``trio.run`` before ``open_accounts``, starts all N accounts through
``open_accounts`` (``pacing=None``, ``send_window=None``), waits until every long
poll is parked in the fake, measures RSS again (after ``gc.collect()``) and the CPU
used over 2 s of idling, then releases the messages and times until every account has
answered its one message. Leaving ``open_accounts`` stops every account (drain,
``notifystop``); that is timed too. Everything is bounded by ``--time-limit``.

Printed per N: start time, RSS before / after / per account, fds open and the
connections the fake holds (with one shared pool for sends this would be about one
per account plus the pool), idle CPU, time to answer one message on each account,
stop time, peak RSS. ``--tracemalloc`` adds the Python heap still allocated per
account, by area of the allocating file (a memory profile; RSS is then inflated).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

import weixin_trio as wx

sys.path.insert(0, str(Path(__file__).parent))

from _harness import call, fast_fake, uptime
from profile_areas import area_of


@dataclass(frozen=True)
class BenchAccount:
    account_id: str
    token: str
    base_url: str


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raise_nofile() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the new (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def tree_state() -> str:
    """The commit measured, and whether the working tree's src/ differs from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    src = Path(wx.__file__).resolve().parent.parent
    where = "" if src == root / "src" else f", weixin_trio from {src}"
    return f"{head or 'unknown'}{' + uncommitted src changes' if dirty else ''}{where}"


def fake_stats(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(base_url + "/_fast/stats", timeout=30) as response:
        stats: dict[str, Any] = json.loads(response.read())
    return stats


def fake_go(base_url: str) -> None:
    request = urllib.request.Request(base_url + "/_fast/go", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


# --- the bot process -------------------------------------------------------------------


def count_tasks(task: trio.lowlevel.Task) -> int:
    """Tasks in the tree under ``task`` (itself included)."""
    return 1 + sum(count_tasks(c) for n in task.child_nurseries for c in n.child_tasks)


def traced_by_area(snapshot: tracemalloc.Snapshot, n: int) -> dict[str, float]:
    """KiB per account of the Python heap still allocated, by area of the allocating file."""
    by_area: dict[str, float] = defaultdict(float)
    for stat in snapshot.statistics("filename"):
        filename = stat.traceback[0].filename
        area = area_of((filename, 0, "")) or "other stdlib"
        if "tracemalloc" in filename:
            continue
        by_area[area] += stat.size / 1024 / n
    return dict(sorted(by_area.items(), key=lambda kv: -kv[1]))


async def bot_main(
    base_url: str, n: int, store_kind: str, time_limit: float, trace: bool
) -> dict[str, Any]:
    nofile = raise_nofile()
    handled = 0
    all_handled = trio.Event()

    async def handler(msg: wx.Message) -> None:
        nonlocal handled
        await msg.reply(msg.text)
        handled += 1
        if handled >= n:
            all_handled.set()

    accounts = [BenchAccount(f"acct{i}", f"tok-{i}", base_url) for i in range(n)]
    result: dict[str, Any] = {"accounts": n, "store": store_kind, "nofile": list(nofile)}
    with tempfile.TemporaryDirectory() as tmp:
        store: wx.Store = wx.FileStore(tmp) if store_kind == "file" else wx.MemoryStore()
        gc.collect()
        rss_before = rss_kib()
        fds_before = len(os.listdir("/proc/self/fd"))
        result["rss_before_mib"] = rss_before / 1024
        if trace:
            tracemalloc.start(1)
        with trio.fail_after(time_limit):
            start = trio.current_time()
            async with wx.open_accounts(
                handler,
                accounts,
                store=store,
                client_options={"pacing": None, "send_window": None},
            ):
                result["start_s"] = trio.current_time() - start
                # Wait until every long poll is parked in the fake.
                while True:
                    stats = await trio.to_thread.run_sync(fake_stats, base_url)
                    if stats["parked_now"] >= n:
                        result["fake_connections_parked"] = stats["connections"]
                        break
                    await trio.sleep(0.2)
                result["all_parked_s"] = trio.current_time() - start
                await trio.sleep(0.5)
                gc.collect()
                rss_after = rss_kib()
                result["rss_after_mib"] = rss_after / 1024
                result["kib_per_account"] = (rss_after - rss_before) / n
                result["fds_before"] = fds_before
                result["fds_parked"] = len(os.listdir("/proc/self/fd"))
                tasks = count_tasks(trio.lowlevel.current_root_task())  # type: ignore[arg-type]
                result["tasks_per_account"] = tasks / n
                if trace:
                    snapshot = tracemalloc.take_snapshot()
                    tracemalloc.stop()
                    result["traced_kib_per_account"] = traced_by_area(snapshot, n)
                cpu0 = cpu_s()
                await trio.sleep(2.0)
                result["idle_cpu_percent"] = 100 * (cpu_s() - cpu0) / 2.0
                answer_start = trio.current_time()
                await trio.to_thread.run_sync(fake_go, base_url)
                await all_handled.wait()
                result["answer_all_s"] = trio.current_time() - answer_start
                stop_start = trio.current_time()
            result["stop_s"] = trio.current_time() - stop_start
        if isinstance(store, wx.FileStore):
            await store.aclose()
    result["handled"] = handled
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


# --- the orchestrator ------------------------------------------------------------------


def run(n: int, store: str, time_limit: float, trace: bool) -> dict[str, Any]:
    fake_args = ("--accounts", str(n), "--messages", "1", "--users", "1", "--held")
    with fast_fake(*fake_args, "--hold", "35", "--lifetime", str(time_limit + 60)) as info:
        base_url = info["base_url"]
        out = subprocess.run(
            [sys.executable, __file__, "--bot", base_url, str(n), store, str(time_limit)]
            + (["--tracemalloc"] if trace else []),
            capture_output=True,
            text=True,
            check=False,
            timeout=time_limit + 30,
        )
        if out.returncode != 0:
            return {"accounts": n, "error": out.stderr.strip().splitlines()[-1:]}
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        stats = call(base_url, "/_fast/stats")
    result.update(
        fake_connections_end=stats["connections"],
        replies=stats["sent"],
        notifystart=stats["notifystart"],
        notifystop=stats["notifystop"],
        bad_context_token=stats["bad_context_token"],
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="issue 16: parked accounts in one process")
    parser.add_argument("--accounts", type=int, nargs="*", default=[1000])
    parser.add_argument("--store", choices=["memory", "file"], default="memory")
    parser.add_argument("--time-limit", type=float, default=300.0, help="per run (s)")
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="also report the Python heap per account by area (slower; RSS inflated)",
    )
    parser.add_argument("--bot", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bot:
        base_url, n, store, limit = args.bot
        result = trio.run(bot_main, base_url, int(n), store, float(limit), args.tracemalloc)
        print(json.dumps(result), flush=True)
        return
    print(f"python {sys.version.split()[0]}, cpus {os.cpu_count()}, tree {tree_state()}")
    for n in args.accounts:
        print(f"load {uptime()}", flush=True)
        started = time.perf_counter()
        result = run(n, args.store, args.time_limit, args.tracemalloc)
        result["wall_s"] = time.perf_counter() - started
        print(
            "  ".join(
                f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
