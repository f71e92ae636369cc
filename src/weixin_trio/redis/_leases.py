"""Account leases: N processes on any number of machines share the accounts.

Each process registers itself in a heartbeat set and, every ``lease_ttl / 3`` seconds,
renews its leases, reads the account list and claims or releases accounts so that each
live process holds its fair share (:func:`~._balance.plan_leases`).

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
import os
import secrets
import socket
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, final

import attrs
import trio

from .._multi import open_accounts
from ..login import Account
from ..store._base import StoreError
from . import _scripts
from ._balance import plan_leases
from ._store import redis_errors

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from .._monitor_types import Handler, MonitorStatistics
    from .._multi import AccountRunner
    from ._store import RedisClient, RedisStore

__all__ = ["LeasedAccounts", "Leases", "default_node_id", "open_leased_accounts"]

log = logging.getLogger("weixin_trio.leases")

#: Part of the TTL a monitor may run after the last renewal was *sent*.
SAFE_FRACTION = 0.8


def default_node_id() -> str:
    """``<host>-<pid>-<random>``: unique per process, readable in ``status``."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@final
class Leases:
    """Lease primitives on one Redis: claim, renew, release and node heartbeats.

    Args:
        client: The Redis client (``decode_responses=True``).
        prefix: Key prefix (the store's).
        node_id: This process's id.
        ttl: Lease lifetime in seconds.
    """

    def __init__(self, client: RedisClient, *, prefix: str, node_id: str, ttl: float) -> None:
        self.client = client
        self.prefix = prefix
        self.node_id = node_id
        self.ttl_ms = max(1, round(ttl * 1000))
        self._renew = client.register_script(_scripts.RENEW)
        self._release = client.register_script(_scripts.RELEASE)
        self._heartbeat = client.register_script(_scripts.HEARTBEAT)

    @property
    def nodes_key(self) -> str:
        """The sorted set of live processes."""
        return f"{self.prefix}:nodes"

    def key(self, name: str) -> str:
        """The lease key of account ``name``."""
        return _scripts.lease_key(self.prefix, name)

    async def claim(self, name: str) -> str | None:
        """Take the lease of ``name`` if it is free; returns its token."""
        token = f"{self.node_id}/{secrets.token_hex(8)}"
        with redis_errors(f"claiming {name}"):
            ok = await self.client.set(self.key(name), token, condition=_nx(), px=self.ttl_ms)
        return token if ok else None

    async def renew(self, name: str, token: str) -> bool:
        """Extend our lease of ``name``; ``False`` if it is no longer ours."""
        with redis_errors(f"renewing {name}"):
            result: Any = await self._renew(keys=[self.key(name)], args=[token, self.ttl_ms])
        return bool(result)

    async def release(self, name: str, token: str) -> bool:
        """Delete our lease of ``name``; ``False`` if it was no longer ours."""
        with redis_errors(f"releasing {name}"):
            result: Any = await self._release(keys=[self.key(name)], args=[token])
        return bool(result)

    async def owner(self, name: str) -> str | None:
        """The node holding ``name``'s lease (``None``: free)."""
        with redis_errors(f"reading the lease of {name}"):
            token = await self.client.get(self.key(name))
        return None if token is None else token.rsplit("/", 1)[0]

    async def heartbeat(self, *, leaving: bool = False) -> list[str]:
        """Announce this node (or its departure); returns the live nodes, sorted."""
        args: list[str | int] = [self.node_id, self.ttl_ms, "1" if leaving else "0"]
        with redis_errors("sending a heartbeat"):
            nodes: Any = await self._heartbeat(keys=[self.nodes_key], args=args)
        return sorted(str(n) for n in nodes)


def _nx() -> Any:
    from coredis import PureToken

    return PureToken.NX


@attrs.define
class _Held:
    token: str
    releasing: bool = False


