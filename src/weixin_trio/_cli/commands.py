"""The one-shot commands of ``weixin-trio``: login, accounts, status, send, demo."""

from __future__ import annotations

import importlib
import logging
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import trio

from .. import DEFAULT_CDN_BASE_URL, CdnError
from .._client.open import open_client
from ..cdn import DEFAULT_CDN_HOSTS
from ..login import Account, QrCode, login
from ..store import FileStore, StoreError
from .common import EXIT_INTERRUPTED, EXIT_OK, CliError
from .stores import _accounts, _open_store, _read_status, _where
from .text import qr_text, status_text

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._monitor.values import Handler
    from ..redis import RedisStore

    AnyStore = FileStore | RedisStore


log = logging.getLogger("weixin_trio.cli")


def _print_qr(qr: QrCode) -> None:
    """Draw the QR code in the terminal (segno) and print its URL."""
    print(qr_text(qr), flush=True)
    try:
        import segno
    except ImportError:
        return
    segno.make(qr.qrcode_img_content, error="l").terminal(compact=True)


async def _ask_code(wrong: bool) -> str | None:
    prompt = "Wrong code. Digits shown on the phone: " if wrong else "Digits shown on the phone: "
    print(prompt, end="", flush=True)
    # abandon_on_cancel: Ctrl+C (or the deadline) does not wait for Enter; the thread
    # blocked reading is left behind and ends with the process.
    line = await trio.to_thread.run_sync(_read_line, abandon_on_cancel=True)
    return line.strip() or None


def _read_line() -> str:
    """One line of standard input, read from the file descriptor.

    Not ``input()``: an abandoned thread blocked in it holds the lock of
    ``sys.stdin``'s buffer, and the interpreter aborts at exit (SIGABRT) on that lock.
    """
    data = bytearray()
    fd = sys.stdin.fileno()
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


async def do_login(
    store: AnyStore,
    base_url: str | None,
    *,
    deadline: float,
    on_qrcode: Any = _print_qr,
    ask_verify_code: Any = _ask_code,
    transport: Any = None,
) -> Account | None:
    """Log in by QR code and save the account; ``None`` when it was already bound."""
    known = await _accounts(store)
    options: dict[str, Any] = {"pacing": None}
    if base_url:
        options["base_url"] = base_url
    if transport is not None:
        options["transport"] = transport
    async with open_client(**options) as client:
        result = await login(
            client,
            on_qrcode=on_qrcode,
            ask_verify_code=ask_verify_code,
            on_status=lambda status: print(f"status: {status_text(status)}", flush=True),
            local_tokens=[a.token for a in reversed(known)][:10],
            deadline=deadline,
        )
    if result.account is None:
        return None
    await store.save_account(result.account.account_id, result.account.to_json())
    return result.account


async def cmd_login(args: Any) -> int:
    """``weixin-trio login``: Ctrl+C (SIGINT/SIGTERM) gives one line and exit 130.

    The signal cancels the login wherever it waits (a QR status poll, or the prompt for
    the digits shown on the phone), so nothing is saved and no traceback is printed.
    """
    interrupted = False
    account: Account | None = None
    async with _open_store(args) as store:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:

                async def on_signal() -> None:
                    nonlocal interrupted
                    async for _ in signals:
                        interrupted = True
                        nursery.cancel_scope.cancel()

                nursery.start_soon(on_signal)
                account = await do_login(store, args.base_url, deadline=args.timeout)
                nursery.cancel_scope.cancel()
        if interrupted:
            print("weixin-trio: interrupted", file=sys.stderr, flush=True)
            return EXIT_INTERRUPTED
        if account is None:
            print("This WeChat bot is already connected here; nothing to do.")
        else:
            print(f"Logged in as {account.account_id}; saved in {_where(store)}")
    return EXIT_OK


async def cmd_accounts(args: Any) -> int:
    """``weixin-trio accounts [list|remove ID]``."""
    async with _open_store(args, read_only=args.action != "remove") as store:
        if args.action == "remove":
            if not args.account_id:
                raise CliError("accounts remove needs an account id")
            if not await store.remove_account(args.account_id):
                raise CliError(f"unknown account: {args.account_id}")
            print(f"removed {args.account_id}")
            return EXIT_OK
        accounts = await _accounts(store)
        if not accounts:
            print(f"no accounts in {_where(store)}; run `weixin-trio login`")
            return EXIT_OK
    rows = [(a.account_id, a.user_id or "-", a.base_url, _date(a.created_at)) for a in accounts]
    _table(("account", "owner", "base url", "created"), rows)
    return EXIT_OK


