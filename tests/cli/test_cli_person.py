"""The command line as a person meets it (issue 14, item 8).

Ctrl+C gives one line and exit 130, ``-v`` logs one line per handled message, every
option has help text and each command lists only its own options, ``fake-server
--strict`` exists, and the README tells how to reach the command.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trio

import weixin_trio as wx
from weixin_trio import Message
from weixin_trio._cli import main
from weixin_trio._cli.app import _parser
from weixin_trio._client.message import ReplyContext
from weixin_trio._monitor.handler_runner import (
    HandlerRunner,
    Job,
    RunnerCounters,
    default_retry_backoff,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from weixin_trio.testing import FakeILinkServer

ROOT = Path(__file__).parents[2]
PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


# --- README ------------------------------------------------------------------------------


def test_readme_says_how_to_reach_the_command_and_where_the_snippet_values_come_from() -> None:
    readme = (ROOT / "README.md").read_text()
    setup = readme[: readme.index("```python")]
    assert "source .venv/bin/activate" in setup
    assert ".venv/bin/weixin-trio" in setup
    assert "(docs/tutorial.md)" in setup
    snippet_intro = readme[readme.index("---") : readme.index("```python")]
    for name in ("WEIXIN_TRIO_TOKEN", "WEIXIN_TRIO_BOT_ID", "weixin-trio login"):
        assert name in snippet_intro, name
    assert "weixin-trio accounts" in snippet_intro


# --- Ctrl+C during login -----------------------------------------------------------------


async def _read_until(stream: trio.abc.ReceiveStream, needle: bytes, seen: bytearray) -> None:
    while needle not in seen:
        chunk = await stream.receive_some(4096)
        assert chunk, f"output ended before {needle!r}: {bytes(seen)!r}"
        seen += chunk


@pytest.mark.parametrize("where", ["qr-wait", "verify-code-prompt"])
async def test_ctrl_c_during_login_prints_one_line_and_exits_130(
    tmp_path: Path, where: str
) -> None:
    from weixin_trio.testing import FakeILinkServer

    fake = FakeILinkServer(hold=1.0)
    with trio.fail_after(30):  # real time: a real process and a real signal
        async with trio.open_nursery() as nursery:
            base_url = await nursery.start(fake.serve)
            argv = [PY, "-m", "weixin_trio", "login", "--base-url", base_url]
            proc = await trio.lowlevel.open_process(
                [*argv, "--state-dir", str(tmp_path / "state")],
                stdin=subprocess.PIPE,  # kept open: input() waits for a line
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=ENV,
            )
            try:
                assert proc.stdout is not None
                seen = bytearray()
                await _read_until(proc.stdout, b"Scan this QR code with WeChat", seen)
                if where == "verify-code-prompt":
                    fake.scan_qr(verify_code="424242")
                    await _read_until(proc.stdout, b"Digits shown on the phone: ", seen)
                else:
                    await trio.sleep(0.5)  # in the status long poll
                proc.send_signal(signal.SIGINT)
                with trio.fail_after(5):  # not waiting for Enter, nor for the deadline
                    assert await proc.wait() == 130
                assert proc.stderr is not None
                err = (await proc.stderr.receive_some(65536)).decode()
            finally:
                if proc.returncode is None:
                    proc.kill()
                with trio.CancelScope(shield=True):
                    await proc.wait()
            nursery.cancel_scope.cancel()
    assert err == "weixin-trio: interrupted\n"
    assert not list((tmp_path / "state").glob("*/account.json"))


# --- -v: one line per handled message ------------------------------------------------------


class _Host:
    def attempt_scope(self) -> trio.CancelScope:
        return trio.CancelScope()

    def wait_scope(self) -> trio.CancelScope:
        return trio.CancelScope()

    def cut(self) -> bool:
        return False

    def stopping(self) -> bool:
        return False

    def failed(self, job: Job, attempts: int) -> None:
        del job, attempts


def _job() -> Job:
    raw = {
        "from_user_id": "carol@im.wechat",
        "context_token": "ctx-SECRET",
        "item_list": [{"type": 1, "text_item": {"text": "my private words"}}],
    }
    return Job(message=Message.from_json(raw, message_id=77), raw=raw)


def _runner(handler: Any) -> HandlerRunner:
    return HandlerRunner(
        handler,
        max_attempts=2,
        handler_timeout=None,
        retry_backoff=default_retry_backoff(1.0),
        counters=RunnerCounters(),
        name="bot1@im.bot",
    )


async def test_a_handled_message_logs_one_info_line(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    del autojump_clock

    async def slow(msg: Message) -> None:
        await trio.sleep(1.25)

    caplog.set_level(logging.INFO, logger="weixin_trio.handler")
    outcome = await _runner(slow).run(_job(), _Host())
    assert outcome.kind == "handled"
    lines = [r.getMessage() for r in caplog.records if r.name == "weixin_trio.handler"]
    assert lines == [
        "bot1@im.bot: message 77 from carol@im.wechat: handled in 1.250 s (0 failed attempts)"
    ]


async def test_a_dead_lettered_message_logs_its_outcome_without_text_or_token(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    del autojump_clock

    async def broken(msg: Message) -> None:
        raise RuntimeError("boom")

    caplog.set_level(logging.INFO, logger="weixin_trio.handler")
    outcome = await _runner(broken).run(_job(), _Host())
    assert outcome.kind == "dead"
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(info) == 1
    assert "message 77 from carol@im.wechat: dead in " in info[0]
    assert "(2 failed attempts)" in info[0]
    text = caplog.text
    assert "my private words" not in text
    assert "ctx-SECRET" not in text


async def test_no_line_and_no_clock_read_when_info_is_off(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def quick(msg: Message) -> None:
        pass

    caplog.set_level(logging.WARNING, logger="weixin_trio.handler")
    runner = _runner(quick)
    reads = 0
    real = trio.current_time

    def counting() -> float:
        nonlocal reads
        reads += 1
        return real()

    monkeypatch.setattr(trio, "current_time", counting)
    assert (await runner.run(_job(), _Host())).kind == "handled"
    assert reads == 0
    assert not caplog.records


@pytest.fixture
def keep_log_levels() -> Iterator[None]:
    names = ["", "weixin_trio", "httpx", "httpcore"]
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("keep_log_levels")
@pytest.mark.parametrize(
    ("flag", "wire"), [("-v", logging.WARNING), ("-vv", logging.WARNING), ("-vvv", logging.DEBUG)]
)
def test_verbosity_keeps_the_http_wire_quiet_below_vvv(
    flag: str, wire: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([flag, "accounts", "--state-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert logging.getLogger("httpcore").level == wire
    assert logging.getLogger("httpx").level == wire


def test_vv_sets_debug_when_logging_is_not_configured_yet(tmp_path: Path) -> None:
    # In a fresh process, as a person runs it: -vv is our DEBUG, not httpcore's.
    code = (
        "import logging, sys; from weixin_trio._cli import main; "
        "main(sys.argv[1:]); "
        "print(logging.getLogger('weixin_trio.handler').getEffectiveLevel(), "
        "logging.getLogger('httpcore').getEffectiveLevel())"
    )
    for flag, expected in (("-v", "20 30"), ("-vv", "10 30"), ("-vvv", "10 10")):
        out = subprocess.run(
            [PY, "-c", code, flag, "accounts", "--state-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=30,
            env=ENV,
            check=True,
        )
        assert out.stdout.strip().splitlines()[-1] == expected, flag


# --- help text and options per command ----------------------------------------------------


def _parsers() -> dict[str, argparse.ArgumentParser]:
    top = _parser()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    return {"": top, **sub.choices}


def test_every_option_of_every_command_has_help_text() -> None:
    missing = [
        (command, action.dest)
        for command, parser in _parsers().items()
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction) and not (action.help or "").strip()
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("command", "absent"),
    [
        ("fake-server", ["--redis", "--redis-prefix", "--state-dir", "--base-url", "--cdn"]),
        ("demo", ["--redis", "--state-dir", "--base-url", "--cdn"]),
        ("accounts", ["--cdn-base-url", "--allow-cdn-host"]),
        ("login", ["--cdn-base-url"]),
    ],
)
def test_commands_list_only_their_own_options(
    command: str, absent: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    for option in absent:
        assert option not in out, option
    assert "-v, --verbose" in out


def test_a_foreign_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["fake-server", "--redis", "redis://h"])
    assert info.value.code == 2
    assert "unrecognized arguments: --redis" in capsys.readouterr().err


def test_allow_cdn_host_reaches_the_client_options() -> None:
    from weixin_trio._cli.commands import _cdn_options

    args = _parser().parse_args(
        ["send", "u", "--file", "f", "--allow-cdn-host", "cdn.test", "--allow-cdn-host", "*.x.y"]
    )
    hosts = _cdn_options(args)["cdn_hosts"]
    assert {"cdn.test", "*.x.y", "novac2c.cdn.weixin.qq.com"} <= hosts
    assert "cdn_hosts" not in _cdn_options(_parser().parse_args(["send", "u", "hi"]))


# --- fake-server --strict -----------------------------------------------------------------


@pytest.fixture(params=[False, True], ids=["lenient", "strict"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[dict[str, str], bool]]:
    strict: bool = request.param
    argv = [PY, "-m", "weixin_trio", "fake-server", "--port", "0"]
    proc = subprocess.Popen(
        [*argv, *(["--strict"] if strict else [])], stdout=subprocess.PIPE, text=True, env=ENV
    )
    assert proc.stdout is not None
    with proc:
        try:
            yield json.loads(proc.stdout.readline()), strict
        finally:
            proc.send_signal(signal.SIGINT)
            assert proc.wait(10) == 0


def test_fake_server_strict_refuses_a_lower_case_bearer(
    served: tuple[dict[str, str], bool],
) -> None:
    info, strict = served
    body = {"ilink_user_id": "carol@im.wechat", "base_info": {"channel_version": "1.0.0"}}
    request = urllib.request.Request(
        info["base_url"].rstrip("/") + "/ilink/bot/getconfig",
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "AuthorizationType": "ilink_bot_token",
            "Authorization": f"bearer {info['token']}",
            "X-WECHAT-UIN": base64.b64encode(b"12345").decode(),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        pytest.fail(f"HTTP {exc.code}: {exc.read()!r}")
    if strict:
        assert answer["ret"] == -14
    else:
        assert answer.get("ret", 0) == 0, answer


def test_the_cli_reference_names_every_option() -> None:
    reference = (ROOT / "docs" / "reference" / "cli.md").read_text()
    missing = {
        option
        for parser in _parsers().values()
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--")
        and option != "--help"
        and not re.search(rf"{re.escape(option)}(?![\w-])", reference)
    }
    assert missing == set()


async def test_a_runner_without_a_name_logs_each_messages_account(
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
) -> None:
    # The fan-out worker serves many accounts with one runner: its lines name the
    # message's account, not a fixed name.
    del autojump_clock

    async def ok(msg: Message) -> None:
        await trio.lowlevel.checkpoint()

    raw = _job().raw
    job = Job(
        message=Message.from_json(raw, message_id=77, ctx=ReplyContext(ilink_client)), raw=raw
    )
    runner = HandlerRunner(
        ok,
        max_attempts=1,
        handler_timeout=None,
        retry_backoff=default_retry_backoff(1.0),
        counters=RunnerCounters(),
    )
    caplog.set_level(logging.INFO, logger="weixin_trio.handler")
    await runner.run(job, _Host())
    [line] = [r.getMessage() for r in caplog.records if r.name == "weixin_trio.handler"]
    assert line.startswith(f"{fake_ilink.default.bot_id}: message 77 from carol@im.wechat")