@final
class LeasedAccounts:
    """The accounts this process holds, in one :func:`open_leased_accounts` block."""

    def __init__(
        self,
        store: RedisStore,
        leases: Leases,
        runner: AccountRunner,
        nursery: trio.Nursery,
        interval: float,
    ) -> None:
        self._store = store
        self._leases = leases
        self._runner = runner
        self._nursery = nursery
        self._interval = interval
        self._held: dict[str, _Held] = {}
        self._changed = trio.Event()
        self.nodes: list[str] = []
        self.lost: int = 0

    @property
    def node_id(self) -> str:
        """This process's id."""
        return self._leases.node_id

    @property
    def account_ids(self) -> list[str]:
        """Accounts whose lease this process holds (sorted)."""
        return sorted(self._held)

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
        await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _safe_end(self, sent: float) -> float:
        """The local time our lease is surely still valid until, for a renewal sent then."""
        return sent + SAFE_FRACTION * self._leases.ttl_ms / 1000

    async def _tick(self) -> None:
        """One round: heartbeat, renew, plan, release, claim."""
        sent = trio.current_time()
        self.nodes = await self._leases.heartbeat()
        accounts = self._parse(await self._store.load_accounts())
        for name, held in list(self._held.items()):
            if not await self._leases.renew(name, held.token):
                self._lose(name)
            elif self._runner.running(name):
                self._runner.set_deadline(name, self._safe_end(sent))
            elif not held.releasing and name in accounts:
                # Its monitor stopped at the safe end (renewals were late) but the lease
                # is still ours: serve the account again.
                self._start(name, accounts[name], sent)
        plan = plan_leases(accounts, self.nodes, self.node_id, self._held)
        for name in plan.release:
            held = self._held[name]
            if not held.releasing:
                held.releasing = True
                self._nursery.start_soon(self._hand_over, name, held)
        active = sum(1 for h in self._held.values() if not h.releasing)
        for name in plan.claim:
            if active >= plan.target:
                break
            token = await self._leases.claim(name)
            if token is None:
                continue
            active += 1
            self._held[name] = _Held(token)
            self._store.fence(name, token)
            log.info("%s: claimed %s", self.node_id, name)
            self._start(name, accounts[name], sent)
            self._notify()

    def _parse(self, stored: list[dict[str, Any]]) -> dict[str, Account]:
        accounts = {}
        for data in stored:
            try:
                account = Account.from_json(data)
            except ValueError as exc:
                log.error("%s: skipping a corrupt stored account: %s", self.node_id, exc)
                continue
            accounts[account.account_id] = account
        return accounts

    def _start(self, name: str, account: Account, sent: float) -> None:
        del name
        self._runner.start_soon(account, deadline=self._safe_end(sent))

    def _lose(self, name: str) -> None:
        """Our lease is gone: stop polling the account now (fenced writes fail anyway)."""
        held = self._held.pop(name, None)
        if held is None:
            return
        self.lost += 1
        log.warning("%s: lost the lease of %s; stopping its monitor", self.node_id, name)
        self._runner.set_deadline(name, trio.current_time())
        self._runner.remove(name)
        self._notify()

    async def _hand_over(self, name: str, held: _Held) -> None:
        """Drain the account's monitor, then free its lease for another process."""
        log.info("%s: handing over %s", self.node_id, name)
        await self._runner.remove_and_wait(name)
        if self._held.get(name) is held:
            del self._held[name]
            self._store.fence(name, None)
            try:
                await self._leases.release(name, held.token)
            except StoreError as exc:
                log.warning("%s: could not release %s (%s); it expires", self.node_id, name, exc)
            self._notify()

    async def _run(self) -> None:
        while True:
            try:
                await self._tick()
            except StoreError as exc:
                log.warning("%s: lease round failed: %s", self.node_id, exc)
            await trio.sleep(self._interval)

    async def _leave(self) -> None:
        """Release every lease still held and leave the heartbeat set (shielded)."""
        with trio.CancelScope(shield=True), trio.move_on_after(3.0):
            for name, held in list(self._held.items()):
                try:
                    await self._leases.release(name, held.token)
                except StoreError as exc:
                    log.warning("%s: could not release %s: %s", self.node_id, name, exc)
                    break
                self._store.fence(name, None)
            self._held.clear()
            try:
                await self._leases.heartbeat(leaving=True)
            except StoreError as exc:
                log.warning("%s: could not leave the node set: %s", self.node_id, exc)


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
        store: The shared :class:`RedisStore` (accounts, journals, leases).
        node_id: This process's id (default: host, pid and a random suffix).
        lease_ttl: Lease lifetime in seconds. A dead process's accounts wait this long
            before another process takes them; renewals run every third of it.
        client_options: Extra arguments for :func:`~weixin_trio.open_client`.
        **monitor_options: Options of :func:`~weixin_trio.open_monitor`.

    Yields:
        The :class:`LeasedAccounts` of this process.

    Cancellation:
        Leaving the block stops every held account the way :func:`open_monitor` stops
        (drain, flush, ``notifystop``), then releases the leases so that the other
        processes take the accounts over at once.
    """
    if lease_ttl <= 0:
        raise ValueError("lease_ttl must be positive")
    leases = Leases(
        store.client, prefix=store.prefix, node_id=node_id or default_node_id(), ttl=lease_ttl
    )
    leased: LeasedAccounts | None = None
    try:
        async with open_accounts(
            handler, store=store, client_options=client_options, **monitor_options
        ) as runner:
            async with trio.open_nursery() as nursery:
                leased = LeasedAccounts(store, leases, runner, nursery, lease_ttl / 3)
                await leased._tick()  # the first round runs before yielding
                nursery.start_soon(leased._run)
                try:
                    yield leased
                finally:
                    nursery.cancel_scope.cancel()
            # Leaving open_accounts drains and stops every held account's monitor.
    finally:
        if leased is not None:
            await leased._leave()
