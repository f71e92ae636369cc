"""``weixin-trio mcp``: ``send_file`` (the file really arrives) and ``--redis``.

The fake iLink server runs in this test's process on a loopback port (so the test can
read what it decrypted from the CDN upload); ``weixin-trio mcp`` is a real subprocess
driven by the ``mcp`` SDK's ``ClientSession`` over stdio. Real clock: every wait is
bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import os
import uuid
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest
import trio

from mcp import ClientSession, StdioServerParameters, stdio_client
from weixin_trio import FileStore
from weixin_trio.testing import FakeILinkServer

from .._helpers import SRC
from .test_mcp_cli import PY, _structured

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tests._redis_server import RedisServer

pytestmark = pytest.mark.slow
USER = "ann@im.wechat"


@asynccontextmanager
async def mcp_session(*args: str) -> AsyncIterator[ClientSession]:
    """``weixin-trio mcp ARGS --no-pacing`` as a subprocess, with an initialized session."""
    params = StdioServerParameters(
        command=PY,
        args=["-m", "weixin_trio", "mcp", *args, "--no-pacing"],
        env={"PYTHONPATH": str(SRC), "PATH": os.environ.get("PATH", "")},
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def served(fake: FakeILinkServer) -> AsyncIterator[str]:
    async with trio.open_nursery() as nursery:
        yield await nursery.start(fake.serve)
        nursery.cancel_scope.cancel()


async def wait_for(session: ClientSession, timeout: float = 20) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = _structured(
        await session.call_tool("wait_for_message", {"timeout": timeout})
    )
    return result


async def test_send_file_uploads_the_file_and_the_user_gets_it(tmp_path: Path) -> None:
    fake = FakeILinkServer(seed=5, hold=1.0)
    state = tmp_path / "state"
    report = tmp_path / "report.pdf"
    payload = os.urandom(70_000) + "报告".encode()
    report.write_bytes(payload)
    with trio.fail_after(60):
        async with served(fake) as base_url:
            async with FileStore(state) as store:
                data = {"token": fake.token, "base_url": base_url, "created_at": 0.0}
                await store.save_account(fake.default.bot_id, data)
            cdn = ["--cdn-base-url", fake.cdn_base_url]
            async with mcp_session("--state-dir", str(state), *cdn) as session:
                fake.inject_text(USER, "send me the report")
                assert [m["text"] for m in await wait_for(session)] == ["send me the report"]
                sent = _structured(
                    await session.call_tool("send_file", {"user": USER, "path": str(report)})
                )
                assert sent["client_id"]
                missing = await session.call_tool(
                    "send_file", {"user": USER, "path": str(tmp_path / "nope.pdf")}
                )
                assert missing.is_error
                assert "no such file" in str(missing.content)
                stranger = await session.call_tool(
                    "send_text", {"user": "nobody@im.wechat", "text": "hi"}
                )
                assert stranger.is_error
                assert "the user must message the bot first" in str(stranger.content)
    media = fake.sent_media(USER)
    assert len(media) == 1
    item_type, content, item = media[0]
    assert item_type == 4  # a file
    assert content == payload  # decrypted by the fake from the CDN upload
    assert item["file_item"]["file_name"] == "report.pdf"


async def test_mcp_on_redis_keeps_its_inbox_across_a_restart(redis_server: RedisServer) -> None:
    from weixin_trio.redis import Leases, open_redis_store

    fake = FakeILinkServer(seed=6, hold=1.0)
    prefix = f"mcp{uuid.uuid4().hex[:8]}"
    redis = ["--redis", redis_server.url, "--redis-prefix", prefix]
    with trio.fail_after(90):
        async with served(fake) as base_url:
            async with open_redis_store(redis_server.url, prefix=prefix) as store:
                data = {"token": fake.token, "base_url": base_url, "created_at": 0.0}
                await store.save_account(fake.default.bot_id, data)
            async with mcp_session(*redis) as session:
                fake.inject_text(USER, "first")
                assert [m["text"] for m in await wait_for(session)] == ["first"]
                await session.call_tool("send_text", {"user": USER, "text": "got it"})
                second = await trio.run_process(
                    [PY, "-m", "weixin_trio", "mcp", *redis],
                    stdin=b"",
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                    env={**os.environ, "PYTHONPATH": str(SRC)},
                )
                assert second.returncode != 0  # one poller per account, as with a FileStore
                assert b"is served by mcp-" in second.stderr, second.stderr
                fake.inject_text(USER, "second")  # arrives, nobody waits for it yet
                await fake.wait_for_sent(1)
                with trio.fail_after(20):
                    while not _structured(await session.call_tool("read_messages", {"since": 1})):  # noqa: ASYNC110 - another process
                        await trio.sleep(0.1)
            assert fake.sent_texts(USER) == ["got it"]
            async with open_redis_store(redis_server.url, prefix=prefix) as store:
                leases = Leases(store.client, prefix=prefix, node_id="test", ttl=15)
                assert await leases.owner(fake.default.bot_id) is None  # released at exit
            async with mcp_session(*redis) as session:  # a restart: the inbox is in Redis
                assert [m["text"] for m in await wait_for(session, 0)] == ["second"]
                stored = _structured(await session.call_tool("read_messages", {"user": USER}))
                assert [m["text"] for m in stored] == ["first", "second"]
                window = _structured(await session.call_tool("send_window", {"user": USER}))
                assert window["is_open"] is True
