"""Account leases: N processes on any number of machines share the accounts.

Each process registers itself in a heartbeat set and, every ``lease_ttl / 3`` seconds,
renews its leases, reads the account list and claims or releases accounts so that each
live process holds its fair share (the rounds: `_coordinator`; the plan:
`plan_leases`).

Safety:

- A lease is a Redis key set with ``SET NX PX`` to a random token; only the holder
  can renew or delete it (Lua compare-and-set).
- Every journal and cursor write of an account is fenced by the token (checked in the
  same Lua script as the write), so a process that lost its lease cannot write.
- Each account's monitor runs under a trio deadline of *last renewal sent + 0.8 TTL*:
  if renewals stop succeeding (Redis unreachable, a stalled process), polling stops
  before the lease can expire and another process can claim the account. At most one
  process polls an account at any time.
- A released account is drained (its running handlers finish) before its lease is
  deleted, so the next owner starts after the last handler of the previous one.
- A dead process's leases expire after ``lease_ttl``; the new owner loads the journal
  and redelivers every unfinished message (replies keep their deterministic
  ``client_id``, so WeChat shows them once).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, final

from .._monitor.accounts import open_accounts
from .._util import unwrap_single_error
from ..login import Account
from ._coordinator import LeaseCoordinator, open_coordinator
from ._lease_table import Leases, default_node_id

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from .._monitor.accounts import AccountRunner
    from .._monitor.values import Handler, MonitorStatistics
    from ._store import RedisStore

__all__ = [
    "LeasedAccounts",
    "Leases",
    "default_node_id",
    "open_leased_accounts",
    "stored_accounts",
]

log = logging.getLogger("weixin_trio.leases")


async def stored_accounts(store: RedisStore) -> dict[str, Account]:
    """Every account stored in ``store`` that parses, by id (corrupt ones are logged)."""
    accounts = {}
    for data in await store.load_accounts():
        try:
            account = Account.from_json(data)
        except ValueError as exc:
            log.error("skipping a corrupt stored account: %s", exc)
            continue
        accounts[account.account_id] = account
    return accounts


@final
class LeasedAccounts:
    """The accounts this process holds, in one `open_leased_accounts` block."""

    def __init__(self, store: RedisStore, runner: AccountRunner) -> None:
        self._store = store
        self._runner = runner
        self.coordinator: LeaseCoordinator[Account] | None = None

    @property
    def _coordinator(self) -> LeaseCoordinator[Account]:
        assert self.coordinator is not None
        return self.coordinator

    @property
    def node_id(self) -> str:
        """This process's id."""
        return self._coordinator.node_id

    @property
    def nodes(self) -> list[str]:
        """The live processes seen in the last round (sorted)."""
        return self._coordinator.nodes

    @property
    def lost(self) -> int:
        """How many leases this process lost (stolen, or expired under it)."""
        return self._coordinator.lost

    @property
    def account_ids(self) -> list[str]:
        """Accounts whose lease this process holds (sorted)."""
        return self._coordinator.held

    @property
    def runner(self) -> AccountRunner:
        """The runner of the held accounts' monitors."""
        return self._runner

    def statistics(self) -> dict[str, MonitorStatistics]:
        """A statistics snapshot of every running monitor."""
        return self._runner.statistics()

    async def wait_changed(self) -> None:
        """Wait until the set of held accounts changes.

        Cancellation:
            Safe.
        """
        await self._coordinator.wait_changed()

    # --- LeaseTarget ------------------------------------------------------------------

    async def resources(self) -> dict[str, Account]:
        """Every stored account that parses (a corrupt one is logged and skipped)."""
        return await stored_accounts(self._store)

    def start(self, name: str, resource: Account, token: str, deadline: float) -> None:
        """Fence the account's writes with the lease token and start its monitor."""
        self._store.fence(name, token)
        self._runner.start_soon(resource, deadline=deadline)

    def extend(self, name: str, deadline: float) -> bool:
        """Push the account's safe end; ``False`` if its monitor no longer runs."""
        if not self._runner.running(name):
            return False
        self._runner.set_deadline(name, deadline)
        return True

    def stop_now(self, name: str) -> None:
        """The lease is gone: stop at once, without a drain or ``notifystop``.

        Running handlers are cancelled (their messages stay pending for the new owner,
        whose replies reuse the same ``client_id``\\ s), so they cannot overlap with
        the new owner's; fenced writes fail meanwhile.
        """
        self._runner.remove(name, drain_timeout=0, notify=False)

    async def drain(self, name: str) -> None:
        """Stop the account's monitor gracefully and wait for it."""
        await self._runner.remove_and_wait(name)

    def released(self, name: str) -> None:
        """Writes of the account are no longer fenced by this process.

        Not while its monitor is still stopping (after a lost lease): its last writes
        must keep failing. A later claim fences the account with the new token.
        """
        if self._runner.monitor(name) is None:
            self._store.fence(name, None)


@asynccontextmanager
async def open_leased_accounts(
    handler: Handler,
    *,
    store: RedisStore,
    node_id: str | None = None,
    lease_ttl: float = 15.0,
    client_options: Mapping[str, Any] | None = None,
    **monitor_options: Any,
) -> AsyncIterator[LeasedAccounts]:
    """Serve this process's share of the accounts stored in ``store``.

    Start the same code in as many processes (on as many machines) as needed: they
    share the accounts through leases, take over the accounts of a process that died
    within ``lease_ttl`` seconds, and rebalance when a process joins or leaves. Accounts
    saved later (a new QR login) are picked up at the next round.

    Args:
        handler: The message handler.
        store: The shared [`RedisStore`][weixin_trio.redis.RedisStore] (accounts, journals, leases).
        node_id: This process's id (default: host, pid and a random suffix).
        lease_ttl: Lease lifetime in seconds. A dead process's accounts wait this long
            before another process takes them; renewals run every third of it.
        client_options: Extra arguments for [`open_client`][weixin_trio.open_client].
        **monitor_options: Options of [`open_monitor`][weixin_trio.open_monitor].

    Yields:
        The [`LeasedAccounts`][weixin_trio.redis.LeasedAccounts] of this process.

    Exceptions: one exception from the block (yours, or an internal failure) reaches
    the caller as itself, not wrapped in an ``ExceptionGroup``; several at once arrive
    as one ``ExceptionGroup`` of them.

    Cancellation:
        Leaving the block stops every held account the way `open_monitor` stops
        (drain, flush, ``notifystop``), then releases the leases so that the other
        processes take the accounts over at once.
    """
    if lease_ttl <= 0:
        raise ValueError("lease_ttl must be positive")
    leases = Leases(
        store.client, prefix=store.prefix, node_id=node_id or default_node_id(), ttl=lease_ttl
    )
    drain_timeout = float(monitor_options.get("drain_timeout", 10.0)) + 10.0
    with unwrap_single_error():
        async with open_accounts(
            handler, store=store, client_options=client_options, **monitor_options
        ) as runner:
            leased = LeasedAccounts(store, runner)
            async with open_coordinator(leases, leased, drain_timeout=drain_timeout) as coordinator:
                leased.coordinator = coordinator
                yield leased
        # The coordinator drained every held account before it released the leases.
