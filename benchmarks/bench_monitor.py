"""Monitor benchmarks against the fake server served on loopback (DESIGN §11 targets).

Run: ``.venv/bin/python benchmarks/bench_monitor.py`` (about half a minute).
Each scenario gets a fresh ``weixin-trio fake-server`` process; the bot runs in its own
process (``_bot.py``) so its peak RSS is its own. Results go into benchmarks/README.md.

Scenarios:
- echo: 2000 messages from 50 users, trivial handler; compared with a bare stdlib
  ``http.client`` loop doing the same echo in the same run (target >= 0.45x).
- slow: 200 messages from 200 users, handler sleeps 200 ms (target <= 0.6 s).
- order: 10 users x 20 messages, handlers sleep 0-50 ms (target <= 1 s, 0 out of order).
- stop: SIGINT with a poll parked (target exit 0 within 0.2 s, notifystop sent).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from _harness import call, fake_server, inject

HERE = Path(__file__).parent


def run_json(*argv: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def echo(rounds: int = 3) -> dict[str, float]:
    n, users = 2000, 50
    best: dict[str, float] = {}
    for _ in range(rounds):
        with fake_server() as (base_url, token):
            inject(base_url, [(f"u{i % users}@im.wechat", f"m{i}") for i in range(n)])
            ours = run_json(str(HERE / "_bot.py"), "echo", base_url, token, str(n))
            assert call(base_url, "/_fake/stats")["sent"] == n
        with fake_server() as (base_url, token):
            inject(base_url, [(f"u{i % users}@im.wechat", f"m{i}") for i in range(n)])
            stdlib = run_json(str(HERE / "_stdlib_echo.py"), base_url, token, str(n))
        ratio = stdlib["elapsed"] / ours["elapsed"]
        if not best or ratio > best["ratio"]:
            best = {
                "msgs_per_s": n / ours["elapsed"],
                "stdlib_msgs_per_s": n / stdlib["elapsed"],
                "ratio": ratio,
                "cpu_ms_per_msg": 1000 * ours["cpu_s"] / n,
                "stdlib_cpu_ms_per_msg": 1000 * stdlib["cpu_s"] / n,
                "peak_rss_mib": ours["maxrss_kib"] / 1024,
            }
    return best


def slow() -> dict[str, float]:
    n = 200
    with fake_server() as (base_url, token):
        inject(base_url, [(f"u{i}@im.wechat", f"m{i}") for i in range(n)])
        result = run_json(str(HERE / "_bot.py"), "slow", base_url, token, str(n))
    return {"wall_s": result["elapsed"]}


def order() -> dict[str, float]:
    users, per_user = 10, 20
    with fake_server() as (base_url, token):
        msgs = [(f"u{u}@im.wechat", f"{u}-{k}") for k in range(per_user) for u in range(users)]
        inject(base_url, msgs)
        result = run_json(str(HERE / "_bot.py"), "random", base_url, token, str(len(msgs)))
        sent = call(base_url, "/_fake/sent")
    expected: dict[str, list[str]] = defaultdict(list)
    for user, text in msgs:
        expected[user].append(text)
    got: dict[str, list[str]] = defaultdict(list)
    for s in sent:
        got[s["to_user_id"]].append(s["text"])
    out_of_order = sum(
        1 for user in expected for a, b in zip(expected[user], got[user], strict=False) if a != b
    )
    return {"wall_s": result["elapsed"], "out_of_order": out_of_order, "replies": len(sent)}


def stop() -> dict[str, float]:
    with fake_server() as (base_url, token):
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "_bot.py"), "idle", base_url, token, "1"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        proc.stdout.readline()  # ready
        time.sleep(1.0)  # the long poll is parked in the server now
        start = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(10)
        wall = time.perf_counter() - start
        inner = json.loads(proc.stdout.readline())
        notify = call(base_url, "/_fake/stats")["notify"]
    return {
        "exit_code": code,
        "wall_s": wall,
        "stop_s": inner["stop_seconds"],
        "notifystop": float(notify == ["start", "stop"]),
    }


def main() -> None:
    scenarios = sys.argv[1:] or ["echo", "slow", "order", "stop"]
    funcs = {"echo": echo, "slow": slow, "order": order, "stop": stop}
    for name in scenarios:
        result = funcs[name]()
        print(f"{name:6} " + "  ".join(f"{k}={v:.3f}" for k, v in result.items()), flush=True)


if __name__ == "__main__":
    main()
