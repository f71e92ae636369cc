"""Handler fan-out through Redis Streams: pollers publish, worker processes handle.

For handlers that need more CPU than one process has. The pollers (leased accounts,
:func:`~._leases.open_leased_accounts`) run :class:`StreamPublisher` as their handler:
it appends each accepted message to one of ``partitions`` streams, chosen from the
account and the lane key (the sender by default), so one user's messages stay in one
stream, in order. A message counts as handled for the poller once it is in Redis; a
message published twice (redelivered after a crash) is added once.

Workers (:func:`open_fanout_worker`, ``weixin-trio worker``) lease partitions the way
pollers lease accounts, and consume each held partition strictly in order through the
consumer group ``workers``: read, handle, then ``XACK`` and ``XDEL``. A partition taken
over from a dead worker first ``XAUTOCLAIM``\\ s the entries that worker had read but
not acknowledged, oldest first. The partition count is fixed per Redis prefix (not
per account), so the number of blocking reads does not grow with the accounts.

Replies use the monitor's deterministic ``client_id``\\ s (account, message id, reply
index), so a message handled twice is shown once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
import zlib
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, final

import attrs
import cattrs
import coredis.exceptions
import trio

from .. import _wire as w
from .._client import open_client
from .._messages import Message, ReplyContext
from ..store._base import DeadLetter, StoreError, StoreUnavailableError
from . import _scripts
from ._coordinator import LeaseCoordinator, open_coordinator
from ._leases import Leases, default_node_id, stored_accounts
from ._store import redis_errors

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping

    from .._api import ILinkClient
    from .._monitor_types import Handler
    from ..login import Account
    from ._store import RedisStore

__all__ = [
    "GROUP",
    "FanoutStatistics",
    "FanoutWorker",
    "StreamPublisher",
    "agree_partitions",
    "open_fanout_worker",
    "partition_of",
]

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
        partitions: The partition count (see :func:`agree_partitions`).
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
        partition = partition_of(account, self.lane_key(message), self.partitions)
        stream, fanned, _lease = _scripts.partition_keys(self.store.prefix, partition)
        body = json.dumps(w.unstructure(message.raw), ensure_ascii=False, separators=(",", ":"))
        args: list[str | int] = [account, message.message_id, body, self._window_ms]
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


@attrs.frozen
class FanoutStatistics:
    """Counters of one worker.

    Attributes:
        handled: Messages whose handler returned.
        failed: Handler runs that raised (every attempt counts).
        dead_lettered: Messages given up after ``max_attempts`` (kept in the store).
        claimed: Entries taken over from a worker that died before acknowledging them.
        partitions: Partitions held now.
    """

    handled: int
    failed: int
    dead_lettered: int
    claimed: int
    partitions: int


@attrs.define
class _Partition:
    index: int
    scope: trio.CancelScope
    stopping: bool = False
    read_scope: trio.CancelScope | None = None
    done: trio.Event = attrs.field(factory=trio.Event)


@final
class FanoutWorker:
    """A worker process's partitions; obtain it from :func:`open_fanout_worker`."""

    def __init__(
        self,
        store: RedisStore,
        handler: Handler,
        nursery: trio.Nursery,
        *,
        partitions: int,
        max_concurrency: int,
        max_attempts: int,
        retry_delay: float,
        handler_timeout: float | None,
        drain_timeout: float,
        client_options: Mapping[str, Any],
    ) -> None:
        self.store = store
        self._handler = handler
        self._nursery = nursery
        self.partitions = partitions
        self._limiter = trio.CapacityLimiter(max_concurrency)
        self._max_attempts = max_attempts
        self._retry_delay = retry_delay
        self._handler_timeout = math.inf if handler_timeout is None else handler_timeout
        self._drain_timeout = drain_timeout
        self._client_options = client_options
        self._ack = store.client.register_script(_scripts.ACK)
        self._clients: dict[str, ILinkClient] = {}
        self._client_locks: dict[str, trio.Lock] = {}
        self._accounts: dict[str, Account] = {}
        self._held: dict[str, _Partition] = {}
        self.node_id = ""
        self.coordinator: LeaseCoordinator[int] | None = None
        self._handled = self._failed = self._dead = self._claimed = 0

    def statistics(self) -> FanoutStatistics:
        """A snapshot of the counters."""
        return FanoutStatistics(
            self._handled, self._failed, self._dead, self._claimed, len(self._held)
        )

    @property
    def held(self) -> list[int]:
        """Partitions held now (sorted)."""
        return sorted(int(name) for name in self._held)

    # --- LeaseTarget ------------------------------------------------------------------

    async def resources(self) -> dict[str, int]:
        """Every partition, by name (its number)."""
        await trio.lowlevel.checkpoint()
        return {str(index): index for index in range(self.partitions)}

    def start(self, name: str, resource: int, token: str, deadline: float) -> None:
        """Start consuming a partition until ``deadline`` (moved by renewals)."""
        del token  # acknowledging is idempotent: a worker past its lease does no harm
        part = _Partition(resource, trio.CancelScope(deadline=deadline))
        self._held[name] = part
        self._nursery.start_soon(self._consume, name, part)

    def extend(self, name: str, deadline: float) -> bool:
        """Move a partition's safe end; ``False`` if its consumer stopped."""
        part = self._held.get(name)
        if part is None or part.done.is_set():
            self._held.pop(name, None)
            return False
        part.scope.deadline = deadline
        return True

    def stop_now(self, name: str) -> None:
        """The lease is gone: stop consuming at once."""
        part = self._held.pop(name, None)
        if part is not None:
            part.scope.cancel()

    async def drain(self, name: str) -> None:
        """Finish the entry in hand, then stop consuming the partition."""
        part = self._held.get(name)
        if part is None:
            await trio.lowlevel.checkpoint()
            return
        part.stopping = True
        if part.read_scope is not None:
            part.read_scope.cancel()
        with trio.move_on_after(self._drain_timeout):
            await part.done.wait()
        part.scope.cancel()  # past the drain: its entry stays pending for the next owner
        await part.done.wait()
        self._held.pop(name, None)

    def released(self, name: str) -> None:
        """Nothing to undo: partitions are not fenced."""
        del name

    # --- consuming --------------------------------------------------------------------

    async def _client(self, account_id: str) -> ILinkClient | None:
        """The client of an account (opened on first use), ``None`` if it is unknown."""
        async with self._client_locks.setdefault(account_id, trio.Lock()):
            return self._clients.get(account_id) or await self._open_client(account_id)

    async def _open_client(self, account_id: str) -> ILinkClient | None:
        if account_id not in self._accounts:
            self._accounts.update(await stored_accounts(self.store))
        known = self._accounts.get(account_id)
        if known is None:
            return None
        started: ILinkClient = await self._nursery.start(self._hold_client, known)
        return started

    async def _hold_client(
        self, account: Account, *, task_status: trio.TaskStatus[ILinkClient]
    ) -> None:
        async with open_client(
            token=account.token,
            base_url=account.base_url,
            account_id=account.account_id,
            **self._client_options,
        ) as client:
            self._clients[account.account_id] = client
            task_status.started(client)
            await trio.sleep_forever()

    async def _consume(self, name: str, part: _Partition) -> None:
        stream = _scripts.partition_keys(self.store.prefix, part.index)[0]
        try:
            with part.scope:
                with (
                    redis_errors(f"creating the group of partition {name}"),
                    contextlib.suppress(coredis.exceptions.StreamDuplicateConsumerGroupError),
                ):
                    await self.store.client.xgroup_create(
                        stream, GROUP, identifier="0", mkstream=True
                    )
                await self._take_over(name, part, stream)
                while not part.stopping:
                    await self._read_new(name, part, stream)
        except StoreError as exc:
            log.warning("%s: partition %s stopped: %s", self.node_id, name, exc)
        finally:
            part.done.set()

    async def _take_over(self, name: str, part: _Partition, stream: str) -> None:
        """Handle what a previous consumer read but never acknowledged, oldest first."""
        start = "0-0"
        while not part.stopping:
            with redis_errors(f"claiming the pending entries of partition {name}"):
                reply: Any = await self.store.client.xautoclaim(
                    stream, GROUP, self.node_id, min_idle_time=0, start=start, count=64
                )
            start, entries = reply[0], reply[1]
            for entry in entries:
                self._claimed += 1
                await self._process(stream, entry)
            if start == "0-0":
                return

    async def _read_new(self, name: str, part: _Partition, stream: str) -> None:
        reply: Any = None
        with trio.CancelScope() as part.read_scope:
            with redis_errors(f"reading partition {name}"):
                reply = await self.store.client.xreadgroup(
                    GROUP, self.node_id, streams={stream: ">"}, count=16, block=1000
                )
        part.read_scope = None
        for entry in (reply or {}).get(stream, ()):
            await self._process(stream, entry)

    async def _process(self, stream: str, entry: Any) -> None:
        fields: Mapping[str, str] = entry.field_values
        try:
            account = fields["a"]
            mid = int(fields["id"])
            raw = json.loads(fields["m"])
            client = await self._client(account)
            if client is None:
                raise ValueError(f"unknown account {account!r}")
            message = Message.from_json(raw, message_id=mid, ctx=ReplyContext(client))
        except (KeyError, ValueError, TypeError, AttributeError, cattrs.BaseValidationError) as exc:
            log.error("dropping a malformed stream entry %s: %s", entry.identifier, exc)
            await self._acknowledge(stream, entry.identifier)
            return
        if message.context_token and message.from_user_id:
            client.context_tokens.set(message.from_user_id, message.context_token)
        windows = client.send_windows
        if windows is not None and message.from_user_id:
            now = time.time()
            created = message.create_time.timestamp() if message.create_time else now
            windows.record_inbound(message.from_user_id, min(created, now))
        error = await self._run_handler(message)
        if error is not None:
            self._dead += 1
            letter = DeadLetter(mid, raw, self._max_attempts, repr(error), time.time())
            log.error("%s: message %d dead-lettered", account, mid)
            with trio.CancelScope(shield=True):
                await self.store.dead_letter(account, letter)
        await self._acknowledge(stream, entry.identifier)

    async def _run_handler(self, message: Message) -> Exception | None:
        """Run the handler with retries; the last error, or ``None`` on success."""
        error: Exception | None = None
        for attempt in range(self._max_attempts):
            if attempt:
                await trio.sleep(self._retry_delay)
            message.restart_replies()  # as in the monitor: a retry reuses client_ids
            async with self._limiter:
                try:
                    with trio.fail_after(self._handler_timeout):
                        await self._handler(message)
                except trio.TooSlowError:
                    self._failed += 1
                    error = TimeoutError(
                        f"handler exceeded handler_timeout={self._handler_timeout}s"
                    )
                    log.warning("handler timed out for message %d", message.message_id)
                    continue
                except Exception as exc:
                    self._failed += 1
                    error = exc
                    log.warning(
                        "handler failed for message %d: %s: %s",
                        message.message_id,
                        type(exc).__name__,
                        exc,
                    )
                    continue
            self._handled += 1
            return None
        return error

    async def _acknowledge(self, stream: str, entry_id: str) -> None:
        with trio.CancelScope(shield=True), redis_errors("acknowledging an entry"):
            await self._ack(keys=[stream], args=[GROUP, entry_id])


