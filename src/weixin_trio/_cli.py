"""The ``weixin-trio`` command line (``python -m weixin_trio``).

Exit codes: 0 success, 1 runtime failure, 2 usage error, 130 interrupted.
``rich`` and ``segno`` are only imported here, and only by commands that draw.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from functools import partial
from typing import TYPE_CHECKING

import trio

from ._version import __version__

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]

log = logging.getLogger("weixin_trio.cli")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weixin-trio", description="WeChat iLink bots with trio.")
    parser.add_argument("--version", action="version", version=f"weixin-trio {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="echo bot against an embedded fake server")
    demo.add_argument("--users", type=int, default=3, help="simulated users (default 3)")
    demo.add_argument("--messages", type=int, default=3, help="messages per user (default 3)")

    fake = sub.add_parser("fake-server", help="serve the test kit's fake iLink server")
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=0)
    fake.add_argument("--token", default=None)
    fake.add_argument(
        "--auto-confirm", action="store_true", help="confirm QR logins without a scan"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (also used as the console script)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.verbose < 2:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        if args.command == "demo":
            from ._demo import run_demo

            return trio.run(run_demo, args.users, args.messages)
        if args.command == "fake-server":
            return trio.run(_fake_server, args.host, args.port, args.token, args.auto_confirm)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        if args.verbose:
            raise
        print(f"weixin-trio: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_USAGE  # pragma: no cover - argparse enforces a command


async def _fake_server(host: str, port: int, token: str | None, auto_confirm: bool) -> int:
    from .testing import FakeILinkServer

    fake = FakeILinkServer(token=token)
    fake.qr.auto_confirm = auto_confirm
    fake.cdn_full_urls = True  # clients with another default CDN base still reach it
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            base_url = await nursery.start(partial(fake.serve, host=host, port=port))
            info = {"base_url": base_url, "token": fake.token, "cdn_base_url": fake.cdn_base_url}
            print(json.dumps(info), flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break
    return EXIT_OK
