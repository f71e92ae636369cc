"""``weixin-trio playground``: the JSON line, the page, the fake, a quick stop; no extra."""

from __future__ import annotations

import importlib.util
import json
import signal
import time
import urllib.request
from typing import Any

import pytest

from tests.playground._process import ECHO_BOT, playground_process
from weixin_trio._cli import playground_command
from weixin_trio._cli.common import CliError

pytestmark = pytest.mark.slow


def _get(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.headers["content-type"], response.read()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_prints_its_json_line_and_serves_the_page_until_stopped(stop: int) -> None:
    with playground_process("--port", "0", stop=stop) as info:
        assert set(info) == {"url", "base_url", "token", "cdn_base_url", "started_in"}
        assert info["url"].startswith("http://127.0.0.1:")
        assert info["base_url"] == info["url"] + "fake"
        kind, page = _get(info["url"])
        assert kind.startswith("text/html")
        assert b"weixin-trio playground" in page
        _, stats = _get(info["base_url"] + "/_fake/stats")
        assert json.loads(stats)["sent"] == 0
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 5


def test_runs_the_handler_given() -> None:
    with playground_process(ECHO_BOT) as info:
        request = urllib.request.Request(
            info["url"] + "api/messages",
            data=json.dumps({"from": "alice@im.wechat", "text": "ping"}).encode(),
            headers={"Content-Type": "application/json", "X-Playground": "1"},
        )
        with urllib.request.urlopen(request, timeout=10):
            pass
        deadline = time.monotonic() + 10
        texts: list[str] = []
        while not texts and time.monotonic() < deadline:
            time.sleep(0.05)  # a subprocess: no event to wait on
            _, sent = _get(info["base_url"] + "/_fake/sent")
            texts = [s["text"] for s in json.loads(sent) if s["text"]]
        assert texts == ["echo: ping"]


def test_without_the_web_extra_it_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "hypercorn" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(CliError, match=r"pip install 'weixin-trio\[web\]'"):
        playground_command._require_web_extra()
