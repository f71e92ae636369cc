"""One pool per trio run for every default client, counted by the clients using it.

``open_accounts`` with 1,000 accounts on one host thus uses a few connections for
sends in all, plus one per parked long poll. When the last client leaves, the pool
closes its connections and the next client starts a new one.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, final

import trio

from .connect_tcp import open_stream
from .pool import Pool

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["shared_pool"]


@final
class _Lease:
    __slots__ = ("pool", "users")

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.users = 0


_SHARED: trio.lowlevel.RunVar[_Lease | None] = trio.lowlevel.RunVar("weixin_trio_http_pool")


@asynccontextmanager
async def shared_pool() -> AsyncIterator[Pool]:
    """Use this run's shared pool (created by the first user, closed by the last).

    Yields:
        The shared [`Pool`][weixin_trio._http.pool.Pool] over TCP/TLS.

    Cancellation:
        Leaving closes the pool's connections (shielded, forceful) if this was the
        last user.
    """
    lease = _SHARED.get(None)
    if lease is None:
        lease = _Lease(Pool(open_stream))
        _SHARED.set(lease)
    lease.users += 1
    try:
        yield lease.pool
    finally:
        lease.users -= 1
        if lease.users == 0:
            if _SHARED.get(None) is lease:
                _SHARED.set(None)
            with trio.CancelScope(shield=True):
                await lease.pool.aclose()
