"""The ``weixin-trio`` command line, through its entry points.

Commands that talk to a server use ``weixin-trio fake-server`` in a subprocess (real
loopback, real clock); ``run`` is exercised in a subprocess to send it real signals.
"""

from __future__ import annotations

import json
import os
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
HANDLER = """
import weixin_trio as wx

async def echo(msg: wx.Message) -> None:
    await msg.reply("cli echo: " + msg.text)
"""


def http(base_url: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base_url + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def served_fake() -> Iterator[dict[str, str]]:
    proc = subprocess.Popen(
        [PY, "-m", "weixin_trio", "fake-server", "--port", "0", "--auto-confirm"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    with proc:
        info = json.loads(proc.stdout.readline())
        yield info
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_demo_exits_zero_and_shows_replies() -> None:
    out = subprocess.run(
        [PY, "-m", "weixin_trio", "demo"], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "login status: confirmed" in out.stdout
    assert out.stdout.count("bot -> ") == 9
    assert "demo finished: OK" in out.stdout


def test_fake_server_control_surface(served_fake: dict[str, str]) -> None:
    base = served_fake["base_url"]
    assert base.startswith("http://127.0.0.1:")
    assert served_fake["token"]
    assert http(base, "/_fake/inject", {"user": "a@im.wechat", "text": "hi"})["message_id"] > 0
    assert http(base, "/_fake/sent") == []


def test_login_accounts_run_send_status(
    served_fake: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, state = served_fake["base_url"], str(tmp_path / "state")
    assert main(["login", "--base-url", base, "--state-dir", state]) == 0
    out = capsys.readouterr().out
    assert "Scan with WeChat" in out
    assert "Logged in as" in out
    account_file = next((tmp_path / "state").glob("*/account.json"))
    assert oct(account_file.stat().st_mode & 0o777) == "0o600"
    assert main(["accounts", "--state-dir", state]) == 0
    assert "@im.bot" in capsys.readouterr().out

    (tmp_path / "bot_handlers.py").write_text(HANDLER)
    proc = subprocess.Popen(
        [PY, "-m", "weixin_trio", "run", "bot_handlers:echo", "--state-dir", state],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
    )
    with proc:
        assert proc.stdout is not None
        assert "running 1 account" in proc.stdout.readline()
        token = json.loads(account_file.read_text())["token"]
        del token
        http(base, "/_fake/inject", {"user": "carol@im.wechat", "text": "ping"})
        wait_until(lambda: len(http(base, "/_fake/sent")) == 1)
        assert http(base, "/_fake/sent")[0]["text"] == "cli echo: ping"
        wait_until(lambda: next((tmp_path / "state").glob("*/status.json"), None) is not None)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert time.monotonic() - start < 5
    assert main(["status", "--state-dir", state]) == 0
    assert "ago" in capsys.readouterr().out
    # the context token was journaled by `run`, so a proactive send works now
    assert main(["send", "carol@im.wechat", "hello from the cli", "--state-dir", state]) == 0
    assert "sent" in capsys.readouterr().out
    file = tmp_path / "report.txt"
    file.write_text("numbers")
    cdn = ["--cdn-base-url", served_fake["cdn_base_url"]]
    assert main(["send", "carol@im.wechat", "--file", str(file), "--state-dir", state]) == 1
    assert "not in the allowed hosts" in capsys.readouterr().err  # the fake's CDN is not WeChat's
    assert main(["send", "carol@im.wechat", "--file", str(file), "--state-dir", state, *cdn]) == 0
    sent = http(base, "/_fake/sent")
    assert [s["text"] for s in sent[:2]] == ["cli echo: ping", "hello from the cli"]
    assert sent[2]["items"][0]["file_item"]["file_name"] == "report.txt"
    # nobody ever wrote from this user: one clear line, exit 1
    assert main(["send", "dave@im.wechat", "hi", "--state-dir", state]) == 1
    assert "no context token" in capsys.readouterr().err


def test_bad_input_gives_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = str(tmp_path / "state")
    assert main(["accounts", "remove", "ghost@im.bot", "--state-dir", state]) == 1
    assert capsys.readouterr().err.strip() == "weixin-trio: error: unknown account: ghost@im.bot"
    assert main(["run", "no_such_module:handler", "--state-dir", state]) == 1
    assert "cannot import no_such_module" in capsys.readouterr().err
    assert main(["run", "nocolon", "--state-dir", state]) == 1
    assert "MODULE:HANDLER" in capsys.readouterr().err
    corrupt = tmp_path / "state" / "x-im-bot"
    corrupt.mkdir(parents=True)
    (corrupt / "account.json").write_text("{not json")
    assert main(["accounts", "--state-dir", state]) == 1
    err = capsys.readouterr().err
    assert str(corrupt / "account.json") in err
    assert "Traceback" not in err
    assert (corrupt / "account.json").read_text() == "{not json"  # never overwritten
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["send", "u", "hi", "--state-dir", str(blocker / "sub")]) == 1
    with pytest.raises(Exception, match="corrupt account file"):
        main(["-v", "accounts", "--state-dir", state])


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2


def test_global_options_work_before_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Regression: the top-level defaults once overwrote an option given before the command.
    state = tmp_path / "state"
    assert main(["--state-dir", str(state), "accounts"]) == 0
    assert capsys.readouterr().out.strip().startswith(f"no accounts in {state};")
    assert main(["--state-dir", str(state), "--base-url", "http://x.invalid", "status"]) == 0
    assert capsys.readouterr().out.strip() == f"no accounts in {state}"


@pytest.mark.parametrize("command", [["run", "bot:handle"], ["worker", "bot:handle"]])
def test_run_and_worker_pass_their_timeouts_to_the_monitors(command: list[str]) -> None:
    from weixin_trio._cli import _parser
    from weixin_trio._cli_commands import _monitor_options

    args = _parser().parse_args(
        [*command, "--max-concurrency", "4", "--drain-timeout", "2.5", "--handler-timeout", "7"]
    )
    assert _monitor_options(args) == {
        "max_concurrency": 4,
        "drain_timeout": 2.5,
        "handler_timeout": 7.0,
    }
    defaults = _monitor_options(_parser().parse_args(command))
    assert defaults == {"max_concurrency": 16, "drain_timeout": 10.0, "handler_timeout": None}
