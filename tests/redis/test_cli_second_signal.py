"""A second signal cuts a hung drain short on Redis too: ``run --redis`` and ``worker``.

Real processes, loopback, a real Redis and the real clock, under ``trio.fail_after``.
Each handler hangs for ever; the first SIGINT starts a 30 s drain, the second must stop
the process within seconds with exit code 130.
"""

from __future__ import annotations

import signal
import uuid
from typing import TYPE_CHECKING

import pytest
import trio

from weixin_trio.redis import open_redis_store
from weixin_trio.testing import FakeILinkServer

from .._helpers import cli_process, read_until
from ._conversation import save_accounts

if TYPE_CHECKING:
    from pathlib import Path

    from tests._redis_server import RedisServer

HUNG = """
import trio


async def forever(msg):
    print("handling", msg.text, flush=True)
    await trio.sleep_forever()
"""


async def cut_short(proc: trio.Process) -> None:
    """SIGINT (a 30 s drain starts), SIGINT again: exit 130 within a few seconds."""
    proc.send_signal(signal.SIGINT)
    await trio.sleep(0.5)
    assert proc.returncode is None  # draining, and the handler hangs
    start = trio.current_time()
    proc.send_signal(signal.SIGINT)
    with trio.fail_after(5):
        assert await proc.wait() == 130
    assert trio.current_time() - start < 4
    assert proc.stderr is not None
    err = (await proc.stderr.receive_some(65536)).decode()
    assert "Traceback" not in err
    assert "weixin-trio: interrupted: stopping now, without a drain" in err


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["leased", "fanout"])
async def test_a_second_signal_cuts_a_hung_drain_with_redis(
    redis_server: RedisServer, tmp_path: Path, mode: str
) -> None:
    (tmp_path / "hung_bot.py").write_text(HUNG)
    fake = FakeILinkServer(hold=1.0)
    prefix = f"ss{uuid.uuid4().hex[:8]}"
    common = ["--redis", redis_server.url, "--redis-prefix", prefix, "--drain-timeout", "30"]
    common += ["--lease-ttl", "3", "--no-pacing"]
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            base_url = await nursery.start(fake.serve)
            async with open_redis_store(redis_server.url, prefix=prefix) as store:
                await save_accounts(store, [fake.default], base_url)
            if mode == "leased":
                async with cli_process(tmp_path, "run", "hung_bot:forever", *common) as bot:
                    await read_until(bot.stdout, b"running a leased share")
                    fake.inject_text("carol@im.wechat", "ping")
                    await read_until(bot.stdout, b"handling ping")
                    await cut_short(bot)
            else:
                async with (
                    cli_process(tmp_path, "run", "--fanout", *common) as poller,
                    cli_process(tmp_path, "worker", "hung_bot:forever", *common) as worker,
                ):
                    await read_until(poller.stdout, b"running a leased share")
                    await read_until(worker.stdout, b"worker handling")
                    fake.inject_text("carol@im.wechat", "ping")
                    await read_until(worker.stdout, b"handling ping")
                    await cut_short(worker)
                    poller.send_signal(signal.SIGINT)  # nothing runs there: a plain stop
                    with trio.fail_after(15):
                        assert await poller.wait() == 0
            nursery.cancel_scope.cancel()
