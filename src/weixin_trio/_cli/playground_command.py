"""``weixin-trio playground [MODULE:HANDLER]``: chat with a bot in the browser.

(The parser is final; ``cmd_playground`` is being written in this round.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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


async def cmd_playground(args: Any) -> int:
    """``weixin-trio playground``."""
    raise CliError("playground: not built yet")
