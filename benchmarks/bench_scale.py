"""Scale-out benchmark: throughput of 1, 2 and 4 processes sharing accounts through Redis.

Run: ``.venv/bin/python benchmarks/bench_scale.py [--mode leased,fanout]
[--handler cpu,io] [--procs 1,2,4] [--quick]`` (the default full run takes about four
minutes on a 2-core machine: 3 min 57 s measured).

Modes:

- ``leased``: P ``weixin-trio run --redis`` processes share the A accounts (default 8,
  so 1, 2 and 4 processes divide it) through leases; each process polls its share and
  runs the handler itself.
- ``fanout``: one ``weixin-trio run --redis --fanout`` poller publishes every message to
  Redis Streams (16 partitions) and P ``weixin-trio worker`` processes run the handler.

Handlers (this module, imported by the processes as ``bench_scale:cpu`` /
``bench_scale:io``):

- ``cpu`` burns ``$WEIXIN_TRIO_BENCH_CPU_MS`` (default 50) ms of CPU in a pure-Python
  loop (measured with ``time.process_time``, so it is the same work however busy the
  machine is) without yielding to trio, then replies;
- ``io`` awaits ``trio.sleep(0.05)``, then replies.

Each run starts a fresh ``redis-server`` and a fresh ``FakeILinkServer`` served on
loopback *by this process* (so the fake's CPU and Redis's CPU come out of the same
cores as the bot processes), saves the accounts to Redis, starts the processes, waits
until the accounts (and, for fan-out, the partitions) are spread evenly and one warm-up
message per account has been answered, then injects M messages over A accounts x U
users and measures the wall time from the first injection until every reply is shown.
The CPU seconds that the bot processes, this process (the fake) and Redis used in that
window are printed too. The processes are then stopped with SIGTERM and must exit 0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

if TYPE_CHECKING:
    import weixin_trio as wx
    from weixin_trio.redis import RedisStore
    from weixin_trio.testing import FakeAccount, FakeILinkServer

HERE = Path(__file__).parent

# --- the handlers (run inside the bot processes) ---------------------------------------

CPU_SECONDS = float(os.environ.get("WEIXIN_TRIO_BENCH_CPU_MS", "50")) / 1000
IO_SECONDS = 0.05


def burn(seconds: float) -> int:
    """Spin a pure-Python loop until ``seconds`` of this process's CPU time are used."""
    end = time.process_time() + seconds
    x = 0
    while time.process_time() < end:
        for i in range(500):  # some arithmetic between the (syscall) clock reads
            x = (x * 31 + i) & 0xFFFF
    return x


async def cpu(msg: wx.Message) -> None:
    """CPU-bound: ~50 ms of pure Python holding the GIL and the event loop, then reply."""
    burn(CPU_SECONDS)
    await msg.reply(f"done {msg.text}")


async def io(msg: wx.Message) -> None:
    """I/O-bound: wait 50 ms (trio.sleep), then reply."""
    await trio.sleep(IO_SECONDS)
    await msg.reply(f"done {msg.text}")


# --- the orchestrator --------------------------------------------------------------------


@attrs.frozen
class Config:
    accounts: int
    users: int
    lease_ttl: float
    max_concurrency: int
    node_args: tuple[str, ...]
    partitions: int
    timeout: float
    cpu_ms: float
    logs: Path


@attrs.define
class Node:
    name: str
    proc: trio.Process
    log: Path
    ready_text: str


@attrs.frozen
class Result:
    mode: str
    handler: str
    procs: int
    messages: int
    seconds: float
    setup_s: float
    bots_cpu_s: float
    fake_cpu_s: float
    redis_cpu_s: float
    stop_s: float
    exit_codes: tuple[int | None, ...]
    log_warnings: int

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process (``/proc/<pid>/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def redis_cpu(store: RedisStore) -> float:
    info: Any = await store.client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def start_node(
    name: str, args: list[str], ready_text: str, cfg: Config, env: dict[str, str]
) -> Node:
    log = cfg.logs / f"{name}.log"
    with log.open("wb") as out:
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "weixin_trio", *args],
            cwd=HERE,
            stdout=out,
            stderr=out,
            env=env,
        )
    return Node(name, proc, log, ready_text)


