"""The commands of ``weixin-trio`` (argument parsing and exit codes live in ``_cli``)."""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import shutil
import signal
import sys
import threading
import time
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import trio

from . import DEFAULT_CDN_BASE_URL, CdnError
from ._cli import EXIT_INTERRUPTED, EXIT_OK, CliError, default_state_dir
from ._cli_text import qr_text, status_text
from ._client import open_client
from ._multi import AccountRunner, open_accounts
from .cdn import DEFAULT_CDN_HOSTS
from .login import Account, QrCode, login
from .store import FileStore, StoreError, StoreLockedError, StoreUnavailableError
from .store._fsio import write_private
from .store._journal import encode_json

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from ._monitor_types import Handler
    from .redis import RedisStore

    AnyStore = FileStore | RedisStore

__all__ = [
    "cmd_accounts",
    "cmd_demo",
    "cmd_login",
    "cmd_run",
    "cmd_send",
    "cmd_status",
    "cmd_worker",
]

log = logging.getLogger("weixin_trio.cli")


@asynccontextmanager
async def _open_store(args: Any, *, read_only: bool = False) -> AsyncIterator[AnyStore]:
    """The FileStore under ``--state-dir``, or the RedisStore at ``--redis``.

    ``read_only``: the FileStore only reads (no lock, no compaction, no write), so it
    is safe next to a running bot; a writer FileStore is closed (its locks released)
    when the block ends.
    """
    if not args.redis:
        async with FileStore(args.state_dir or default_state_dir(), read_only=read_only) as fs:
            yield fs
        return
    try:
        from .redis import open_redis_store
    except ImportError:
        raise CliError("--redis needs the redis extra: pip install 'weixin-trio[redis]'") from None
    try:
        async with open_redis_store(args.redis, prefix=args.redis_prefix) as store:
            yield store
    except StoreUnavailableError as exc:
        raise CliError(str(exc)) from None


def _where(store: AnyStore) -> str:
    """Where a store keeps its data (a Redis URL is shown without its password)."""
    if isinstance(store, FileStore):
        return str(store.path)
    return f"{store.url} (prefix {store.prefix})"


async def _accounts(store: AnyStore, wanted: list[str] | None = None) -> list[Account]:
    try:
        accounts = [Account.from_json(d) for d in await store.load_accounts()]
    except ValueError as exc:
        raise CliError(f"corrupt account in {_where(store)}: {exc}") from None
    if wanted:
        known = {a.account_id for a in accounts}
        missing = [w for w in wanted if w not in known]
        if missing:
            raise CliError(f"unknown account(s): {', '.join(missing)}")
        accounts = [a for a in accounts if a.account_id in wanted]
    return accounts


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


def _status_path(store: FileStore, account_id: str) -> Path:
    return store.account_dir(account_id) / "status.json"


async def _write_status(store: AnyStore, account_id: str, beat: dict[str, Any]) -> None:
    """Publish an account's heartbeat (a file, or a field of ``<prefix>:status``).

    The file is replaced atomically (complete, or the old one stays), so a reader never
    sees half a heartbeat.
    """
    if isinstance(store, FileStore):
        path = _status_path(store, account_id)
        body = encode_json(beat)
        await trio.to_thread.run_sync(write_private, path.parent, path.name, body)
    else:
        from .redis._store import redis_errors

        with redis_errors("writing the status"):
            await store.client.hset(f"{store.prefix}:status", {account_id: json.dumps(beat)})


async def _read_status(store: AnyStore, account_id: str) -> dict[str, Any]:
    raw: str | None
    if isinstance(store, FileStore):
        path = _status_path(store, account_id)
        try:
            raw = await trio.Path(path).read_text()
        except (OSError, ValueError):
            raw = None
    else:
        raw = await store.client.hget(f"{store.prefix}:status", account_id)
    try:
        beat = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return beat if isinstance(beat, dict) else {}


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