def _date(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """A rich table on a terminal; tab-separated lines otherwise (for scripts)."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        Console = Table = None  # type: ignore[assignment,misc]
    if Console is None or Table is None or not sys.stdout.isatty():
        print("\t".join(header))
        for row in rows:
            print("\t".join(row))
        return
    table = Table(*header)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


async def cmd_status(args: Any) -> int:
    """``weixin-trio status``: stored journal state and the last heartbeat of ``run``.

    Reads only (never locks, compacts or writes), so it is safe next to a running bot.
    """
    async with _open_store(args, read_only=True) as store:
        rows = []
        for account in await _accounts(store):
            state = await store.load(account.account_id)
            beat = await _read_status(store, account.account_id)
            last_poll = beat.get("last_poll_at")
            paused = beat.get("paused_until")
            rows.append(
                (
                    account.account_id,
                    str(beat.get("node") or "-"),
                    _ago(last_poll) if last_poll else "never",
                    _until(paused) if paused and paused > time.time() else "no",
                    "yes" if beat.get("stale_tokens") else "no",
                    str(len(state.pending)),
                    str(len(state.dead_letters)),
                    str(len(state.outbox)),
                    str(beat.get("store_failures", "-")),
                )
            )
        if not rows:
            print(f"no accounts in {_where(store)}")
            return EXIT_OK
        free = await trio.to_thread.run_sync(_free_space, store)
    header = (
        "account",
        "node",
        "last poll",
        "paused",
        "stale token",
        "pending",
        "dead",
        "queued",
        "store errors",
    )
    _table(header, rows)
    if free:
        print(free)
    return EXIT_OK


def _free_space(store: AnyStore) -> str | None:
    """A line on the free space of a FileStore's directory (a full disk stops journaling)."""
    if not isinstance(store, FileStore):
        return None
    try:
        usage = shutil.disk_usage(store.path)
    except OSError:
        return None
    warning = "  (LOW: journal writes fail when it runs out)" if usage.free < 64 << 20 else ""
    return f"free space in {store.path}: {usage.free >> 20} MiB{warning}"


def _ago(t: float) -> str:
    return f"{max(0, int(time.time() - t))} s ago"


def _until(t: float) -> str:
    return f"for {int(t - time.time())} s"


def load_handler(spec: str) -> Handler:
    """Import ``MODULE:HANDLER``."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise CliError(f"handler must look like MODULE:HANDLER, not {spec!r}")
    sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise CliError(f"cannot import {module_name}: {type(exc).__name__}: {exc}") from None
    handler = getattr(module, attr, None)
    if not callable(handler):
        raise CliError(f"{module_name} has no callable {attr}")
    result: Handler = handler
    return result


def _cdn_options(args: Any) -> dict[str, Any]:
    """``cdn_base_url`` and ``cdn_hosts`` of ``open_client`` from the command line."""
    options: dict[str, Any] = {}
    if args.cdn_base_url:
        options["cdn_base_url"] = args.cdn_base_url
    if args.allow_cdn_host:
        base_host = urlsplit(args.cdn_base_url or DEFAULT_CDN_BASE_URL).hostname
        hosts = set(DEFAULT_CDN_HOSTS) | set(args.allow_cdn_host)
        options["cdn_hosts"] = frozenset(hosts | ({base_host} if base_host else set()))
    return options


def _client_options(args: Any) -> dict[str, Any]:
    options = _cdn_options(args)
    if args.no_pacing:
        options["pacing"] = None
    return options


_REFUSED_HOST = re.compile(r"CDN host '([^']*)' is not in the allowed hosts")


def _cdn_hint(exc: CdnError) -> CliError | None:
    """A refused CDN host, as an error that names the options which allow it."""
    match = _REFUSED_HOST.search(str(exc))
    if match is None:
        return None
    host = match.group(1)
    return CliError(
        f"{exc}: allow it with --allow-cdn-host {host}"
        f" (or give that server's CDN with --cdn-base-url URL)"
    )


async def cmd_send(args: Any) -> int:
    """``weixin-trio send USER TEXT`` or ``--file PATH`` (with a progress bar)."""
    if (args.text is None) == (args.file is None):
        raise CliError("give either TEXT or --file PATH")
    # Read-only: a running bot's journal is never touched (send records nothing).
    async with _open_store(args, read_only=True) as store:
        accounts = await _accounts(store, [args.account] if args.account else None)
        if not accounts:
            raise CliError(f"no accounts in {_where(store)}; run `weixin-trio login` first")
        if len(accounts) > 1:
            raise CliError("several accounts: choose one with --account")
        account = accounts[0]
        try:
            state = await store.load(account.account_id)
        except StoreError as exc:
            raise CliError(str(exc)) from None
    options = _cdn_options(args)
    async with open_client(
        token=account.token,
        base_url=args.base_url or account.base_url,
        account_id=account.account_id,
        context_tokens=state.context_tokens,
        **options,
    ) as client:
        if args.file is not None:
            if not args.file.is_file():
                raise CliError(f"no such file: {args.file}")
            try:
                result = await _send_file(client, args.user, args.file)
            except CdnError as exc:
                hint = _cdn_hint(exc)
                if hint is None:
                    raise
                raise hint from None
        else:
            result = await client.send_text(args.user, args.text)
    print(f"sent (client_id {result.client_id}, message_id {result.message_id})")
    return EXIT_OK


async def _send_file(client: Any, user: str, path: Path) -> Any:
    try:
        from rich.progress import Progress
    except ImportError:
        return await client.send_media(user, path)
    with Progress() as progress:
        task = progress.add_task(f"uploading {path.name}", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return await client.send_media(user, path, progress=advance)


async def cmd_demo(args: Any) -> int:
    """``weixin-trio demo``."""
    from .demo import run_demo

    return await run_demo(args.users, args.messages)
