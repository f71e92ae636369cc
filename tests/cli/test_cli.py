"""The ``weixin-trio`` command line, through its entry points.

Commands that talk to a server use ``weixin-trio fake-server`` in a subprocess (real
loopback, real clock); ``run`` is exercised in a subprocess to send it real signals.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trio

from weixin_trio._cli import main

from .._helpers import cli_process, fake_http as http, fake_server_process, read_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from contextlib import AbstractAsyncContextManager

    from weixin_trio.testing import FakeILinkServer

PY = sys.executable
HANDLER = """
import weixin_trio as wx

async def echo(msg: wx.Message) -> None:
    await msg.reply("cli echo: " + msg.text)
"""


@pytest.fixture
def served_fake() -> Iterator[dict[str, str]]:
    with fake_server_process() as info:
        yield info


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
    # readable: no raw QrCode(...) repr, and "scanned" where the wire says "scaned"
    assert "Scan this QR code with WeChat (1/3)" in out.stdout
    assert "QrCode(" not in out.stdout
    assert "login status: scanned" in out.stdout
    assert "scaned" not in out.stdout
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
    assert "Scan this QR code with WeChat" in out
    assert "QrCode(" not in out
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
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")},
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
    err = capsys.readouterr().err  # the fake's CDN is not WeChat's: the fix is named
    assert (
        "'127.0.0.1' is not in the allowed hosts: allow it with --allow-cdn-host 127.0.0.1" in err
    )
    allow = ["--allow-cdn-host", "127.0.0.1"]
    assert main(["send", "carol@im.wechat", "--file", str(file), "--state-dir", state, *allow]) == 0
    assert main(["send", "carol@im.wechat", "--file", str(file), "--state-dir", state, *cdn]) == 0
    sent = http(base, "/_fake/sent")
    assert [s["text"] for s in sent[:2]] == ["cli echo: ping", "hello from the cli"]
    assert sent[2]["items"][0]["file_item"]["file_name"] == "report.txt"
    assert sent[3]["items"][0]["file_item"]["file_name"] == "report.txt"
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
    with pytest.raises(SystemExit) as usage:
        main(["run", "nocolon", "--state-dir", state])
    assert usage.value.code == 2
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
    with pytest.raises(SystemExit) as usage:
        main(["send", "u", "hi", "--state-dir", str(blocker / "sub")])
    assert usage.value.code == 2
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
    from weixin_trio._cli.app import _parser
    from weixin_trio._cli.serve import _monitor_options

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


# --- usage errors: every mistake exits 2 with the usage line -----------------------------

BAD_NUMBERS: dict[tuple[str, str], list[str]] = {
    ("login", "--timeout"): ["0", "-1", "nan", "inf", "soon"],
    ("run", "--max-concurrency"): ["0", "-1", "1.5", "many"],
    ("run", "--drain-timeout"): ["-1", "nan", "inf", "-inf", "x"],
    ("run", "--handler-timeout"): ["0", "-0.5", "nan", "inf"],
    ("run", "--lease-ttl"): ["0", "-3", "nan", "inf"],
    ("run", "--partitions"): ["0", "-1", "2.5"],
    ("worker", "--max-concurrency"): ["0", "-1"],
    ("worker", "--drain-timeout"): ["-1", "nan"],
    ("worker", "--handler-timeout"): ["0", "inf"],
    ("worker", "--lease-ttl"): ["0", "-1"],
    ("worker", "--partitions"): ["0", "-4"],
    ("run", "--metrics-port"): ["65536", "-1", "http"],
    ("worker", "--metrics-port"): ["70000", "1.5"],
    ("demo", "--users"): ["0", "-1", "1001", "three"],
    ("demo", "--messages"): ["0", "-2", "1001"],
    ("fake-server", "--port"): ["99999", "65536", "-1", "http"],
    ("playground", "--port"): ["65536", "-1", "eighty"],
}
COMMAND_ARGS = {"run": ["bot:handle"], "worker": ["bot:handle", "--redis", "redis://h"]}


def numeric_options() -> set[tuple[str, str]]:
    """Every option of every command whose value is parsed as a number."""
    from weixin_trio._cli.app import _parser

    found = set()
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command, parser in sub.choices.items():
        for action in parser._actions:
            kind = getattr(action.type, "__qualname__", "")
            if action.type in (int, float) or kind.startswith(("_whole", "_seconds")):
                found.add((command, action.option_strings[-1]))
    return found


def test_every_numeric_option_is_covered() -> None:
    assert numeric_options() == set(BAD_NUMBERS)


@pytest.mark.parametrize(
    ("command", "option", "value"),
    [(c, o, v) for (c, o), values in BAD_NUMBERS.items() for v in values],
)
def test_bad_numbers_are_usage_errors(
    command: str, option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, *COMMAND_ARGS.get(command, []), f"{option}={value}"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: weixin-trio")
    assert f"argument {option}:" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["fake-server", "--port", "0"],
        ["fake-server", "--port", "65535"],
        ["run", "m:h", "--max-concurrency", "1", "--drain-timeout", "0"],
        ["run", "m:h", "--handler-timeout", "0.5", "--lease-ttl", "1e-3", "--partitions", "1"],
        ["demo", "--users", "1000", "--messages", "1"],
        ["login", "--timeout", "0.1"],
    ],
)
def test_edge_numbers_are_accepted(argv: list[str]) -> None:
    from weixin_trio._cli.app import _parser

    _parser().parse_args(argv)


@pytest.mark.parametrize(
    "url",
    [
        "foo",
        "localhost:6379",
        "redis://",
        "redis://:6379/0",
        "redis://user:hunter2@host:99999",
        "redis://user:hunter2@host:0",
        "redis://host/not-a-db",
        "http://host",
        "unix://",
    ],
)
def test_bad_redis_urls_are_usage_errors(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["status", "--redis", url])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --redis:" in err
    assert "AssertionError" not in err
    assert "hunter2" not in err  # a password is never echoed


def test_a_bad_redis_url_from_the_environment_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WEIXIN_TRIO_REDIS_URL", "redis://:pw@")
    with pytest.raises(SystemExit) as info:
        main(["status"])
    assert info.value.code == 2
    assert "WEIXIN_TRIO_REDIS_URL" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["file", "under-file"])
@pytest.mark.parametrize("command", [["status"], ["accounts"], ["run", "m:h"], ["login"]])
def test_a_state_dir_that_is_a_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, command: list[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    state = blocker if where == "file" else blocker / "state"
    with pytest.raises(SystemExit) as info:
        main([*command, "--state-dir", str(state)])
    assert info.value.code == 2
    assert "not a directory" in capsys.readouterr().err
    assert blocker.read_text() == "x"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["accounts", "remove"], "needs an ACCOUNT_ID"),
        (["accounts", "list", "x@im.bot"], "takes no ACCOUNT_ID"),
        (["send", "u@im.wechat"], "either TEXT or --file"),
        (["send", "u@im.wechat", "hi", "--file", "f.txt"], "either TEXT or --file"),
        (["worker", "m:h"], "needs --redis"),
        (["run", "--fanout"], "--fanout needs --redis"),
        (["run"], "MODULE:HANDLER, or --fanout"),
        (["run", "m:h", "--fanout", "--redis", "redis://h"], "MODULE:HANDLER, or --fanout"),
        (["run", "m:h", "--account", "a", "--redis", "redis://h"], "--account cannot"),
        (["run", "nocolon"], "MODULE:HANDLER"),
        (["worker", ":h", "--redis", "redis://h"], "MODULE:HANDLER"),
        (["--base-url", "ftp://x", "status"], "not an http"),
        (["send", "u", "hi", "--cdn-base-url", "nohost"], "not an http"),
        (["status", "--redis-prefix", " "], "must not be empty"),
    ],
)
def test_usage_mistakes_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "usage: weixin-trio" in err


# --- stop means stop: a second signal cuts the drain short -------------------------------

HUNG = """
import time