async def cmd_run(args: Any) -> int:
    """``weixin-trio run MODULE:HANDLER``: SIGINT/SIGTERM drain and stop; twice: at once."""
    if args.fanout and not args.redis:
        raise CliError("--fanout needs --redis URL")
    if args.fanout == (args.handler is not None):
        raise CliError("give MODULE:HANDLER, or --fanout (the workers run the handler)")
    handler = load_handler(args.handler) if args.handler is not None else None
    options = _client_options(args)
    async with _open_store(args) as store:
        if isinstance(store, FileStore):
            assert handler is not None
            accounts = await _accounts(store, args.account or None)
            if not accounts:
                raise CliError(f"no accounts in {store.path}; run `weixin-trio login` first")
            for account in accounts:  # take every writer lock before anything starts
                try:
                    await store.load(account.account_id)
                except StoreLockedError as exc:
                    raise CliError(f"{exc}: is another `weixin-trio run` using it?") from None
            return await run_accounts(
                store, accounts, handler, client_options=options, **_monitor_options(args)
            )
        if args.account:
            raise CliError("--account cannot be used with --redis: accounts are leased")
        if handler is None:
            from .redis import StreamPublisher, agree_partitions

            partitions = await _agree(agree_partitions, store, args.partitions)
            handler = StreamPublisher(store, partitions=partitions)
        return await run_leased(
            store,
            handler,
            client_options=options,
            lease_ttl=args.lease_ttl,
            node_id=args.node_id,
            **_monitor_options(args),
        )


def _monitor_options(args: Any) -> dict[str, Any]:
    return {
        "max_concurrency": args.max_concurrency,
        "drain_timeout": args.drain_timeout,
        "handler_timeout": args.handler_timeout,
    }


async def _agree(agree: Any, store: RedisStore, partitions: int | None) -> int:
    try:
        count: int = await agree(store, partitions)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return count


async def cmd_worker(args: Any) -> int:
    """``weixin-trio worker MODULE:HANDLER --redis URL``: handle fanned-out messages."""
    if not args.redis:
        raise CliError("worker needs --redis URL")
    handler = load_handler(args.handler)
    from .redis import agree_partitions, open_fanout_worker

    async with _open_store(args) as store:
        assert not isinstance(store, FileStore)
        partitions = await _agree(agree_partitions, store, args.partitions)
        runner = open_fanout_worker(
            handler,
            store=store,
            node_id=args.node_id,
            partitions=partitions,
            lease_ttl=args.lease_ttl,
            client_options=_client_options(args),
            **_monitor_options(args),
        )
        banner = f"worker handling {partitions} partition(s) in {_where(store)}; Ctrl+C to stop"
        return await _serve_until_signal(runner, store, banner, None, heartbeat=False)


async def run_accounts(
    store: FileStore,
    accounts: list[Account],
    handler: Handler,
    *,
    client_options: dict[str, Any] | None = None,
    ready: trio.Event | None = None,
    **monitor_options: Any,
) -> int:
    """Run ``handler`` on ``accounts`` until SIGINT/SIGTERM; returns the exit code."""
    runner = open_accounts(
        handler, accounts, store=store, client_options=client_options, **monitor_options
    )
    banner = f"running {len(accounts)} account(s); Ctrl+C to stop"
    return await _serve_until_signal(runner, store, banner, ready)


async def run_leased(
    store: RedisStore,
    handler: Handler,
    *,
    client_options: dict[str, Any] | None = None,
    lease_ttl: float = 15.0,
    node_id: str | None = None,
    ready: trio.Event | None = None,
    **monitor_options: Any,
) -> int:
    """Serve this process's leased share of the accounts in Redis until a signal."""
    from .redis import open_leased_accounts

    runner = open_leased_accounts(
        handler,
        store=store,
        lease_ttl=lease_ttl,
        node_id=node_id,
        client_options=client_options,
        **monitor_options,
    )
    banner = f"running a leased share of the accounts in {_where(store)}; Ctrl+C to stop"
    return await _serve_until_signal(runner, store, banner, ready)


#: Seconds a cut-short stop may take before the process exits by force (a handler that
#: ignores cancellation, a store that hangs).
HARD_STOP_AFTER = 5.0


