"""Three ``weixin-trio run --redis`` processes share ten accounts; one is SIGKILLed.

Real loopback sockets, a real Redis and the real clock (never ``autojump_clock``). The
killed process's accounts must move to the others within the lease TTL, and across the
whole run no accepted message is lost, no reply is shown twice, and each user's
replies are shown in the order the user wrote.
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
from weixin_trio.testing import FakeAccount, FakeILinkServer

from ._conversation import Conversation, save_accounts

if TYPE_CHECKING:
    from tests._redis_server import RedisServer

HERE = Path(__file__).parent
TTL = 2.0


async def start_node(url: str, prefix: str, node: str, log: Path) -> trio.Process:
    args = ["run", "leased_bot:handle", "--redis", url, "--redis-prefix", prefix]
    args += ["--lease-ttl", str(TTL), "--node-id", node, "--no-pacing"]
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "weixin_trio", *args, "--max-concurrency", "8"],
        cwd=HERE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "WEIXIN_TRIO_TEST_LOG": str(log)},
    )
    assert proc.stdout is not None
    with trio.fail_after(20):
        seen = b""
        while b"running" not in seen:
            chunk = await proc.stdout.receive_some(200)
            assert chunk, f"{node} exited before it was ready"
            seen += chunk
    return proc


async def owners(leases: Leases, accounts: list[FakeAccount]) -> dict[str, str | None]:
    return {a.bot_id: await leases.owner(a.bot_id) for a in accounts}


async def wait_owned_by(
    leases: Leases, accounts: list[FakeAccount], nodes: set[str], *, timeout: float
) -> float:
    """Wait until every account is owned, by exactly ``nodes``, balanced; return the time."""
    start = trio.current_time()
    with trio.fail_after(timeout):
        while True:
            current = await owners(leases, accounts)
            counts = Counter(current.values())
            if set(counts) == nodes and max(counts.values()) - min(counts.values()) <= 1:
                return trio.current_time() - start
            await trio.sleep(0.05)


def in_transit(fake: FakeILinkServer, account: FakeAccount) -> set[int]:
    """Delivered messages whose batch cursor was never presented again."""
    return fake.in_transit_message_ids(account=account)


async def test_three_processes_share_ten_accounts_and_survive_a_sigkill(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    fake = FakeILinkServer(seed=3, hold=1.0)
    accounts = [fake.add_account() for _ in range(10)]
    prefix = f"mp{uuid.uuid4().hex[:8]}"
    log = tmp_path / "handled.log"
    talk = Conversation(fake, accounts, users=3)
    procs: dict[str, trio.Process] = {}
    try:
        with trio.fail_after(90):
            async with (
                trio.open_nursery() as nursery,
                open_redis_store(redis_server.url, prefix=prefix) as store,
            ):
                base_url = await nursery.start(fake.serve)
                await save_accounts(store, accounts, base_url)
                leases = Leases(store.client, prefix=prefix, node_id="test", ttl=TTL)
                for node in ("n0", "n1", "n2"):
                    procs[node] = await start_node(redis_server.url, prefix, node, log)
                await wait_owned_by(leases, accounts, {"n0", "n1", "n2"}, timeout=20)
                for _ in range(3):
                    talk.inject_round()
                    await trio.sleep(0.2)
                victim = "n1"
                victims = {k for k, v in (await owners(leases, accounts)).items() if v == victim}
                procs[victim].send_signal(signal.SIGKILL)
                await procs[victim].wait()
                for _ in range(3):
                    talk.inject_round()
                    await trio.sleep(0.1)
                moved_after = await wait_owned_by(leases, accounts, {"n0", "n2"}, timeout=20)
                for _ in range(2):
                    talk.inject_round()
                await wait_all_handled(fake, accounts, log)
                for node in ("n0", "n2"):
                    procs[node].send_signal(signal.SIGTERM)
                for node in ("n0", "n2"):
                    await procs[node].wait()
                    assert procs[node].returncode == 0
                nursery.cancel_scope.cancel()
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.kill()

    assert victims, "the killed process held no account"
    assert moved_after <= TTL * 1.5, f"accounts moved only after {moved_after:.1f}s"
    total_accepted = talk.check_replies(handled_ids(log))
    total = talk.total
    print(
        f"victims={len(victims)} moved_after={moved_after:.2f}s accepted={total_accepted}/{total}"
    )
    assert total_accepted >= 0.9 * total


def handled_ids(log: Path) -> set[int]:
    if not log.exists():
        return set()
    return {int(line.split()[1]) for line in log.read_text().splitlines() if line.strip()}


async def wait_all_handled(fake: FakeILinkServer, accounts: list[FakeAccount], log: Path) -> None:
    """Until every queue is drained and every acknowledged message was handled."""
    with trio.move_on_after(30):
        while True:
            if not _unfinished(fake, accounts, handled_ids(log)):
                break
            await trio.sleep(0.05)
    bad = _unfinished(fake, accounts, handled_ids(log))
    assert not bad
    await trio.sleep(1.5)  # one more poll presents the final cursors


def _unfinished(
    fake: FakeILinkServer, accounts: list[FakeAccount], handled: set[int]
) -> dict[str, str]:
    """Per account, what is not finished yet (empty when everything is)."""
    problems = {}
    for a in accounts:
        acked = fake.acknowledged_message_ids(account=a)
        unacked = set(fake.delivered_message_ids(account=a)) - in_transit(fake, a) - acked
        if a.queue or unacked or not acked <= handled:
            problems[a.bot_id] = (
                f"queued={len(a.queue)} unacked={sorted(unacked)}"
                f" unhandled={sorted(acked - handled)}"
            )
    return problems
