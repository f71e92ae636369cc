"""Shared plumbing for the benchmarks: a fake server in its own process, HTTP helpers."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
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


@contextlib.contextmanager
def fast_fake(*args: str) -> Iterator[dict[str, Any]]:
    """Run ``_fast_fake.py`` (the fast fake, its own process); yield its info line.

    The info has ``base_url``, ``token`` (account 0), ``token_prefix`` and ``pid``.
    """
    script = str(Path(__file__).with_name("_fast_fake.py"))
    proc = subprocess.Popen([sys.executable, script, *args], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        info: dict[str, Any] = json.loads(proc.stdout.readline())
        yield info
    finally:
        proc.terminate()
        proc.wait(10)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def uptime() -> str:
    """The load averages (1, 5, 15 min), as ``uptime`` prints them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