import trio

import weixin_trio as wx


async def forever(msg: wx.Message) -> None:
    print("handling", msg.text, flush=True)
    await trio.sleep_forever()


async def stuck(msg: wx.Message) -> None:
    print("handling", msg.text, flush=True)
    await trio.to_thread.run_sync(time.sleep, 60)  # cannot be cancelled


async def echo(msg: wx.Message) -> None:
    await msg.reply("echo " + msg.text)
    print("handled", msg.text, flush=True)
"""


def _run(tmp_path: Path, handler: str, *extra: str) -> AbstractAsyncContextManager[trio.Process]:
    """``weixin-trio run hung_bot:HANDLER`` in a subprocess, killed if the test fails."""
    return cli_process(tmp_path, "run", f"hung_bot:{handler}", "--state-dir", "state", *extra)


async def _login(tmp_path: Path, base_url: str) -> None:
    result = await trio.run_process(
        [PY, "-m", "weixin_trio", "login", "--base-url", base_url, "--state-dir", "state"],
        cwd=tmp_path,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


async def _until_handling(fake: FakeILinkServer, proc: trio.Process, text: str) -> None:
    assert proc.stdout is not None
    seen = bytearray()
    await read_until(proc.stdout, b"running 1 account", seen)
    fake.inject_text("carol@im.wechat", text)
    await read_until(proc.stdout, f"handling {text}".encode(), seen)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_a_second_signal_stops_a_hung_drain_at_once(
    tmp_path: Path, signum: signal.Signals
) -> None:
    from weixin_trio.testing import FakeILinkServer

    (tmp_path / "hung_bot.py").write_text(HUNG)
    fake = FakeILinkServer(hold=1.0)
    fake.qr.auto_confirm = True
    with trio.fail_after(40):  # real time: the drain below would take 30 s
        async with trio.open_nursery() as nursery:
            base_url = await nursery.start(fake.serve)
            await _login(tmp_path, base_url)
            async with _run(tmp_path, "forever", "--drain-timeout", "30") as proc:
                await _until_handling(fake, proc, "ping")
                proc.send_signal(signum)
                await trio.sleep(0.5)  # the drain is under way (and hangs)
                assert proc.returncode is None
                start = trio.current_time()
                proc.send_signal(signum)
                with trio.fail_after(5):
                    assert await proc.wait() == 130
                assert trio.current_time() - start < 3
                assert proc.stderr is not None
                err = (await proc.stderr.receive_some(65536)).decode()
            assert "Traceback" not in err
            assert [line for line in err.splitlines() if line.startswith("weixin-trio:")] == [
                "weixin-trio: interrupted: stopping now, without a drain"
                " (unfinished messages are redelivered at the next start)"
            ]
            # The cut message stayed pending: the next run handles it; one signal then
            # drains (nothing is running) and exits 0.
            async with _run(tmp_path, "echo") as proc:
                assert proc.stdout is not None
                await read_until(proc.stdout, b"handled ping", bytearray())
                assert fake.sent_texts("carol@im.wechat") == ["echo ping"]
                proc.send_signal(signal.SIGINT)
                with trio.fail_after(10):
                    assert await proc.wait() == 0
            nursery.cancel_scope.cancel()


@pytest.mark.slow
@pytest.mark.parametrize("third_signal", [False, True], ids=["timer", "third-signal"])
async def test_a_cut_stop_that_cannot_finish_exits_by_force(
    tmp_path: Path, third_signal: bool
) -> None:
    from weixin_trio._cli.serve import HARD_STOP_AFTER
    from weixin_trio.testing import FakeILinkServer

    (tmp_path / "hung_bot.py").write_text(HUNG)
    fake = FakeILinkServer(hold=1.0)
    fake.qr.auto_confirm = True
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            base_url = await nursery.start(fake.serve)
            await _login(tmp_path, base_url)
            async with _run(tmp_path, "stuck", "--drain-timeout", "30") as proc:
                await _until_handling(fake, proc, "ping")
                proc.send_signal(signal.SIGINT)
                await trio.sleep(0.5)
                proc.send_signal(signal.SIGINT)
                start = trio.current_time()
                if third_signal:
                    await trio.sleep(0.5)
                    proc.send_signal(signal.SIGINT)
                with trio.fail_after(HARD_STOP_AFTER + 5):
                    assert await proc.wait() == 130
                took = trio.current_time() - start
            assert took < (2 if third_signal else HARD_STOP_AFTER + 3)
            if not third_signal:
                assert took > HARD_STOP_AFTER - 1  # the cut stop had its chance first
            nursery.cancel_scope.cancel()
