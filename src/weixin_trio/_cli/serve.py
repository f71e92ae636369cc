"""``weixin-trio run`` and ``worker``: serving accounts until a signal, heartbeats."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from .._monitor.accounts import AccountRunner, open_accounts
from ..store import FileStore, StoreError, StoreLockedError
from .commands import _client_options, load_handler
from .common import EXIT_INTERRUPTED, EXIT_OK, CliError
from .limits import raise_nofile_limit
from .ops_options import OpsAddress, ops_address
from .stores import _accounts, _open_store, _where, _write_status

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from .._monitor.values import Handler
    from ..login import Account
    from ..redis import RedisStore

    AnyStore = FileStore | RedisStore


log = logging.getLogger("weixin_trio.cli")


async def cmd_run(args: Any) -> int:
    """``weixin-trio run MODULE:HANDLER``: SIGINT/SIGTERM drain and stop; twice: at once."""
    raise_nofile_limit()  # one fd per parked account
    if args.fanout and not args.redis:
        raise CliError("--fanout needs --redis URL")
    if args.fanout == (args.handler is not None):
        raise CliError("give MODULE:HANDLER, or --fanout (the workers run the handler)")
    handler = load_handler(args.handler) if args.handler is not None else None
    options = _client_options(args)
    ops = ops_address(args)
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
                store, accounts, handler, client_options=options, ops=ops, **_monitor_options(args)
            )
        if args.account:
            raise CliError("--account cannot be used with --redis: accounts are leased")
        if handler is None:
            from ..redis import StreamPublisher, agree_partitions

            partitions = await _agree(agree_partitions, store, args.partitions)
            handler = StreamPublisher(store, partitions=partitions)
        return await run_leased(
            store,
            handler,
            client_options=options,
            lease_ttl=args.lease_ttl,
            node_id=args.node_id,
            ops=ops,
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
    raise_nofile_limit()
    if not args.redis:
        raise CliError("worker needs --redis URL")
    handler = load_handler(args.handler)
    ops = ops_address(args)
    from ..redis import agree_partitions, open_fanout_worker

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
        return await _serve_until_signal(runner, store, banner, None, heartbeat=False, ops=ops)


async def run_accounts(
    store: FileStore,
    accounts: list[Account],
    handler: Handler,
    *,
    client_options: dict[str, Any] | None = None,
    ready: trio.Event | None = None,
    ops: OpsAddress | None = None,
    **monitor_options: Any,
) -> int:
    """Run ``handler`` on ``accounts`` until SIGINT/SIGTERM; returns the exit code."""
    runner = open_accounts(
        handler, accounts, store=store, client_options=client_options, **monitor_options
    )
    banner = f"running {len(accounts)} account(s); Ctrl+C to stop"
    return await _serve_until_signal(runner, store, banner, ready, ops=ops)


async def run_leased(
    store: RedisStore,
    handler: Handler,
    *,
    client_options: dict[str, Any] | None = None,
    lease_ttl: float = 15.0,
    node_id: str | None = None,
    ready: trio.Event | None = None,
    ops: OpsAddress | None = None,
    **monitor_options: Any,
) -> int:
    """Serve this process's leased share of the accounts in Redis until a signal."""
    from ..redis import open_leased_accounts

    runner = open_leased_accounts(
        handler,
        store=store,
        lease_ttl=lease_ttl,
        node_id=node_id,
        client_options=client_options,
        **monitor_options,
    )
    banner = f"running a leased share of the accounts in {_where(store)}; Ctrl+C to stop"
    return await _serve_until_signal(runner, store, banner, ready, ops=ops)


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
    ops: OpsAddress | None = None,
) -> int:
    """Enter ``runner`` until SIGINT/SIGTERM; returns the exit code.

    The first signal drains and stops (exit 0). A second one cuts the drain short:
    running handlers are cancelled at once (their messages stay pending and are
    redelivered at the next start), ``notifystop`` is skipped, and the exit code is
    130. A signal while still starting cancels the start (130). Should the cut stop
    not finish within `HARD_STOP_AFTER` seconds, or on a third signal, the
    process exits at once, as after a kill (the journal is crash-safe).

    With ``ops``, ``/metrics``, ``/healthz`` and ``/readyz`` are served once the
    runner has started, until the process stops (their URL is printed before the
    banner; a port already in use fails the command).
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
                        if ops is not None:
                            await _start_ops(nursery, running, ops)
                        print(banner, flush=True)
                        if ready is not None:
                            ready.set()
                        await stopper.stop.wait()
                nursery.cancel_scope.cancel()
        finally:
            stopper.close()
    return EXIT_INTERRUPTED if stopper.cut else EXIT_OK


async def _start_ops(nursery: trio.Nursery, running: Any, ops: OpsAddress) -> None:
    """Serve the operations port for ``running`` in ``nursery``; print its URL."""
    from .._ops.serve import serve_ops

    url = await nursery.start(partial(serve_ops, running, host=ops.host, port=ops.port))
    print(f"metrics on {url}/metrics (health: /healthz, /readyz)", flush=True)


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
