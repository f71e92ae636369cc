"""One account's Redis lease for a single-account command (``mcp``), as ``run --redis`` holds it.

With a `FileStore` the writer lock keeps a second poller off an account; on Redis the
lease does: while it is held no ``run --redis`` node (and no other ``mcp``) claims the
account, and every journal write is fenced by its token. The command's work runs under
a deadline that each renewal moves to 0.8 TTL after the renewal was sent, so polling
stops before the lease could expire and pass to another process.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import trio

from .._errors import StoreError
from .._util import unwrap_single_error
from .common import CliError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ..redis import Leases, RedisStore

log = logging.getLogger("weixin_trio.cli")

#: Lease lifetime (seconds), as ``run --redis``'s default ``--lease-ttl``.
LEASE_TTL = 15.0
#: The work stops this fraction of the TTL after the last successful renewal was sent.
SAFE_FRACTION = 0.8


@asynccontextmanager
async def account_lease(
    store: RedisStore, account_id: str, *, command: str, ttl: float = LEASE_TTL
) -> AsyncIterator[None]:
    """Hold ``account_id``'s lease while the block runs; release it afterwards.

    Raises:
        CliError: Another process holds the lease, or this one lost it (the block was
            cancelled then).

    Cancellation:
        Releases the lease (shielded, at most 5 s; otherwise it expires).
    """
    from ..redis import Leases

    node = f"{command}-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    leases = Leases(store.client, prefix=store.prefix, node_id=node, ttl=ttl)
    sent = trio.current_time()
    token = await leases.claim(account_id)
    if token is None:
        owner = await leases.owner(account_id)
        raise CliError(
            f"account {account_id} is served by {owner} (its Redis lease): stop it first"
        )
    store.fence(account_id, token)
    try:
        safe = trio.CancelScope(deadline=sent + SAFE_FRACTION * ttl)
        with unwrap_single_error():  # the block's own error arrives as itself
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_renew, leases, account_id, token, safe)
                with safe:
                    yield
                nursery.cancel_scope.cancel()  # after ``safe`` is closed, so it sees its cancel
        if safe.cancelled_caught:
            raise CliError(f"lost the Redis lease of {account_id}; stopped")
    finally:
        store.fence(account_id, None)
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            try:
                await leases.release(account_id, token)
            except StoreError as exc:
                log.warning("%s: could not release the lease (%s); it expires", command, exc)


async def _renew(leases: Leases, account_id: str, token: str, safe: trio.CancelScope) -> None:
    """Renew every TTL/3; move ``safe``'s deadline, or cancel it when the lease is gone."""
    while True:
        await trio.sleep(leases.ttl / 3)
        sent = trio.current_time()
        try:
            ours = await leases.renew(account_id, token)
        except StoreError as exc:  # Redis unreachable: the deadline stays where it was
            log.warning("renewing the lease of %s failed: %s", account_id, exc)
            continue
        if not ours:
            safe.cancel()
            return
        safe.deadline = sent + SAFE_FRACTION * leases.ttl
