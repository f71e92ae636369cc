"""The ``weixin-trio`` command line (``python -m weixin_trio``).

Commands: ``login``, ``accounts``, ``status``, ``run``, ``worker``, ``send``, ``pair``,
``mcp``, ``acp``, ``playground``, ``fake-server``, ``demo``. Each command takes only the
options that apply to it (the top level takes them all, before the command name):
``-v/--verbose`` and ``--log-format text|json`` everywhere (`logs`); the store
(``--state-dir``, or ``--redis`` for Redis instead of files, where ``run`` leases
accounts across processes) everywhere but ``demo``, ``playground`` and
``fake-server``; ``--base-url`` for ``login``, ``send``, ``mcp`` and ``acp``;
``--cdn-base-url`` and ``--allow-cdn-host`` for ``run``, ``worker``, ``send``, ``mcp``
and ``acp``; ``--metrics-port``/``--metrics-host`` for ``run`` and ``worker``
(`ops_options`).

Exit codes: 0 success, 1 failure (one line on stderr; the traceback only with ``-v``),
2 usage error (bad arguments, checked before anything runs), 130 interrupted (Ctrl+C,
or a second SIGINT/SIGTERM that cut a ``run`` short). ``rich`` and ``segno`` are
imported only by the commands that draw.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import urllib.parse
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from .._version import __version__
from .acp_command import add_acp_parser, check_acp_args
from .common import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
)
from .logs import add_log_options, configure_logging, report_exit
from .ops_options import add_ops_options
from .pair import add_pair_parser, check_pair_args
from .playground_command import add_playground_parser

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "main"]

log = logging.getLogger("weixin_trio.cli")

# --- argument types: each rejects a bad value with a usage error (exit 2) ------------


def _whole(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """A whole number in ``minimum..maximum``."""
    bound = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"{value} is out of range (must be {bound})")
        return value

    return parse


def _seconds(*, zero: bool) -> Callable[[str], float]:
    """A finite number of seconds, positive (or also 0 with ``zero``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            need = ">= 0" if zero else "> 0"
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite number {need}")
        return value

    return parse


_port = _whole(0, 65535)
_REDIS_SHAPE = (
    "expected redis://[user:password@]host[:port][/db], rediss://... or unix:///path"
    " (from --redis or $WEIXIN_TRIO_REDIS_URL)"
)


def _redis_url(text: str) -> str:
    """A Redis URL coredis can connect to (the text is never echoed: it may hold a password)."""
    try:
        parts = urllib.parse.urlsplit(text.strip())
        port = parts.port
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a valid Redis URL: {_REDIS_SHAPE}") from None
    scheme = parts.scheme.lower()
    if scheme in ("redis", "rediss"):
        db = parts.path.strip("/")
        if not parts.hostname or port == 0 or (db and not db.isdigit()):
            raise argparse.ArgumentTypeError(f"not a valid Redis URL: {_REDIS_SHAPE}")
    elif scheme != "unix" or not parts.path:
        raise argparse.ArgumentTypeError(f"not a Redis URL: {_REDIS_SHAPE}")
    return text.strip()


def _http_url(text: str) -> str:
    """An absolute http(s) URL (a base URL)."""
    try:
        parts = urllib.parse.urlsplit(text.strip())
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// URL")
    return text.strip()


def _state_dir(text: str) -> Path:
    """A directory, or a path that can become one (no file in the way)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the state directory must not be empty")
    path = Path(text).expanduser()
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        what = "is a file" if probe == path else f"is under {probe}, which is a file"
        raise argparse.ArgumentTypeError(f"{text} {what}, not a directory")
    return path


def _non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _handler_spec(text: str) -> str:
    """``MODULE:HANDLER`` (imported later; only the shape is checked here)."""
    module, _, attr = text.partition(":")
    if not module.strip() or not attr.strip():
        raise argparse.ArgumentTypeError(f"handler must look like MODULE:HANDLER, not {text!r}")
    return text


def _option_groups() -> dict[str, argparse.ArgumentParser]:
    """Parent parsers of the options shared by several commands, by what they are for.

    Each command takes only the groups that apply to it (``fake-server`` has no store,
    so no ``--state-dir`` or ``--redis``). SUPPRESS keeps a subcommand's defaults from
    overwriting what was given before the command name (an argparse pitfall); the top
    level sets the real defaults.
    """

    def group() -> argparse.ArgumentParser:
        return argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)

    log_options = group()
    add_log_options(log_options)
    store = group()
    store.add_argument(
        "--state-dir",
        type=_state_dir,
        help="where accounts and journals live (default: the platform state directory)",
    )
    store.add_argument(
        "--redis",
        metavar="URL",
        type=_redis_url,
        help="keep accounts and journals in Redis (default $WEIXIN_TRIO_REDIS_URL)",
    )
    store.add_argument("--redis-prefix", type=_non_empty, help="key prefix in Redis (default wxt)")
    api = group()
    api.add_argument(
        "--base-url", type=_http_url, help="iLink API base URL (default: the account's)"
    )
    cdn = group()
    cdn.add_argument("--cdn-base-url", type=_http_url, help="CDN base URL for media")
    cdn.add_argument(
        "--allow-cdn-host",
        metavar="HOST",
        action="append",
        type=_non_empty,
        help="also allow media from/to this CDN host (repeatable; *.example.com for"
        " its subdomains)",
    )
    return {"log": log_options, "store": store, "api": api, "cdn": cdn}


def _parents(groups: dict[str, argparse.ArgumentParser], *names: str) -> list[Any]:
    return [groups[name] for name in ("log", *names)]


def _parser() -> argparse.ArgumentParser:
    # The top level gets its own copy of the shared options (all of them, so that any
    # may come before the command name): ``set_defaults`` below changes the defaults of
    # the very action objects it holds, and shared with the subcommands they would
    # overwrite an option given before the command.
    groups = _option_groups()
    top = _option_groups()
    parser = argparse.ArgumentParser(
        prog="weixin-trio",
        description="WeChat iLink bots with trio.",
        parents=[top["log"], top["store"], top["api"], top["cdn"]],
    )
    parser.add_argument("--version", action="version", version=f"weixin-trio {__version__}")
    parser.set_defaults(
        verbose=0,
        log_format="text",
        state_dir=None,
        base_url=None,
        cdn_base_url=None,
        allow_cdn_host=None,
        redis=os.environ.get("WEIXIN_TRIO_REDIS_URL") or None,
        redis_prefix="wxt",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to do (COMMAND --help)"
    )

    login = sub.add_parser(
        "login", parents=_parents(groups, "store", "api"), help="log in a bot account by QR code"
    )
    login.add_argument(
        "--timeout", type=_seconds(zero=False), default=480.0, help="overall deadline (s)"
    )

    accounts = sub.add_parser(
        "accounts",
        parents=_parents(groups, "store"),
        help="list or remove accounts",
    )
    accounts.add_argument(
        "action",
        nargs="?",
        choices=["list", "remove"],
        default="list",
        help="list the accounts (default), or remove one",
    )
    accounts.add_argument("account_id", nargs="?", help="the account to remove")

    sub.add_parser(
        "status",
        parents=_parents(groups, "store"),
        help="health of the stored accounts",
    )

    run = sub.add_parser(
        "run",
        parents=_parents(groups, "store", "cdn"),
        help="run MODULE:HANDLER on accounts",
    )
    run.add_argument(
        "handler",
        metavar="MODULE:HANDLER",
        nargs="?",
        type=_handler_spec,
        help="the async handler to import (not with --fanout)",
    )
    run.add_argument("--account", action="append", default=[], help="only these accounts")
    run.add_argument(
        "--fanout",
        action="store_true",
        help="with --redis: publish messages to Redis Streams for `weixin-trio worker`",
    )
    _scale_options(run)

    worker = sub.add_parser(
        "worker",
        parents=_parents(groups, "store", "cdn"),
        help="with --redis: handle messages published by --fanout",
    )
    worker.add_argument(
        "handler", metavar="MODULE:HANDLER", type=_handler_spec, help="the async handler to import"
    )
    _scale_options(worker)

    send = sub.add_parser(
        "send",
        parents=_parents(groups, "store", "api", "cdn"),
        help="send a text or a file to a user",
    )
    send.add_argument("user", help="the user id (xxx@im.wechat) who wrote to the bot before")
    send.add_argument("text", nargs="?", help="the text to send (or --file)")
    send.add_argument("--file", type=Path, help="send this file instead of a text")
    send.add_argument("--account", default=None, help="the account to send from (if several)")

    add_pair_parser(sub, _parents(groups, "store"))

    demo = sub.add_parser(
        "demo", parents=_parents(groups), help="echo bot against an embedded fake"
    )
    demo.add_argument(
        "--users", type=_whole(1, 1000), default=3, help="simulated users (1-1000, default 3)"
    )
    demo.add_argument(
        "--messages", type=_whole(1, 1000), default=3, help="messages per user (1-1000, default 3)"
    )

    mcp = sub.add_parser(
        "mcp",
        parents=_parents(groups, "store", "api", "cdn"),
        help="serve one account as MCP tools over stdio (the mcp extra)",
    )
    mcp.add_argument("--account", default=None, help="the account to serve (if several)")
    mcp.add_argument(
        "--no-pacing", action="store_true", help="switch the send governor off (fake servers)"
    )

    add_acp_parser(sub, _parents(groups, "store", "api", "cdn"))
    add_playground_parser(sub, _parents(groups), port=_port, handler=_handler_spec)

    fake = sub.add_parser(
        "fake-server", parents=_parents(groups), help="serve the fake iLink server"
    )
    fake.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    fake.add_argument("--port", type=_port, default=0, help="0-65535 (default 0: a free port)")
    fake.add_argument("--token", default=None, help="the bot token to accept (default: random)")
    fake.add_argument(
        "--auto-confirm", action="store_true", help="confirm QR logins without a scan"
    )
    fake.add_argument(
        "--strict",
        action="store_true",
        help="reject requests that depart from what the official client sends"
        " (default: serve them and record protocol issues, GET /_fake/issues)",
    )
    for command_parser in sub.choices.values():
        command_parser.set_defaults(command_parser=command_parser)
    return parser


def _scale_options(parser: argparse.ArgumentParser) -> None:
    """Options of ``run`` and ``worker``."""
    parser.add_argument(
        "--max-concurrency", type=_whole(1), default=16, help="handlers at once per account"
    )
    parser.add_argument(
        "--drain-timeout",
        type=_seconds(zero=True),
        default=10.0,
        help="seconds handlers get at a stop (0: none)",
    )
    parser.add_argument(
        "--handler-timeout",
        type=_seconds(zero=False),
        default=None,
        help="deadline of one handler run (s)",
    )
    parser.add_argument(
        "--lease-ttl",
        type=_seconds(zero=False),
        default=15.0,
        help="with --redis: lease lifetime (s)",
    )
    parser.add_argument(
        "--node-id", type=_non_empty, default=None, help="with --redis: this process's id"
    )
    parser.add_argument(
        "--partitions", type=_whole(1), default=None, help="fan-out streams (default 16)"
    )
    parser.add_argument(
        "--no-pacing", action="store_true", help="switch the send governor off (fake servers)"
    )
    add_ops_options(parser, port=_port)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (also used as the console script)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    _check_combinations(args)
    # -v counts wherever it is given (before or after the command name)
    args.verbose = sum(a.count("v") for a in argv if a.startswith("-v") and set(a[1:]) == {"v"})
    args.verbose += argv.count("--verbose")
    configure_logging(args.verbose, args.log_format)
    from . import commands, serve
    from .acp_command import cmd_acp
    from .mcp_command import cmd_mcp
    from .pair import cmd_pair
    from .playground_command import cmd_playground

    command = {
        "login": commands.cmd_login,
        "accounts": commands.cmd_accounts,
        "status": commands.cmd_status,
        "run": serve.cmd_run,
        "worker": serve.cmd_worker,
        "send": commands.cmd_send,
        "pair": cmd_pair,
        "demo": commands.cmd_demo,
        "mcp": cmd_mcp,
        "acp": cmd_acp,
        "playground": cmd_playground,
        "fake-server": _fake_server,
    }[args.command]
    try:
        return trio.run(command, args)
    except KeyboardInterrupt:
        report_exit("interrupted", args.log_format)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if args.verbose:
            raise
        report_exit(f"error: {_describe(exc)}", args.log_format)
        return EXIT_FAILURE
    except BaseExceptionGroup as group:
        # Ctrl+C inside a nursery (e.g. the client's, during `login`) arrives wrapped;
        # any other group that is not an Exception (Cancelled, SystemExit) propagates.
        if group.subgroup(KeyboardInterrupt) is None:
            raise
        report_exit("interrupted", args.log_format)
        return EXIT_INTERRUPTED


def _check_combinations(args: Any) -> None:
    """Usage mistakes argparse cannot see alone: they exit 2 with the usage line."""
    command = args.command

    def fail(message: str) -> None:
        sub: argparse.ArgumentParser = args.command_parser
        sub.error(message)

    if command == "accounts" and args.action == "remove" and not args.account_id:
        fail("accounts remove needs an ACCOUNT_ID")
    if command == "accounts" and args.action == "list" and args.account_id:
        fail("accounts list takes no ACCOUNT_ID")
    if command == "send" and (args.text is None) == (args.file is None):
        fail("give either TEXT or --file PATH")
    if command == "pair" and (mistake := check_pair_args(args)):
        fail(mistake)
    if command == "acp" and (mistake := check_acp_args(args)):
        fail(mistake)
    if command == "worker" and not args.redis:
        fail("worker needs --redis URL")
    if command == "run":
        if args.fanout and not args.redis:
            fail("--fanout needs --redis URL")
        if args.fanout == (args.handler is not None):
            fail("give MODULE:HANDLER, or --fanout (the workers run the handler)")
        if args.account and args.redis:
            fail("--account cannot be used with --redis: accounts are leased")


def _describe(exc: BaseException) -> str:
    """The innermost meaningful message of an error (unwrapping exception groups)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return str(exc) or type(exc).__name__


async def _fake_server(args: Any) -> int:
    from ..testing import FakeILinkServer

    fake = FakeILinkServer(token=args.token, strict=args.strict)
    fake.qr.auto_confirm = args.auto_confirm
    fake.cdn_full_urls = True  # clients with another default CDN base still reach it
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            base_url = await nursery.start(partial(fake.serve, host=args.host, port=args.port))
            info = {"base_url": base_url, "token": fake.token, "cdn_base_url": fake.cdn_base_url}
            print(json.dumps(info), flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break
    return EXIT_OK
