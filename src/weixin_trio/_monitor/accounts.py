"""Several accounts in one process: one client and monitor per account, one nursery.

Each account runs under a supervisor task: if its monitor crashes (the store failed,
the server misbehaved), the error is logged and the account restarts after a backoff,
while the others keep running. Accounts can be added and removed at runtime, so a
fresh QR login attaches without a restart.
"""

from __future__ import annotations

import logging
import math
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, final

import attrs
import trio

from .._client.open import AccountLike, open_client
from .._proto.backoff import Backoff
from .._util import unwrap_single_error
from ..store import LeaseLostError, StoreLockedError
from .open import open_monitor
from .values import check_handler

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Mapping

    from ..store import Store
    from .monitor import Monitor
    from .values import Handler, MonitorStatistics

__all__ = ["AccountLike", "AccountRunner", "open_accounts"]


log = logging.getLogger("weixin_trio.accounts")

#: Initial accounts of `open_accounts` that start at the same time.
START_CONCURRENCY = 64


@final
class AccountRunner:
    """The accounts running in one [`open_accounts`][weixin_trio.open_accounts] block."""

    def __init__(
        self,
        nursery: trio.Nursery,
        handler: Handler,
        store: Store,
        client_options: Mapping[str, Any],
        monitor_options: Mapping[str, Any],
        restart_backoff: Backoff,
    ) -> None:
        self._nursery = nursery
        self._handler = handler
        self._store = store
        self._client_options = client_options
        self._monitor_options = monitor_options
        self._restart_backoff = restart_backoff
        self._scopes: dict[str, trio.CancelScope] = {}
        self._monitors: dict[str, Monitor] = {}
        self._stopped: dict[str, trio.Event] = {}
        self._deadlines: dict[str, float] = {}
        self._deadline_moved: dict[str, trio.Event] = {}
        self.failures: dict[str, int] = {}

    @property
    def account_ids(self) -> list[str]:
        """Ids of the accounts being run (sorted)."""
        return sorted(self._scopes)

    def monitor(self, account_id: str) -> Monitor | None:
        """The running monitor of an account (``None`` while it (re)starts)."""
        return self._monitors.get(account_id)

    def statistics(self) -> dict[str, MonitorStatistics]:
        """A statistics snapshot of every running monitor."""
        return {k: m.statistics() for k, m in sorted(self._monitors.items())}

    async def add(self, account: AccountLike, *, deadline: float = math.inf) -> None:
        """Start running ``account``; returns once its monitor runs (or first failed).

        Args:
            account: The account.
            deadline: A ``trio.current_time()`` at which the account stops without a
                drain (see `set_deadline`, which moves it).

        Raises:
            ValueError: The account is already running.

        Cancellation:
            Safe; the account keeps starting in the background.
        """
        scope = self._register(account, deadline)
        await self._nursery.start(self._supervise, account, scope)

    def start_soon(self, account: AccountLike, *, deadline: float = math.inf) -> None:
        """Like `add`, without waiting for the monitor to start.

        Raises:
            ValueError: The account is already running.
        """
        scope = self._register(account, deadline)
        self._nursery.start_soon(self._supervise, account, scope)

    async def _add_all(self, accounts: Iterable[AccountLike]) -> None:
        """`add` every account, up to `START_CONCURRENCY` of them at a time.

        Registration stays in order (a duplicate raises ``ValueError`` once the accounts
        before it started); each start still waits until its monitor runs or first
        failed, and a failure is handled by the account's supervisor, as with `add`.
        """
        slots = trio.Semaphore(START_CONCURRENCY)

        async def start(account: AccountLike, scope: trio.CancelScope) -> None:
            try:
                await self._nursery.start(self._supervise, account, scope)
            finally:
                slots.release()

        duplicate: ValueError | None = None
        async with trio.open_nursery() as starting:
            for account in accounts:
                await slots.acquire()
                try:
                    scope = self._register(account, math.inf)
                except ValueError as exc:
                    duplicate = exc
                    break
                starting.start_soon(start, account, scope)
        if duplicate is not None:
            raise duplicate

    def _register(self, account: AccountLike, deadline: float) -> trio.CancelScope:
        if account.account_id in self._scopes:
            raise ValueError(f"account {account.account_id} is already running")
        scope = trio.CancelScope(deadline=deadline)
        self._scopes[account.account_id] = scope
        self._deadlines[account.account_id] = deadline
        self._stopped.setdefault(account.account_id, trio.Event())
        return scope

    def running(self, account_id: str) -> bool:
        """Whether the account is being run (started and not yet stopped)."""
        return account_id in self._scopes

    def set_deadline(self, account_id: str, deadline: float) -> None:
        """Move the time at which an account stops (a lease's safe end, say).

        At the deadline the account stops *without* a drain or ``notifystop``: its
        running handlers are cancelled (their messages stay pending) and it is not
        restarted. Use `remove` for a graceful stop.
        """
        scope = self._scopes.get(account_id)
        if scope is None:
            return
        self._deadlines[account_id] = deadline
        if account_id not in self._monitors:
            scope.deadline = deadline  # still starting: plain cancellation
        self._deadline_moved.pop(account_id, trio.Event()).set()

    async def remove_and_wait(self, account_id: str) -> None:
        """`remove` the account and wait until its monitor has drained and stopped.

        Cancellation:
            Safe; the account keeps stopping in the background.
        """
        self.remove(account_id)
        await self.wait_stopped(account_id)

    async def wait_stopped(self, account_id: str) -> None:
        """Wait until no monitor of the account runs any more.

        Cancellation:
            Safe.
        """
        event = self._stopped.get(account_id)
        if event is not None:
            await event.wait()
        else:
            await trio.lowlevel.checkpoint()

    def remove(
        self, account_id: str, *, drain_timeout: float | None = None, notify: bool | None = None
    ) -> bool:
        """Stop running an account (its monitor drains and stops); returns if it ran.

        ``drain_timeout`` and ``notify`` are passed to [`Monitor.stop`][weixin_trio.Monitor.stop].
        """
        scope = self._scopes.pop(account_id, None)
        monitor = self._monitors.get(account_id)
        if monitor is not None:
            monitor.stop(drain_timeout=drain_timeout, notify=notify)
        elif scope is not None:
            scope.cancel()
        return scope is not None

    def stop(self) -> None:
        """Stop every account."""
        for account_id in list(self._scopes):
            self.remove(account_id)

    async def _supervise(
        self,
        account: AccountLike,
        scope: trio.CancelScope,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        backoff = attrs.evolve(self._restart_backoff)  # same policy, a fresh streak
        started = False
        account_id = account.account_id
        try:
            with scope:
                while self._scopes.get(account_id) is scope:
                    failure: ExceptionGroup[Exception] | None = None
                    try:
                        async with (
                            open_client(
                                token=account.token,
                                base_url=account.base_url,
                                account_id=account_id,
                                **self._client_options,
                            ) as client,
                            open_monitor(
                                client, self._handler, store=self._store, **self._monitor_options
                            ) as monitor,
                        ):
                            self._monitors[account_id] = monitor
                            scope.deadline = math.inf  # the watch below stops it instead
                            if not started:
                                started = True
                                task_status.started()
                            await self._watch_deadline(account_id, scope, monitor)
                    except* Exception as group:
                        # except*: an error that arrives together with a cancellation
                        # (e.g. a lost lease while the account stops) is still handled
                        # here, and only the Cancelled part propagates.
                        failure = group
                    finally:
                        self._monitors.pop(account_id, None)
                    if failure is not None:
                        self.failures[account_id] = self.failures.get(account_id, 0) + 1
                        if _caused_by(failure, LeaseLostError) or _caused_by(
                            failure, StoreLockedError
                        ):
                            log.warning("account %s stopped: %s", account_id, _describe(failure))
                            break  # another process owns it now: never restart here
                        log.error("account %s failed; restarting", account_id, exc_info=failure)
                    if self._scopes.get(account_id) is not scope:
                        break
                    if not started:
                        started = True
                        task_status.started()
                    await trio.sleep(backoff.next_delay())
        finally:
            if self._scopes.get(account_id) is scope:
                del self._scopes[account_id]
            if account_id not in self._scopes:
                self._deadlines.pop(account_id, None)
                self._stopped.pop(account_id, trio.Event()).set()
        if not started:
            task_status.started()

    async def _watch_deadline(
        self, account_id: str, scope: trio.CancelScope, monitor: Monitor
    ) -> None:
        """Wait (while the monitor runs) for the account's deadline; then stop it hard."""
        while True:
            moved = self._deadline_moved.setdefault(account_id, trio.Event())
            deadline = self._deadlines.get(account_id, math.inf)
            if deadline == math.inf:  # the common case: no cancel scope to hold
                await moved.wait()
                continue
            with trio.move_on_at(deadline) as timer:
                await moved.wait()
            if timer.cancelled_caught:
                break
        log.warning("account %s reached its deadline; stopping without a drain", account_id)
        if self._scopes.get(account_id) is scope:
            del self._scopes[account_id]  # no restart
        monitor.stop(drain_timeout=0, notify=False)
        await trio.sleep_forever()  # the stop cancels the monitor's body, and so this


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``exc``, its causes or (for groups) its members include a ``kind``."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, kind):
            return True
        if isinstance(e, BaseExceptionGroup):
            todo.extend(e.exceptions)
        for linked in (e.__cause__, e.__context__):
            if linked is not None:
                todo.append(linked)
    return False


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return str(exc)


@asynccontextmanager
async def open_accounts(
    handler: Handler,
    accounts: Iterable[AccountLike] = (),
    *,
    store: Store,
    client_options: Mapping[str, Any] | None = None,
    restart_backoff: Backoff | None = None,
    **monitor_options: Any,
) -> AsyncIterator[AccountRunner]:
    """Run ``handler`` on several accounts in one nursery.

    Args:
        handler: The message handler, shared by every account.
        accounts: Accounts to start with (more can be added with ``runner.add``).
        store: The store of every account (namespaced by account id).
        client_options: Extra arguments for `open_client` (e.g. ``transport``).
        restart_backoff: Delay policy for restarting a failed account (default 5 s,
            5 s, 60 s).
        **monitor_options: Options of [`open_monitor`][weixin_trio.open_monitor].

    Yields:
        The [`AccountRunner`][weixin_trio.AccountRunner], with every initial account started
        (up to 64 start at the same time; each has its monitor running, or failed once
        and is being restarted).

    Exceptions: one exception from the block (yours, or an internal failure) reaches
    the caller as itself, not wrapped in an ``ExceptionGroup``; several at once arrive
    as one ``ExceptionGroup`` of them.

    Cancellation:
        Leaving the block stops every account the way `open_monitor` stops.
    """
    check_handler(handler)
    with unwrap_single_error():
        async with trio.open_nursery() as nursery:
            runner = AccountRunner(
                nursery,
                handler,
                store,
                dict(client_options or {}),
                monitor_options,
                restart_backoff or Backoff(retry_delay=5.0, backoff_delay=60.0),
            )
            await runner._add_all(accounts)
            try:
                yield runner
            finally:
                runner.stop()
