"""``weixin-trio run --metrics-port 0 --log-format json`` in a process of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from weixin_trio._cli.app import main

from .._helpers import SRC, fake_http, fake_server_process

if TYPE_CHECKING:
    from pathlib import Path

HANDLER = """
import weixin_trio as wx

async def echo(msg: wx.Message) -> None:
    await msg.reply("ops echo: " + msg.text)
"""


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_run_serves_metrics_health_and_json_logs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fake_server_process() as fake:
        base, state = fake["base_url"], str(tmp_path / "state")
        assert main(["login", "--base-url", base, "--state-dir", state]) == 0
        capsys.readouterr()
        (tmp_path / "ops_handlers.py").write_text(HANDLER)
        argv = ["run", "ops_handlers:echo", "--state-dir", state, "--no-pacing"]
        argv += ["--metrics-port", "0", "--log-format", "json", "-v"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "weixin_trio", *argv],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(SRC)},
        )
        with proc:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert first.startswith("metrics on http://127.0.0.1:"), first
            url = first.split()[2].removesuffix("/metrics")
            assert "running 1 account" in proc.stdout.readline()
            assert get(url + "/healthz") == (200, b'{"alive": true}')
            wait_until(lambda: get(url + "/readyz")[0] == 200)
            assert json.loads(get(url + "/readyz")[1])["accounts"] == 1
            assert get(url + "/nowhere")[0] == 404
            fake_http(base, "/_fake/inject", {"user": "dora@im.wechat", "text": "ping"})
            wait_until(lambda: len(fake_http(base, "/_fake/sent")) == 1)
            status, body = get(url + "/metrics")
            assert status == 200
            families = {f.name: f for f in text_string_to_metric_families(body.decode())}
            handled = families["weixin_trio_messages_handled"].samples
            assert [s.value for s in handled if s.name.endswith("_total")] == [1.0]
            assert families["weixin_trio_send_latency_seconds"].type == "histogram"
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=20)
            assert proc.returncode == 0, stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert lines, "no log lines"
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys(), line
        assert line["time"].endswith("Z")
    [handled_line] = [line for line in lines if line.get("event") == "message_handled"]
    assert handled_line["logger"] == "weixin_trio.handler"
    assert handled_line["account_id"].endswith("@im.bot")
    assert isinstance(handled_line["message_id"], int)
    assert handled_line["duration"] >= 0
    assert fake["token"] not in stderr


def test_metrics_port_without_the_extra_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        "weixin_trio._cli.ops_options._EXTRA_MODULES", ("weixin_trio_no_such_module",)
    )
    (tmp_path / "ops_handlers.py").write_text(HANDLER)
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["run", "ops_handlers:echo", "--state-dir", str(tmp_path), "--metrics-port", "0"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "--metrics-port needs the metrics extra" in err
    assert "weixin-trio[metrics]" in err


def test_metrics_port_must_be_a_port(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "m:h", "--metrics-port", "70000"])
    assert exit_info.value.code == 2
    assert "--metrics-port" in capsys.readouterr().err


def test_a_failure_in_json_mode_is_one_json_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ops_handlers.py").write_text(HANDLER)
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["--log-format", "json", "run", "ops_handlers:echo", "--state-dir", str(tmp_path)]
    assert main(argv) == 1
    [line] = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert record["level"] == "ERROR"
    assert record["logger"] == "weixin_trio.cli"
    assert record["event"] == "exit"
    assert record["message"].startswith("error: no accounts in ")