async def wait_ready(nodes: list[Node]) -> None:
    """Until every process printed its banner (polling the log files)."""
    for node in nodes:
        while node.ready_text not in node.log.read_text(errors="replace"):
            if node.proc.poll() is not None:
                raise RuntimeError(f"{node.name} exited early:\n{node.log.read_text()}")
            await trio.sleep(0.05)


async def wait_spread(leases: Any, names: list[str], owners: set[str], share: int) -> None:
    """Until every name is leased by one of ``owners``, each holding ``share``."""
    while True:
        current = Counter([await leases.owner(n) for n in names])
        if set(current) == owners and all(v == share for v in current.values()):
            return
        await trio.sleep(0.05)


class Replies:
    """Counts the distinct replies the fake shows (scanning only new sends)."""

    def __init__(self, fake: FakeILinkServer) -> None:
        self.fake = fake
        self.seen = 0
        self.texts: set[str] = set()

    def count(self) -> int:
        sends = self.fake.sends
        for send in sends[self.seen :]:
            if send.shown:
                self.texts.add(send.text)
        self.seen = len(sends)
        return len(self.texts)

    async def wait_for(self, n: int) -> float:
        """Wait until ``n`` distinct replies were shown; return the trio time then."""
        while self.count() < n:  # noqa: ASYNC110 - the fake has no public event for this
            await trio.sleep(0.005)
        return trio.current_time()


async def one_run(mode: str, handler: str, procs: int, messages: int, cfg: Config) -> Result:
    from weixin_trio.redis import Leases, open_redis_store
    from weixin_trio.redis._scripts import partition_keys
    from weixin_trio.testing import FakeILinkServer

    if str(HERE.parent) not in sys.path:  # the test-only Redis helper lives in tests/
        sys.path.insert(0, str(HERE.parent))
    from tests._redis_server import RedisServer

    prefix = f"sc{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WEIXIN_TRIO_BENCH_CPU_MS": str(cfg.cpu_ms)}
    fake = FakeILinkServer(seed=11, record_requests=False)
    accounts = [fake.add_account() for _ in range(cfg.accounts)]
    nodes: list[Node] = []
    with RedisServer() as redis:
        common = ["--redis", redis.url, "--redis-prefix", prefix, "--no-pacing"]
        common += ["--lease-ttl", str(cfg.lease_ttl), "--max-concurrency"]
        common += [str(cfg.max_concurrency), *cfg.node_args]
        try:
            async with (
                trio.open_nursery() as nursery,
                open_redis_store(redis.url, prefix=prefix) as store,
            ):
                base_url = await nursery.start(fake.serve)
                await save_accounts(store, accounts, base_url)
                setup_started = trio.current_time()
                account_ids = [a.bot_id for a in accounts]
                leases = Leases(store.client, prefix=prefix, node_id="bench", ttl=cfg.lease_ttl)
                if mode == "leased":
                    for i in range(procs):
                        args = ["run", f"bench_scale:{handler}", *common, "--node-id", f"n{i}"]
                        nodes.append(await start_node(f"n{i}", args, "running", cfg, env))
                    with trio.fail_after(60):
                        await wait_ready(nodes)
                    owners = {n.name for n in nodes}
                    share = cfg.accounts // procs
                    with trio.fail_after(60):
                        await wait_spread(leases, account_ids, owners, share)
                else:
                    parts = ["--partitions", str(cfg.partitions)]
                    poller = ["run", "--fanout", *common, *parts, "--node-id", "poller"]
                    nodes.append(await start_node("poller", poller, "running", cfg, env))
                    for i in range(procs):
                        args = ["worker", f"bench_scale:{handler}", *common, *parts]
                        args += ["--node-id", f"w{i}"]
                        nodes.append(await start_node(f"w{i}", args, "worker handling", cfg, env))
                    with trio.fail_after(60):
                        await wait_ready(nodes)
                        await wait_spread(leases, account_ids, {"poller"}, cfg.accounts)
                    part_leases = Leases(
                        store.client,
                        prefix=prefix,
                        node_id="bench",
                        ttl=cfg.lease_ttl,
                        group="workers",
                        key=lambda name: partition_keys(prefix, int(name))[2],
                    )
                    workers = {n.name for n in nodes[1:]}
                    share = cfg.partitions // procs
                    names = [str(p) for p in range(cfg.partitions)]
                    with trio.fail_after(60):
                        await wait_spread(part_leases, names, workers, share)
                replies = Replies(fake)
                for a in accounts:  # warm-up: every account polled and answering
                    fake.inject_text("warmup@im.wechat", f"warmup {a.bot_id}", account=a)
                with trio.fail_after(60):
                    await replies.wait_for(len(accounts))
                setup_s = trio.current_time() - setup_started

                cpu_before = sum(proc_cpu(n.proc.pid) for n in nodes)
                self_before = self_cpu()
                redis_before = await redis_cpu(store)
                started = trio.current_time()
                for k in range(messages):
                    account = accounts[k % len(accounts)]
                    user = f"u{(k // len(accounts)) % cfg.users}@im.wechat"
                    fake.inject_text(user, f"m{k}", account=account)
                with trio.fail_after(cfg.timeout):
                    finished = await replies.wait_for(len(accounts) + messages)
                bots_cpu = sum(proc_cpu(n.proc.pid) for n in nodes) - cpu_before
                fake_cpu = self_cpu() - self_before
                redis_used = await redis_cpu(store) - redis_before

                stop_started = trio.current_time()
                for node in nodes:
                    node.proc.send_signal(signal.SIGTERM)
                with trio.move_on_after(30):
                    for node in nodes:
                        await node.proc.wait()
                stop_s = trio.current_time() - stop_started
                nursery.cancel_scope.cancel()
        finally:
            for node in nodes:
                if node.proc.returncode is None:
                    node.proc.kill()
                    with trio.CancelScope(shield=True):
                        await node.proc.wait()
    warnings = sum(
        1
        for n in nodes
        for line in n.log.read_text(errors="replace").splitlines()
        if " WARNING " in line or " ERROR " in line
    )
    return Result(
        mode=mode,
        handler=handler,
        procs=procs,
        messages=messages,
        seconds=finished - started,
        setup_s=setup_s,
        bots_cpu_s=bots_cpu,
        fake_cpu_s=fake_cpu,
        redis_cpu_s=redis_used,
        stop_s=stop_s,
        exit_codes=tuple(n.proc.returncode for n in nodes),
        log_warnings=warnings,
    )


