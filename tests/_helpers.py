"""Small helpers for the test suite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

SRC = Path(__file__).resolve().parents[1] / "src"


async def until(predicate: Callable[[], bool], *, timeout: float = 600.0) -> None:
    """Wait (on the test's clock) until ``predicate()`` holds.

    Needed where work happens in threads (``FileStore`` I/O): under ``autojump_clock``
    a plain ``trio.sleep`` may finish before the thread does.
    """
    with trio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110 - the predicate has no event to wait on
            await trio.sleep(0.01)


async def cli_login(base_url: str, state_dir: str) -> None:
    """``weixin-trio login`` (a subprocess) against a fake server, saved in ``state_dir``."""
    login = await trio.run_process(
        [
            sys.executable,
            "-m",
            "weixin_trio",
            "login",
            "--base-url",
            base_url,
            "--state-dir",
            state_dir,
        ],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    assert login.returncode == 0, login.stderr


@asynccontextmanager
async def cli_process(cwd: Path, *args: str) -> AsyncIterator[trio.Process]:
    """``python -m weixin_trio ARGS`` in ``cwd`` with piped output, killed if the test fails."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "weixin_trio", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()


async def read_until(
    stream: trio.abc.ReceiveStream | None, needle: bytes, seen: bytearray | None = None
) -> None:
    """Read ``stream`` until ``needle`` appears in what was read (kept in ``seen``)."""
    assert stream is not None
    seen = bytearray() if seen is None else seen
    while needle not in seen:
        chunk = await stream.receive_some(4096)
        assert chunk, f"the process output ended before {needle!r}: {bytes(seen)!r}"
        seen += chunk


def fake_http(base_url: str, path: str, body: Any = None) -> Any:
    """A JSON request to a ``weixin-trio fake-server`` control endpoint (POST with a body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base_url + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@contextmanager
def fake_server_process() -> Iterator[dict[str, str]]:
    """Run ``weixin-trio fake-server --auto-confirm``; yield its JSON line; stop it (exit 0)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "weixin_trio", "fake-server", "--port", "0", "--auto-confirm"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    assert proc.stdout is not None
    with proc:
        yield json.loads(proc.stdout.readline())
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