@asynccontextmanager
async def open_fanout_worker(
    handler: Handler,
    *,
    store: RedisStore,
    node_id: str | None = None,
    partitions: int | None = None,
    lease_ttl: float = 15.0,
    max_concurrency: int = 16,
    max_attempts: int = 3,
    retry_delay: float = 1.0,
    handler_timeout: float | None = None,
    drain_timeout: float = 10.0,
    client_options: Mapping[str, Any] | None = None,
) -> AsyncIterator[FanoutWorker]:
    """Handle the messages that pollers publish, sharing the partitions with other workers.

    Args:
        handler: The message handler (as for a monitor; replies work as usual).
        store: The shared store (accounts, streams, leases, dead letters).
        node_id: This worker's id (default: host, pid and a random suffix).
        partitions: Expected partition count (default: what the pollers configured).
        lease_ttl: Partition lease lifetime in seconds; a dead worker's partitions are
            taken over after it.
        max_concurrency: Handlers running at once (partitions run one message at a time).
        max_attempts: Handler runs per message before it is dead-lettered.
        retry_delay: Seconds between attempts.
        handler_timeout: Optional deadline of one handler run (counts as a failure).
        drain_timeout: Seconds a partition being handed over (or the whole worker,
            when leaving the block) waits for the handler in progress; then it is
            cancelled and its message stays pending for the next owner.
        client_options: Extra arguments for :func:`~weixin_trio.open_client`.

    Yields:
        The running :class:`FanoutWorker`.

    Cancellation:
        Leaving the block lets each partition finish the message in hand (at most
        ``drain_timeout``), then releases the partitions to the other workers.
    """
    if max_concurrency < 1 or max_attempts < 1:
        raise ValueError("max_concurrency and max_attempts must be >= 1")
    count = await agree_partitions(store, partitions)
    node = node_id or default_node_id()
    leases = Leases(
        store.client,
        prefix=store.prefix,
        node_id=node,
        ttl=lease_ttl,
        group="workers",
        key=lambda name: _scripts.partition_keys(store.prefix, int(name))[2],
    )
    async with trio.open_nursery() as nursery:
        worker = FanoutWorker(
            store,
            handler,
            nursery,
            partitions=count,
            max_concurrency=max_concurrency,
            max_attempts=max_attempts,
            retry_delay=retry_delay,
            handler_timeout=handler_timeout,
            drain_timeout=drain_timeout,
            client_options=dict(client_options or {}),
        )
        worker.node_id = node
        async with open_coordinator(leases, worker, drain_timeout=drain_timeout) as coordinator:
            worker.coordinator = coordinator
            yield worker
        nursery.cancel_scope.cancel()
