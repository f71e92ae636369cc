"""``weixin-trio playground`` as a subprocess, for the CLI and browser tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
#: The echo bot the browser tests chat with.
ECHO_BOT = "tests.playground.echo_media_bot:echo"


@contextmanager
def playground_process(*args: str, stop: int = signal.SIGTERM) -> Iterator[dict[str, Any]]:
    """Run ``weixin-trio playground --no-browser ARGS``; yield its JSON line (plus
    ``"started_in"``, seconds until it was printed); stop it with ``stop`` (exit 0)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "weixin_trio", "playground", "--no-browser", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"},
    )
    assert proc.stdout is not None
    with proc:
        try:
            line = proc.stdout.readline()
            assert line, "the playground exited before printing its JSON line"
            info: dict[str, Any] = json.loads(line)
            info["started_in"] = time.monotonic() - started
            yield info
            proc.send_signal(stop)
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
