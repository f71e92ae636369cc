"""``RedisServer``: a throwaway ``redis-server`` on a free loopback port, for tests.

Test-only: it lives in ``tests/`` (not in the wheel). ``tests/conftest.py`` builds the
``redis_server`` fixture on it; ``benchmarks/bench_scale.py`` imports it too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["RedisServer", "redis_server_path"]


def redis_server_path() -> str | None:
    """Where ``redis-server`` is (``$WEIXIN_TRIO_REDIS_SERVER`` or ``PATH``), if anywhere."""
    return os.environ.get("WEIXIN_TRIO_REDIS_SERVER") or shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@final
class RedisServer:
    """Runs ``redis-server`` on ``127.0.0.1`` in a temporary directory.

    Use it as a (synchronous) context manager; `url` is valid inside. It can be
    stopped and started again on the same port and data (to test a Redis outage).

    Args:
        appendonly: Enable the AOF with ``appendfsync always`` (what a deployment that
            must not lose a message after a Redis crash uses).
        executable: The ``redis-server`` binary (default: `redis_server_path`).

    Raises:
        FileNotFoundError: No ``redis-server`` is installed.
    """

    def __init__(self, *, appendonly: bool = False, executable: str | None = None) -> None:
        found = executable or redis_server_path()
        if found is None:
            raise FileNotFoundError("redis-server is not on PATH")
        self.executable = found
        self.appendonly = appendonly
        self.port = _free_port()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it accepts connections (10 s at most)."""
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="weixin-trio-redis-")
        args = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", self._tmp.name,
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always",
            "--protected-mode", "yes",
            "--loglevel", "warning",
        ]  # fmt: skip
        log = Path(self._tmp.name, "redis.log").open("ab")  # noqa: SIM115 - owned by the child
        with log:
            self._proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server (the data directory stays until `close`)."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def close(self) -> None:
        """Stop the server and delete its directory."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