async def save_accounts(store: RedisStore, accounts: list[FakeAccount], base_url: str) -> None:
    for account in accounts:
        data = {"token": account.token, "base_url": base_url, "created_at": 0.0}
        await store.save_account(account.bot_id, data)


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


HEADER = (
    "mode",
    "handler",
    "procs",
    "msgs",
    "seconds",
    "msgs/s",
    "speed-up",
    "CPU s: bots",
    "fake",
    "redis",
    "CPU busy",
    "setup s",
    "stop s",
    "exit",
    "warn",
)


def row(r: Result, base: Result | None, cores: int) -> tuple[str, ...]:
    speedup = f"{r.rate / base.rate:.2f}x" if base is not None else "-"
    total_cpu = r.bots_cpu_s + r.fake_cpu_s + r.redis_cpu_s
    return (
        r.mode,
        r.handler,
        str(r.procs),
        str(r.messages),
        f"{r.seconds:.2f}",
        f"{r.rate:.1f}",
        speedup,
        f"{r.bots_cpu_s:.1f}",
        f"{r.fake_cpu_s:.1f}",
        f"{r.redis_cpu_s:.1f}",
        f"{100 * total_cpu / (r.seconds * cores):.0f}%",
        f"{r.setup_s:.1f}",
        f"{r.stop_s:.1f}",
        ",".join(str(c) for c in r.exit_codes),
        str(r.log_warnings),
    )


def print_table(results: list[Result], cores: int) -> None:
    rows: list[tuple[str, ...]] = [HEADER]
    for r in results:
        base = next(
            (b for b in results if (b.mode, b.handler, b.procs) == (r.mode, r.handler, 1)), None
        )
        rows.append(row(r, base, cores))
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    for line in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)))


def csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mode", type=csv, default=["leased", "fanout"], help="leased,fanout")
    parser.add_argument("--handler", type=csv, default=["cpu", "io"], help="cpu,io")
    parser.add_argument("--procs", type=csv, default=["1", "2", "4"], help="1,2,4")
    parser.add_argument("--accounts", type=int, default=8)
    parser.add_argument("--users", type=int, default=50, help="users per account")
    parser.add_argument("--messages-cpu", type=int, default=400)
    parser.add_argument("--messages-io", type=int, default=2000)
    parser.add_argument("--cpu-ms", type=float, default=50.0, help="CPU per cpu message")
    parser.add_argument(
        "--lease-ttl", type=float, default=15.0, help="as the CLI default (see README)"
    )
    parser.add_argument(
        "--cpu-concurrency", type=int, default=2, help="--max-concurrency for the cpu handler"
    )
    parser.add_argument(
        "--io-concurrency", type=int, default=16, help="--max-concurrency for the io handler"
    )
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=120.0, help="per measured run (s)")
    parser.add_argument("--logs", type=Path, default=None, help="keep the process logs here")
    parser.add_argument(
        "--node-arg", action="append", default=[], help="extra argument for every process"
    )
    parser.add_argument("--quick", action="store_true", help="100 cpu / 500 io messages")
    args = parser.parse_args()
    if args.quick:
        args.messages_cpu, args.messages_io = 100, 500
    bad_modes = set(args.mode) - {"leased", "fanout"}
    bad_handlers = set(args.handler) - {"cpu", "io"}
    if bad_modes or bad_handlers:
        parser.error(f"unknown mode/handler: {sorted(bad_modes | bad_handlers)}")
    procs = [int(p) for p in args.procs]
    concurrency = {"cpu": args.cpu_concurrency, "io": args.io_concurrency}
    cores = os.cpu_count() or 1
    print(f"os.cpu_count() = {cores}; CPU: {cpu_model()}")
    print(f"Python {platform.python_version()}, trio {trio.__version__}")
    print(
        f"{args.accounts} accounts x {args.users} users, {args.cpu_ms:g} ms CPU / "
        f"{1000 * IO_SECONDS:g} ms sleep per message, max_concurrency {concurrency}, "
        f"lease TTL {args.lease_ttl:g} s, {args.partitions} partitions"
    )
    print(
        "Note: the fake iLink server runs in this benchmark process and redis-server in its"
        f" own; both share the {cores} cores with the bot processes (their CPU is shown)."
    )
    print(flush=True)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        logs = args.logs or Path(tmp)
        logs.mkdir(parents=True, exist_ok=True)
        for mode in args.mode:
            for handler in args.handler:
                messages = args.messages_cpu if handler == "cpu" else args.messages_io
                for p in procs:
                    run_logs = logs / f"{mode}-{handler}-{p}"
                    run_logs.mkdir(exist_ok=True)
                    cfg = Config(
                        accounts=args.accounts,
                        users=args.users,
                        lease_ttl=args.lease_ttl,
                        max_concurrency=concurrency[handler],
                        node_args=tuple(args.node_arg),
                        partitions=args.partitions,
                        timeout=args.timeout,
                        cpu_ms=args.cpu_ms,
                        logs=run_logs,
                    )
                    t0 = time.perf_counter()
                    result = trio.run(one_run, mode, handler, p, messages, cfg)
                    results.append(result)
                    print(
                        f"  {mode} {handler} x{p}: {result.rate:.1f} msgs/s"
                        f" ({time.perf_counter() - t0:.0f} s incl. setup)",
                        file=sys.stderr,
                        flush=True,
                    )
    print("CPU s = CPU seconds used during the measured window; CPU busy = all of it / (wall")
    print("x cores); setup = start to warm-up answered; stop = SIGTERM until all exited.")
    print()
    print_table(results, cores)
    if any(c != 0 for r in results for c in r.exit_codes):
        raise SystemExit("FAILED: a process did not exit 0 after SIGTERM")


if __name__ == "__main__":
    main()
