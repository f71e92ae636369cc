"""Fan-out across processes: one ``run --fanout`` poller, two ``worker``\\ s; one is SIGKILLed.

Real loopback sockets, a real Redis and the real clock (never ``autojump_clock``). The
poller publishes the messages of four accounts to eight partitions; the two workers
share the partitions. One worker is killed while messages flow: the survivor must take
its partitions over (handling what the dead worker had read but not acknowledged),
and across the whole run every message the poller accepted is handled, no reply is
shown twice, and each user's replies are shown in the order the user wrote.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from weixin_trio.redis import Leases, open_redis_store
from weixin_trio.redis._scripts import partition_keys
from weixin_trio.testing import FakeAccount, FakeILinkServer

from ._conversation import Conversation, save_accounts

if TYPE_CHECKING:
    from tests._redis_server import RedisServer
    from weixin_trio.redis import RedisStore

HERE = Path(__file__).parent
TTL = 2.0
PARTITIONS = 8


async def start(args: list[str], log: Path) -> trio.Process:
    """Start ``python -m weixin_trio ARGS`` in this directory (so handlers import)."""
    return await trio.lowlevel.open_process(
        [sys.executable, "-m", "weixin_trio", *args],
        cwd=HERE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "WEIXIN_TRIO_TEST_LOG": str(log)},
    )


async def wait_ready(proc: trio.Process, ready: bytes, name: str) -> None:
    assert proc.stdout is not None
    with trio.fail_after(20):
        seen = b""
        while ready not in seen:
            chunk = await proc.stdout.receive_some(200)
            assert chunk, f"{name} exited before it was ready"
            seen += chunk


def partition_leases(store: RedisStore) -> Leases:
    prefix = store.prefix
    return Leases(
        store.client,
        prefix=prefix,
        node_id="t",
        ttl=TTL,
        group="workers",
        key=lambda n: partition_keys(prefix, int(n))[2],
    )


async def partition_owners(leases: Leases) -> dict[int, str | None]:
    return {i: await leases.owner(str(i)) for i in range(PARTITIONS)}


async def wait_partitions_owned_by(leases: Leases, nodes: set[str], *, timeout: float) -> float:
    """Wait until every partition is owned, by exactly ``nodes``, balanced; return the time."""
    start_time = trio.current_time()
    with trio.fail_after(timeout):
        while True:
            counts = Counter((await partition_owners(leases)).values())
            if set(counts) == nodes and max(counts.values()) - min(counts.values()) <= 1:
                return trio.current_time() - start_time
            await trio.sleep(0.05)


async def wait_accounts_owned_by(
    store: RedisStore, accounts: list[FakeAccount], node: str, *, timeout: float
) -> None:
    leases = Leases(store.client, prefix=store.prefix, node_id="t", ttl=TTL)
    with trio.fail_after(timeout):
        while {await leases.owner(a.bot_id) for a in accounts} != {node}:  # noqa: ASYNC110
            await trio.sleep(0.05)


def handled_log(log: Path) -> list[tuple[int, int]]:
    """``(message id, worker pid)`` of every handler run, in order."""
    if not log.exists():
        return []
    rows = [line.split() for line in log.read_text().splitlines() if line.strip()]
    return [(int(mid), int(pid)) for _, mid, pid in rows]


def handled_ids(log: Path) -> set[int]:
    return {mid for mid, _ in handled_log(log)}


def unfinished(fake: FakeILinkServer, accounts: list[FakeAccount], handled: set[int]) -> list[str]:
    """Per account, what is not finished yet (empty when everything is).

    The poller never dies, so every delivered batch's cursor must come back (nothing
    stays in transit) and every acknowledged message must have reached a handler.
    """
    problems = []
    for a in accounts:
        acked = fake.acknowledged_message_ids(account=a)
        unacked = set(fake.delivered_message_ids(account=a)) - acked
        if a.queue or unacked or not acked <= handled:
            problems.append(
                f"{a.bot_id}: queued={len(a.queue)} unacked={sorted(unacked)}"
                f" unhandled={sorted(acked - handled)}"
            )
    return problems


async def wait_all_handled(fake: FakeILinkServer, accounts: list[FakeAccount], log: Path) -> None:
    with trio.move_on_after(15):
        while unfinished(fake, accounts, handled_ids(log)):  # noqa: ASYNC110 - other processes
            await trio.sleep(0.05)
    assert not unfinished(fake, accounts, handled_ids(log))


async def test_a_poller_and_two_worker_processes_survive_a_worker_sigkill(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    fake = FakeILinkServer(seed=5, hold=1.0)
    accounts = [fake.add_account() for _ in range(4)]
    prefix = f"fo{uuid.uuid4().hex[:8]}"
    log = tmp_path / "handled.log"
    talk = Conversation(fake, accounts, users=4)

    common = ["--redis", redis_server.url, "--redis-prefix", prefix, "--partitions"]
    common += [str(PARTITIONS), "--lease-ttl", str(TTL), "--no-pacing"]
    procs: dict[str, trio.Process] = {}
    try:
        with trio.fail_after(60):
            async with (
                trio.open_nursery() as nursery,
                open_redis_store(redis_server.url, prefix=prefix) as store,
            ):
                base_url = await nursery.start(fake.serve)
                await save_accounts(store, accounts, base_url)
                procs["p0"] = await start(["run", "--fanout", *common, "--node-id", "p0"], log)
                for node in ("w1", "w2"):
                    args = ["worker", "fanout_bot:handle", *common, "--node-id", node]
                    procs[node] = await start(args, log)
                await wait_ready(procs["p0"], b"running", "p0")
                for node in ("w1", "w2"):
                    await wait_ready(procs[node], b"worker handling", node)
                leases = partition_leases(store)
                await wait_partitions_owned_by(leases, {"w1", "w2"}, timeout=15)
                await wait_accounts_owned_by(store, accounts, "p0", timeout=15)

                victim = procs["w1"]
                for _ in range(3):
                    await trio.sleep(0.15)
                    talk.inject_round()
                with trio.fail_after(10):  # the victim has been working
                    while victim.pid not in {pid for _, pid in handled_log(log)}:  # noqa: ASYNC110
                        await trio.sleep(0.02)
                talk.inject_round()
                await trio.sleep(0.03)  # kill while the round is being handled
                victim_partitions = {
                    p for p, owner in (await partition_owners(leases)).items() if owner == "w1"
                }
                victim.send_signal(signal.SIGKILL)
                await victim.wait()
                killed_at = trio.current_time()
                for _ in range(4):
                    talk.inject_round()
                    await trio.sleep(0.15)
                await wait_partitions_owned_by(leases, {"w2"}, timeout=3 * TTL)
                moved_after = trio.current_time() - killed_at
                for _ in range(2):
                    talk.inject_round()
                await wait_all_handled(fake, accounts, log)
                await trio.sleep(0.3)  # a late duplicate reply would show up now
                for node in ("p0", "w2"):
                    procs[node].send_signal(signal.SIGTERM)
                with trio.fail_after(15):
                    for node in ("p0", "w2"):
                        await procs[node].wait()
                for node in ("p0", "w2"):
                    assert procs[node].returncode == 0, f"{node} exited {procs[node].returncode}"
                nursery.cancel_scope.cancel()
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.kill()
                with trio.move_on_after(5) as cleanup:
                    cleanup.shield = True
                    await proc.wait()

    assert victim_partitions, "the killed worker held no partition"
    assert moved_after <= 3 * TTL, f"partitions moved only {moved_after:.1f}s after the kill"
    pids = {pid for _, pid in handled_log(log)}
    assert pids == {procs["w1"].pid, procs["w2"].pid}
    total_accepted = talk.check_replies(handled_ids(log))
    assert total_accepted == talk.total  # the poller never died: nothing was in transit
    rerun = sum(1 for n in Counter(mid for mid, _ in handled_log(log)).values() if n > 1)
    print(
        f"victim partitions={sorted(victim_partitions)} moved_after={moved_after:.2f}s"
        f" handled twice={rerun}"
    )
