"""Handler fan-out through Redis Streams: pollers publish, worker processes handle.

For handlers that need more CPU than one process has. The pollers (leased accounts,
`open_leased_accounts`) run [`StreamPublisher`][weixin_trio.redis.StreamPublisher] as their handler:
it appends each accepted message to one of ``partitions`` streams, chosen from the
account and the lane key (the sender by default), so one user's messages stay in one
stream, in order. A message counts as handled for the poller once it is in Redis; a
message published twice (redelivered after a crash) is added once.

Workers (`_worker`, ``weixin-trio worker``) lease partitions the way pollers
lease accounts and consume them through the consumer group ``workers``. The partition
count is fixed per Redis prefix (not per account), so the number of blocking reads
does not grow with the accounts.

Replies use the monitor's deterministic ``client_id``\\ s (account, message id, reply
index), so a message handled twice is shown once.
"""

from __future__ import annotations

import json
import logging
import zlib
from typing import TYPE_CHECKING, final

import trio

from .. import _wire as w
from ..store._base import StoreUnavailableError
from . import _scripts
from ._store import redis_errors

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._client.message import Message
    from ._store import RedisStore

__all__ = ["DEFAULT_PARTITIONS", "GROUP", "StreamPublisher", "agree_partitions", "partition_of"]

log = logging.getLogger("weixin_trio.fanout")

#: The consumer group every worker reads through.
GROUP = "workers"
DEFAULT_PARTITIONS = 16


def partition_of(account: str, lane_key: str, partitions: int) -> int:
    """The partition of a lane (CRC-32, stable across processes and versions)."""
    return zlib.crc32(f"{account}\x00{lane_key}".encode()) % partitions


async def agree_partitions(store: RedisStore, partitions: int | None) -> int:
    """The partition count of this Redis prefix (set by the first process to ask).

    Args:
        store: The shared store.
        partitions: What this process wants (``None``: whatever is configured, else
            the default of 16).

    Raises:
        ValueError: Another process configured a different count (changing it would
            reorder users' messages: drain the streams and delete ``<prefix>:fanout``).
    """
    wanted = partitions if partitions is not None else DEFAULT_PARTITIONS
    if wanted < 1:
        raise ValueError("partitions must be >= 1")
    key = f"{store.prefix}:fanout"
    with redis_errors("agreeing on the partitions"):
        await store.client.hsetnx(key, "partitions", str(wanted))
        current = int(await store.client.hget(key, "partitions") or wanted)
    if partitions is not None and current != partitions:
        raise ValueError(f"{key} has {current} partitions, not {partitions}")
    return current


def _default_lane_key(message: Message) -> str:
    return message.from_user_id


@final
class StreamPublisher:
    """A monitor handler that hands each message to the fan-out workers.

    Use it as the handler of pollers (``weixin-trio run --redis URL --fanout``)::

        publisher = StreamPublisher(store, partitions=await agree_partitions(store, 16))
        async with open_leased_accounts(publisher, store=store): ...

    Publishing is idempotent for ``dedupe_window`` seconds: a message redelivered to
    a poller (after a crash or a hand-over) is added once.

    Args:
        store: The shared store.
        partitions: The partition count (see `agree_partitions`).
        lane_key: What keeps messages in order (default: the sender); must match the
            monitor's ``lane_key``.
        dedupe_window: Seconds a published message id is remembered.
    """

    def __init__(
        self,
        store: RedisStore,
        *,
        partitions: int = DEFAULT_PARTITIONS,
        lane_key: Callable[[Message], str] = _default_lane_key,
        dedupe_window: float = 86400.0,
    ) -> None:
        self.store = store
        self.partitions = partitions
        self.lane_key = lane_key
        self._window_ms = round(dedupe_window * 1000)
        self._publish = store.client.register_script(_scripts.PUBLISH)
        self.published = 0

    async def __call__(self, message: Message) -> None:
        """Append ``message`` to its partition's stream.

        While Redis cannot be reached, it waits and retries (1 s, doubling, at most
        30 s) instead of failing, so the monitor does not dead-letter the message.

        Raises:
            StoreError: Redis refused the script (a configuration error).

        Cancellation:
            Safe: a publish either happened or not; the monitor redelivers otherwise.
        """
        account = message.client.account_id
        lane = self.lane_key(message)
        partition = partition_of(account, lane, self.partitions)
        stream, fanned, _lease = _scripts.partition_keys(self.store.prefix, partition)
        body = json.dumps(w.unstructure(message.raw), ensure_ascii=True, separators=(",", ":"))
        args: list[str | int] = [account, message.message_id, body, self._window_ms, lane]
        delay = 1.0
        while True:
            try:
                with redis_errors(f"publishing a message of {account}"):
                    await self._publish(keys=[stream, fanned], args=args)
            except StoreUnavailableError as exc:
                # Not a handler failure: retrying here keeps the message from being
                # dead-lettered while Redis is away (a stop cuts the wait; the monitor
                # then redelivers the message at its next start).
                log.warning("%s; retrying in %.0fs", exc, delay)
                await trio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            self.published += 1
            return
