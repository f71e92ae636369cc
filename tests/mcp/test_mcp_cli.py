"""``weixin-trio mcp`` end to end: the ``mcp`` SDK's own client over stdio.

Real processes (``fake-server``, ``login``, ``mcp``) on loopback and the real clock,
so every wait is bounded by a real-time ``trio.fail_after``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import pytest
import trio

from mcp import ClientSession, StdioServerParameters, stdio_client
from weixin_trio._mcp.server import TOOLS

from .._helpers import SRC, cli_login, fake_http as http, fake_server_process

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow
PY = sys.executable


@pytest.fixture
def served_fake() -> Iterator[str]:
    with fake_server_process() as info:
        yield info["base_url"]


def _structured(result: Any) -> Any:
    assert not result.is_error, result.content
    value = result.structured_content
    return value["result"] if isinstance(value, dict) and set(value) == {"result"} else value


async def test_an_mcp_client_receives_a_message_and_answers(
    served_fake: str, tmp_path: Path
) -> None:
    base = served_fake
    state = str(tmp_path / "state")
    with trio.fail_after(60):
        await cli_login(base, state)
        params = StdioServerParameters(
            command=PY,
            args=["-m", "weixin_trio", "mcp", "--state-dir", state, "--no-pacing"],
            env={"PYTHONPATH": str(SRC)},
        )
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = {tool.name for tool in (await session.list_tools()).tools}
            assert set(TOOLS) <= tools
            assert _structured(await session.call_tool("wait_for_message", {"timeout": 0})) == []

            await trio.to_thread.run_sync(
                http, base, "/_fake/inject", {"user": "ann@im.wechat", "text": "hello agent"}
            )
            got = _structured(await session.call_tool("wait_for_message", {"timeout": 20}))
            assert [(m["user"], m["text"]) for m in got] == [("ann@im.wechat", "hello agent")]
            assert got[0]["message_id"] > 0

            sent = _structured(
                await session.call_tool("send_text", {"user": "ann@im.wechat", "text": "hi ann"})
            )
            assert sent["client_id"]
            outbox = await trio.to_thread.run_sync(http, base, "/_fake/sent")
            assert [(s["to_user_id"], s["text"]) for s in outbox] == [("ann@im.wechat", "hi ann")]

            window = _structured(await session.call_tool("send_window", {"user": "ann@im.wechat"}))
            assert window["is_open"] is True
            conversations = _structured(await session.call_tool("list_conversations", {}))
            assert [(c["user"], c["count"]) for c in conversations] == [("ann@im.wechat", 1)]
            stored = _structured(
                await session.call_tool("read_messages", {"user": "ann@im.wechat"})
            )
            assert [m["text"] for m in stored] == ["hello agent"]
            resource = await session.read_resource("weixin://conversations/ann@im.wechat")
            assert "hello agent" in resource.contents[0].text  # type: ignore[union-attr]
