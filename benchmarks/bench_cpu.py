"""CPU per message, peak RSS and throughput of the echo bot against the fast fake (issue 16).

Run: ``.venv/bin/python benchmarks/bench_cpu.py [fake] [echo] [slow] [order] [stop] [profile]``
(all by default, about a minute and a half). Options: ``--rounds N`` (3),
``--no-bytecode`` (compile the package from source in every bot process, as a shell
with ``PYTHONDONTWRITEBYTECODE`` does; by default the bots use a bytecode cache like an
installed package).

Every scenario starts a fresh ``_fast_fake.py`` process (asyncio, hand-written
HTTP/1.1, pre-encoded batches; its own process, loopback only, exits by itself) and
runs each bot in a process of its own, so the CPU and peak RSS are the bot's alone.

- fake: the fast fake's own ceiling. Two stdlib ``http.client`` processes send
  ``sendmessage`` requests (the echo's headers and body) as fast as they can; printed:
  requests/s and the fake's CPU per request (``/proc/<pid>/stat``), whose inverse is
  the rate one core of the fake could serve.
- echo: 2,000 messages from 50 users, trivial handler; three bots interleaved per
  round: the stdlib loop (``_stdlib_echo.py``), ``weixin_trio`` with a `FileStore`
  journal (fsync'd accept, group-committed done marks) in a temp dir, and
  ``weixin_trio`` with the default `MemoryStore` (to show what the journal costs).
  CPU per message: the bot process's user + system CPU / 2,000, with start-up
  (imports, opening the client) and without (first poll to last reply).
- slow: 200 users x 200 ms handlers, journal on (target <= 0.6 s wall).
- order: 10 users x 20 messages, 0-50 ms handlers, journal on (0 out of order).
- stop: SIGINT with a poll parked (exit 0 within 0.2 s; notifystop sent).
- profile (not run by default): the echo bot with the journal under cProfile and then
  pyinstrument (``--profile-dir``, default ``$TMPDIR/weixin-trio-profile``); prints
  `profile_areas.py`'s summary of each.

The fast fake checks every reply: per user in message order, with the context token
of the message it answers. ``uptime``'s load averages are printed before each round
(two cores shared with other work).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

from _harness import call, fast_fake, process_cpu, uptime

HERE = Path(__file__).parent
N_ECHO, USERS_ECHO = 2000, 50


def _bot_environment() -> dict[str, str]:
    """The bots' environment: with a bytecode cache, as an installed package has.

    A shell with ``PYTHONDONTWRITEBYTECODE`` set (this project's machines have it)
    would make every bot compile the package from source, ~0.09 s of CPU that no
    installed bot spends (pip writes the ``.pyc`` files). ``--no-bytecode`` keeps it.
    """
    env = dict(os.environ)
    if "--no-bytecode" in sys.argv:
        return env
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "weixin-trio-bench-pyc")
    warm = "import weixin_trio._client.open, weixin_trio._monitor.open, weixin_trio.store"
    subprocess.run([sys.executable, "-c", warm], env=env, check=True)
    return env


BOT_ENV: dict[str, str] = {}


def run_json(argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    if not BOT_ENV:
        BOT_ENV.update(_bot_environment())
    out = subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        check=False,
        env={**BOT_ENV, **(env or {})},
        timeout=300,
    )
    if out.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --- the fake's ceiling ----------------------------------------------------------------


def hammer(base_url: str, token: str, count: int) -> None:
    """``--hammer``: ``count`` serial sendmessage requests over one connection."""
    url = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port)
    headers = {
        "Content-Type": "application/json",
        "AuthorizationType": "ilink_bot_token",
        "Authorization": f"Bearer {token}",
        "X-WECHAT-UIN": base64.b64encode(str(random.getrandbits(32)).encode()).decode(),
        "iLink-App-Id": "bot",
        "iLink-App-ClientVersion": "256",
    }
    body = json.dumps(
        {
            "msg": {
                "from_user_id": "",
                "to_user_id": "u0@im.wechat",
                "client_id": "hammer:1",
                "message_type": 2,
                "message_state": 2,
                "item_list": [{"type": 1, "text_item": {"text": "hello"}}],
                "context_token": "ctx",
            },
            "base_info": {"channel_version": "0.1.0", "bot_agent": "hammer/1.0"},
        },
        separators=(",", ":"),
    ).encode()
    for _ in range(count):
        conn.request("POST", "/ilink/bot/sendmessage", body, headers)
        conn.getresponse().read()


def fake_ceiling(count: int = 20000, clients: int = 2) -> dict[str, float]:
    with fast_fake("--lifetime", "120") as info:
        time.sleep(0.3)
        cpu0 = process_cpu(info["pid"])
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--hammer", info["base_url"], info["token"], str(count)]
            )
            for _ in range(clients)
        ]
        for p in procs:
            p.wait(120)
        wall = time.perf_counter() - start
        cpu = process_cpu(info["pid"]) - cpu0
        sent = call(info["base_url"], "/_fast/stats")["sent"]
    return {
        "requests": sent,
        "requests_per_s": sent / wall,
        "fake_cpu_ms_per_request": 1000 * cpu / sent,
        "fake_one_core_ceiling_per_s": sent / cpu,
    }


# --- echo ------------------------------------------------------------------------------


def echo_once(bot: str) -> dict[str, float]:
    """One echo run of ``bot`` (stdlib, file, memory) on a fresh fast fake."""
    fake_args = ("--messages", str(N_ECHO), "--users", str(USERS_ECHO), "--lifetime", "120")
    with fast_fake(*fake_args) as info, tempfile.TemporaryDirectory() as tmp:
        base_url, token = info["base_url"], info["token"]
        time.sleep(0.2)
        cpu0 = process_cpu(info["pid"])
        if bot == "stdlib":
            result = run_json([str(HERE / "_stdlib_echo.py"), base_url, token, str(N_ECHO)])
        else:
            env = {"BENCH_STORE_DIR": tmp} if bot == "file" else {}
            result = run_json([str(HERE / "_bot.py"), "echo", base_url, token, str(N_ECHO)], env)
        fake_cpu = process_cpu(info["pid"]) - cpu0
        stats = call(base_url, "/_fast/stats")
    assert stats["sent"] == N_ECHO, stats
    assert stats["out_of_order"] == 0, stats
    assert stats["bad_context_token"] == 0, stats
    out = {
        "msgs_per_s": N_ECHO / result["elapsed"],
        "cpu_ms_per_msg": 1000 * result["cpu_s"] / N_ECHO,
        "fake_cpu_ms_per_request": 1000 * fake_cpu / stats["requests"],
        "fake_busy": fake_cpu / result["elapsed"],
    }
    if bot != "stdlib":
        out["cpu_run_ms_per_msg"] = 1000 * result["cpu_run_s"] / N_ECHO
        out["peak_rss_mib"] = result["maxrss_kib"] / 1024
        out["rss_at_start_mib"] = result["rss_start_kib"] / 1024
    return out


def echo(rounds: int) -> dict[str, dict[str, float]]:
    bots = ["stdlib", "file", "memory"]
    runs: dict[str, list[dict[str, float]]] = {b: [] for b in bots}
    for r in range(rounds):
        print(f"  round {r + 1}: load {uptime()}", flush=True)
        order = bots[r % len(bots) :] + bots[: r % len(bots)]  # rotate who goes first
        for bot in order:
            result = echo_once(bot)
            runs[bot].append(result)
            print(f"    {bot:6} " + fmt(result), flush=True)
    best: dict[str, dict[str, float]] = {}
    for bot, results in runs.items():
        # Best of N, metric by metric: most msgs/s, least CPU, least RSS.
        best[bot] = {
            k: (max if k == "msgs_per_s" else min)(r[k] for r in results) for k in results[0]
        }
    best["ratio"] = {
        "file_vs_stdlib_msgs_per_s": best["file"]["msgs_per_s"] / best["stdlib"]["msgs_per_s"],
        "memory_vs_stdlib_msgs_per_s": best["memory"]["msgs_per_s"] / best["stdlib"]["msgs_per_s"],
    }
    return best


# --- no-regression scenarios ----------------------------------------------------------


def handler_scenario(scenario: str, users: int, messages: int, rounds: int) -> dict[str, float]:
    best: dict[str, float] = {}
    for _ in range(rounds):
        args = ("--messages", str(messages), "--users", str(users), "--lifetime", "120")
        with fast_fake(*args) as info, tempfile.TemporaryDirectory() as tmp:
            result = run_json(
                [str(HERE / "_bot.py"), scenario, info["base_url"], info["token"], str(messages)],
                {"BENCH_STORE_DIR": tmp},
            )
            stats = call(info["base_url"], "/_fast/stats")
        run = {
            "wall_s": result["elapsed"],
            "replies": stats["sent"],
            "out_of_order": stats["out_of_order"],
            "bad_context_token": stats["bad_context_token"],
        }
        if not best or run["wall_s"] < best["wall_s"]:
            best = run
    return best


def stop(rounds: int) -> dict[str, float]:
    best: dict[str, float] = {}
    for _ in range(rounds):
        with fast_fake("--lifetime", "60") as info, tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.Popen(
                [sys.executable, str(HERE / "_bot.py"), "idle", info["base_url"], "tok-0", "1"],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "BENCH_STORE_DIR": tmp},
            )
            assert proc.stdout is not None
            proc.stdout.readline()  # ready
            time.sleep(1.0)  # the long poll is parked in the fake now
            parked = call(info["base_url"], "/_fast/stats")["parked_now"]
            start = time.perf_counter()
            proc.send_signal(signal.SIGINT)
            code = proc.wait(10)
            wall = time.perf_counter() - start
            inner = json.loads(proc.stdout.readline())
            stats = call(info["base_url"], "/_fast/stats")
        run = {
            "exit_code": code,
            "wall_s": wall,
            "monitor_stop_s": inner["stop_seconds"],
            "parked_before": parked,
            "notifystart": stats["notifystart"],
            "notifystop": stats["notifystop"],
        }
        if not best or run["wall_s"] < best["wall_s"]:
            best = run
    return best


def profile(directory: Path) -> None:
    """The echo bot (journal on) under cProfile, then pyinstrument; print the areas."""
    from profile_areas import summarise, summarise_sampled

    directory.mkdir(parents=True, exist_ok=True)
    for name in ("echo.prof", "echo.pyisession"):
        path = directory / name
        fake_args = ("--messages", str(N_ECHO), "--users", str(USERS_ECHO), "--lifetime", "120")
        with fast_fake(*fake_args) as info, tempfile.TemporaryDirectory() as tmp:
            argv = [str(HERE / "_bot.py"), "echo", info["base_url"], info["token"], str(N_ECHO)]
            run_json(argv, {"BENCH_STORE_DIR": tmp, "BENCH_PROFILE": str(path)})
        if name.endswith(".prof"):
            summarise(str(path), 25)
        else:
            summarise_sampled(str(path), 25)
        print(flush=True)


def fmt(result: dict[str, Any]) -> str:
    return "  ".join(
        f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="issue 16: CPU per message (echo bot)")
    parser.add_argument("scenarios", nargs="*", default=["fake", "echo", "slow", "order", "stop"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-bytecode", action="store_true", help="compile in every bot")
    parser.add_argument(
        "--profile-dir", type=Path, default=Path(tempfile.gettempdir()) / "weixin-trio-profile"
    )
    parser.add_argument("--hammer", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hammer:
        hammer(args.hammer[0], args.hammer[1], int(args.hammer[2]))
        return
    print(f"python {sys.version.split()[0]}, cpus {os.cpu_count()}, load {uptime()}")
    for name in args.scenarios:
        if name == "fake":
            print("fake   " + fmt(fake_ceiling()), flush=True)
        elif name == "echo":
            print("echo (interleaved, best of each metric):", flush=True)
            for bot, result in echo(args.rounds).items():
                print(f"  best {bot:6} " + fmt(result), flush=True)
        elif name == "slow":
            print("slow   " + fmt(handler_scenario("slow", 200, 200, args.rounds)), flush=True)
        elif name == "order":
            print("order  " + fmt(handler_scenario("random", 10, 200, args.rounds)), flush=True)
        elif name == "stop":
            print("stop   " + fmt(stop(args.rounds)), flush=True)
        elif name == "profile":
            profile(args.profile_dir)
        else:
            raise SystemExit(f"unknown scenario {name}")


if __name__ == "__main__":
    main()