async def _serve_until_signal(
    runner: AbstractAsyncContextManager[Any],
    store: AnyStore,
    banner: str,
    ready: Any,
    *,
    heartbeat: bool = True,
) -> int:
    """Enter ``runner`` until SIGINT/SIGTERM; returns the exit code.

    The first signal drains and stops (exit 0). A second one cuts the drain short:
    running handlers are cancelled at once (their messages stay pending and are
    redelivered at the next start), ``notifystop`` is skipped, and the exit code is
    130. A signal while still starting cancels the start (130). Should the cut stop
    not finish within `HARD_STOP_AFTER` seconds, or on a third signal, the
    process exits at once, as after a kill (the journal is crash-safe).
    """
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        stopper = _Stopper()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(stopper.watch, signals)
                with stopper.run_scope:
                    async with runner as running:
                        stopper.running = running
                        if heartbeat:  # per-account monitor statistics (workers have none)
                            nursery.start_soon(_heartbeat, store, running)
                        print(banner, flush=True)
                        if ready is not None:
                            ready.set()
                        await stopper.stop.wait()
                nursery.cancel_scope.cancel()
        finally:
            stopper.close()
    return EXIT_INTERRUPTED if stopper.cut else EXIT_OK


class _Stopper:
    """What the signals of ``_serve_until_signal`` do: drain, then cut, then exit."""

    def __init__(self) -> None:
        self.run_scope = trio.CancelScope()
        self.running: Any = None
        self.stop = trio.Event()
        self.cut = False
        self._timer: threading.Timer | None = None

    async def watch(self, signals: Any) -> None:
        async for signum in signals:
            if self.cut:
                _exit_now(None)
            elif self.running is not None and not self.stop.is_set():
                log.info("signal %d: stopping (drain)", signum)
                self.stop.set()
            else:
                self._cut_short()

    def _cut_short(self) -> None:
        self.cut = True
        print(
            "weixin-trio: interrupted: stopping now, without a drain"
            " (unfinished messages are redelivered at the next start)",
            file=sys.stderr,
            flush=True,
        )
        if self.running is not None:
            _cancel_handlers(self.running)
        self.run_scope.cancel()
        self._timer = threading.Timer(HARD_STOP_AFTER, _exit_now, [HARD_STOP_AFTER])
        self._timer.daemon = True
        self._timer.start()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _cancel_handlers(running: Any) -> None:
    """Cut every drain short: running handlers are cancelled now, messages stay pending."""
    runner = getattr(running, "runner", running)  # LeasedAccounts wraps an AccountRunner
    if isinstance(runner, AccountRunner):
        for account_id in runner.statistics():  # the accounts whose monitor runs
            monitor = runner.monitor(account_id)
            if monitor is not None:
                monitor.stop(drain_timeout=0, notify=False)
        return
    for partition in getattr(running, "held", ()):  # a fan-out worker
        running.stop_now(str(partition))


def _exit_now(waited: float | None) -> None:
    """Leave at once, without unwinding: the last resort of a stop (or a third signal)."""
    if waited is not None:
        os.write(2, f"weixin-trio: not stopped after {waited:g} s; exiting now\n".encode())
    os._exit(EXIT_INTERRUPTED)


async def _heartbeat(store: AnyStore, runner: Any) -> None:
    """Write each account's statistics (wall-clock times) every few seconds."""
    offset = time.time() - trio.current_time()
    node = getattr(runner, "node_id", None)
    while True:
        for account_id, stats in runner.statistics().items():
            beat = {
                "last_poll_at": stats.last_poll_at and stats.last_poll_at + offset,
                "paused_until": stats.paused_until and stats.paused_until + offset,
                "stale_tokens": stats.stale_tokens,
                "pending": stats.pending,
                "handled": stats.handled,
                "store_failures": stats.store_failures,
                "node": node,
                "written_at": time.time(),
            }
            try:
                await _write_status(store, account_id, beat)
            except (OSError, StoreError) as exc:
                log.debug("cannot write the status of %s: %s", account_id, exc)
        await trio.sleep(5)


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
    from ._demo import run_demo

    return await run_demo(args.users, args.messages)
