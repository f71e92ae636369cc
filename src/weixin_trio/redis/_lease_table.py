"""``Leases``: claim, renew and release named leases in Redis (one node's view).

The rounds that decide what to claim are the `LeaseCoordinator`'s; the accounts that
run under the leases are `LeasedAccounts`'.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from typing import TYPE_CHECKING, Any, final

from coredis import PureToken

from . import _scripts
from ._store import redis_errors

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._store import RedisClient

__all__ = ["Leases", "default_node_id"]

log = logging.getLogger("weixin_trio.leases")


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
        group: Name of the node set (pollers and workers balance separately).
        key: The lease key of a name (default: the account's lease key).
    """

    def __init__(
        self,
        client: RedisClient,
        *,
        prefix: str,
        node_id: str,
        ttl: float,
        group: str = "nodes",
        key: Callable[[str], str] | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.node_id = node_id
        self.group = group
        self.ttl_ms = max(1, round(ttl * 1000))
        self._key = key or (lambda name: _scripts.lease_key(prefix, name))
        self._renew = client.register_script(_scripts.RENEW)
        self._release = client.register_script(_scripts.RELEASE)
        self._heartbeat = client.register_script(_scripts.HEARTBEAT)

    @property
    def ttl(self) -> float:
        """Lease lifetime in seconds."""
        return self.ttl_ms / 1000

    @property
    def nodes_key(self) -> str:
        """The sorted set of live processes of this group."""
        return f"{self.prefix}:{self.group}"

    def key(self, name: str) -> str:
        """The lease key of ``name``."""
        return self._key(name)

    async def claim(self, name: str) -> str | None:
        """Take the lease of ``name`` if it is free; returns its token."""
        token = f"{self.node_id}/{secrets.token_hex(8)}"
        with redis_errors(f"claiming {name}"):
            ok = await self.client.set(
                self.key(name), token, condition=PureToken.NX, px=self.ttl_ms
            )
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
