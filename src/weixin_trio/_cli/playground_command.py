"""``weixin-trio playground [MODULE:HANDLER]``: chat with a bot in the browser.

The fake server, the chat page and (if given) the handler run in this process; the
command prints one JSON line ``{"url", "base_url", "token", "cdn_base_url"}`` and
serves until SIGINT or SIGTERM (which stop it at once).
"""

from __future__ import annotations

import importlib.util
import json
import signal
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from .common import CliError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

__all__ = ["add_playground_parser", "cmd_playground"]


def add_playground_parser(
    sub: Any,
    parents: list[Any],
    *,
    port: Callable[[str], int],
    handler: Callable[[str], str],
) -> argparse.ArgumentParser:
    """Add ``playground`` to the command line's subcommands."""
    playground: argparse.ArgumentParser = sub.add_parser(
        "playground",
        parents=parents,
        help="chat with a bot in the browser, against the fake server (the web extra)",
    )
    playground.add_argument(
        "handler",
        metavar="MODULE:HANDLER",
        nargs="?",
        type=handler,
        help="run this handler against the playground's fake server (default: none;"
        " connect your own bot to base_url)",
    )
    playground.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    playground.add_argument("--port", type=port, default=0, help="0-65535 (default 0: a free port)")
    playground.add_argument(
        "--no-browser", action="store_true", help="do not open the page in a browser"
    )
    return playground


def _require_web_extra() -> None:
    missing = [m for m in ("starlette", "hypercorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise CliError(f"playground needs {' and '.join(missing)}: pip install 'weixin-trio[web]'")


async def cmd_playground(args: Any) -> int:
    """``weixin-trio playground``."""
    _require_web_extra()
    from .._playground.runner import run_playground
    from .commands import load_handler

    handler = load_handler(args.handler) if args.handler else None
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            run = partial(
                run_playground,
                handler,
                host=args.host,
                port=args.port,
                browser=not args.no_browser,
            )
            info = await nursery.start(run)
            print(json.dumps(info), flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break
    return 0
