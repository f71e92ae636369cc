"""Shared plumbing for the benchmarks: a fake server in its own process, HTTP helpers."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import urllib.request
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextlib.contextmanager
def fake_server(*extra: str) -> Iterator[tuple[str, str]]:
    """Run ``weixin-trio fake-server`` in a subprocess; yield ``(base_url, token)``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "weixin_trio", "fake-server", "--port", "0", *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        yield info["base_url"], info["token"]
    finally:
        proc.terminate()
        proc.wait(10)


def call(base_url: str, path: str, body: Any = None) -> Any:
    """GET (no body) or POST JSON to the fake's control surface."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base_url + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def inject(base_url: str, messages: list[tuple[str, str]]) -> list[int]:
    """Queue messages ``(user, text)`` in one request; return their ids."""
    answer = call(base_url, "/_fake/inject", [{"user": u, "text": t} for u, t in messages])
    return [int(a["message_id"]) for a in answer]
