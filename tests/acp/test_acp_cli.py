"""``weixin-trio acp`` end to end: fake-server, login and the bridge as real processes.

Real processes on loopback and the real clock, so every wait is bounded by a real-time
``trio.fail_after``.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trio

from .._helpers import (
    SRC,
    cli_login,
    cli_process,
    fake_http as http,
    fake_server_process,
    read_until,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow
PY = sys.executable
AGENT = str(Path(__file__).with_name("fake_agent.py"))


@pytest.fixture
def served_fake() -> Iterator[str]:
    with fake_server_process() as info:
        yield info["base_url"]


async def test_the_bridge_answers_an_injected_message(served_fake: str, tmp_path: Path) -> None:
    base = served_fake
    state = str(tmp_path / "state")
    with trio.fail_after(60):
        await cli_login(base, state)
        args = ("acp", "--state-dir", state, "--no-pacing", "-v", "--", PY, AGENT)
        async with cli_process(tmp_path, *args) as bridge:
            await read_until(bridge.stderr, b"acp: account")
            await trio.to_thread.run_sync(
                http, base, "/_fake/inject", {"user": "ann@im.wechat", "text": "hello"}
            )
            sent: list[dict[str, str]] = []
            while not any(s["text"] == "The end." for s in sent):
                await trio.sleep(0.1)
                sent = await trio.to_thread.run_sync(http, base, "/_fake/sent")
            bridge.send_signal(signal.SIGTERM)
            assert await bridge.wait() == 0
    assert [s["text"] for s in sent] == [
        "First paragraph.",
        "Second **bold** paragraph.",
        "The end.",
    ]
    assert list((tmp_path / "state" / "acp").glob("*/*/fake_agent_sessions.json"))


async def test_acp_help_works() -> None:
    with trio.fail_after(30):
        done = await trio.run_process(
            [PY, "-m", "weixin_trio", "acp", "--help"],
            capture_stdout=True,
            env={**os.environ, "PYTHONPATH": str(SRC)},
        )
    assert b"--approve" in done.stdout
