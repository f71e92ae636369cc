"""``weixin-trio pair approve`` while ``weixin-trio run`` serves the same state dir.

The bot (a subprocess holding the journal's writer lock) sends a stranger a pairing
code; ``pair approve`` (in this process) allows the user; the bot lets the user's next
message through without a restart. The owner who scanned the QR code passes from the
start.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from weixin_trio._cli import main

if TYPE_CHECKING:
    from collections.abc import Iterator

PY = sys.executable
SRC = str(Path(__file__).parents[2] / "src")
BOT = """
import weixin_trio as wx
from weixin_trio.access import AccessControl

access = AccessControl("pairing", pairing_reply="code {code}")

async def echo(msg: wx.Message) -> None:
    await msg.reply("echo: " + msg.text)

handler = access.guard(echo)
"""


def http(base_url: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base_url + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_for_sent(base: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while len(sent := http(base, "/_fake/sent")) < count:
        assert time.monotonic() < deadline, f"timed out waiting for {count} sends: {sent}"
        time.sleep(0.05)
    return list(sent)


@pytest.fixture
def served_fake() -> Iterator[dict[str, str]]:
    proc = subprocess.Popen(
        [PY, "-m", "weixin_trio", "fake-server", "--port", "0", "--auto-confirm"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    assert proc.stdout is not None
    with proc:
        yield json.loads(proc.stdout.readline())
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0


def test_approve_while_the_bot_runs(
    served_fake: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, state = served_fake["base_url"], str(tmp_path / "state")
    assert main(["login", "--base-url", base, "--state-dir", state]) == 0
    account_file = next((tmp_path / "state").glob("*/account.json"))
    owner = json.loads(account_file.read_text())["user_id"]
    assert owner
    (tmp_path / "bot.py").write_text(BOT)
    proc = subprocess.Popen(
        [PY, "-m", "weixin_trio", "run", "bot:handler", "--state-dir", state],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    with proc:
        assert proc.stdout is not None
        assert "running 1 account" in proc.stdout.readline()
        http(base, "/_fake/inject", {"user": owner, "text": "i am the owner"})
        assert wait_for_sent(base, 1)[0]["text"] == "echo: i am the owner"

        stranger = "stranger@im.wechat"
        http(base, "/_fake/inject", {"user": stranger, "text": "hi"})
        sent = wait_for_sent(base, 2)
        match = re.fullmatch(r"code ([A-Z2-9]{6})", sent[1]["text"])
        assert match, sent
        capsys.readouterr()
        assert main(["pair", "list", "--state-dir", state]) == 0
        assert match.group(1) in capsys.readouterr().out
        assert main(["pair", "approve", match.group(1), "--state-dir", state]) == 0

        http(base, "/_fake/inject", {"user": stranger, "text": "let me in"})
        sent = wait_for_sent(base, 3)
        assert [s["text"] for s in sent[1:]] == [f"code {match.group(1)}", "echo: let me in"]
        assert main(["pair", "revoke", stranger, "--state-dir", state]) == 0
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
