"""Fan-out workers: handle the messages pollers published to Redis Streams.

A worker leases partitions (`_coordinator`, node group ``workers``). For each
held partition a reader task takes over what a previous consumer read but never
acknowledged (``XAUTOCLAIM``, oldest first), then reads new entries (``XREADGROUP``).
Entries go into per-lane FIFO queues (the lane is the account plus the publisher's
lane key, the sender by default) over one ``CapacityLimiter``, exactly like a
monitor's: one user's messages run one at a time and in order, while a slow user
never holds up the others in the same partition. After its handler, an entry is
acknowledged and deleted (``XACK`` + ``XDEL``). Handlers run through the same
`HandlerRunner` as a monitor's: the same attempts,
``handler_timeout``, retry backoff and dead letters (a handler that fails
``max_attempts`` times leaves a dead letter in the store whose ``error`` names its
cause). At most ``max_pending`` entries of a partition are in hand at once
(backpressure: the reader waits).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, final

import attrs
import cattrs
import coredis.exceptions
import trio

from .._client.message import Message, ReplyContext
from .._client.open import open_client
from .._monitor.handler_runner import HandlerRunner, Job, RunnerCounters, default_retry_backoff
from .._monitor.lanes import Dispatcher
from .._monitor.values import check_handler
from .._util import unwrap_single_error
from ..store._base import StoreError
from . import _scripts
from ._coordinator import LeaseCoordinator, open_coordinator
from ._lease_table import Leases, default_node_id
from ._leases import stored_accounts
from ._partitions import Entry, Partition, PartitionHost, bounded_shield, cancel_partition
from ._store import redis_errors
from ._streams import GROUP, agree_partitions

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from .._client.ilink_client import ILinkClient
    from .._monitor.lanes import Lane
    from .._monitor.values import ErrorHook, Handler
    from .._proto.backoff import Backoff
    from .._proto.error_notices import ErrorNotices, NoticeText
    from ..login import Account
    from ._store import RedisStore

__all__ = ["FanoutStatistics", "FanoutWorker", "open_fanout_worker"]

log = logging.getLogger("weixin_trio.fanout")


@attrs.frozen
class FanoutStatistics:
    """Counters of one worker.

    Attributes:
        handled: Messages whose handler returned.
        failed: Handler runs that raised or timed out (every attempt counts).
        dead_lettered: Messages given up after ``max_attempts`` (kept in the store).
        claimed: Entries taken over from a consumer that never acknowledged them.
        partitions: Partitions held now.
        in_flight: Entries read and not yet acknowledged.
        timed_out: Handler runs cut by ``handler_timeout`` (also in ``failed``).
        refused: Messages whose reply the send window refused (finished, not retried).
    """

    handled: int
    failed: int
    dead_lettered: int
    claimed: int
    partitions: int
    in_flight: int
    timed_out: int = 0
    refused: int = 0


@final
class FanoutWorker:
    """A worker process's partitions; obtain it from `open_fanout_worker`."""

    def __init__(
        self,
        store: RedisStore,
        handler: Handler,
        nursery: trio.Nursery,
        *,
        partitions: int,
        max_concurrency: int,
        max_pending: int,
        max_attempts: int,
        retry_backoff: Backoff,
        handler_timeout: float | None,
        drain_timeout: float,
        client_options: Mapping[str, Any],
        on_error: ErrorHook | None = None,
        error_notice: ErrorNotices | NoticeText | None = None,
    ) -> None:
        self.store = store
        self._nursery = nursery
        self.partitions = partitions
        self._dispatcher: Dispatcher[Entry] = Dispatcher(
            self._run_entry, trio.CapacityLimiter(max_concurrency)
        )
        self._max_pending = max_pending
        self._counters = RunnerCounters()
        self._runner = HandlerRunner(
            handler,
            max_attempts=max_attempts,
            handler_timeout=handler_timeout,
            retry_backoff=retry_backoff,
            counters=self._counters,
            on_error=on_error,
            error_notice=error_notice,
        )
        self._drain_timeout = drain_timeout
        self._client_options = client_options
        self._ack = store.client.register_script(_scripts.ACK)
        self._clients: dict[str, ILinkClient] = {}
        self._client_locks: dict[str, trio.Lock] = {}
        self._accounts: dict[str, Account] = {}
        self._held: dict[str, Partition] = {}
        self.node_id = ""
        self.coordinator: LeaseCoordinator[int] | None = None
        self._claimed = 0

    def statistics(self) -> FanoutStatistics:
        """A snapshot of the counters."""
        c = self._counters
        in_flight = sum(p.in_flight for p in self._held.values())
        return FanoutStatistics(
            c.handled,
            c.failed,
            c.dead_lettered,
            self._claimed,
            len(self._held),
            in_flight,
            timed_out=c.timed_out,
            refused=c.refused,
        )

    @property
    def held(self) -> list[int]:
        """Partitions held now (sorted)."""
        return sorted(int(name) for name in self._held)

    @property
    def clients(self) -> dict[str, ILinkClient]:
        """The accounts' clients this worker opened to send replies, by account id."""
        return dict(self._clients)

    # --- LeaseTarget ------------------------------------------------------------------

    async def resources(self) -> dict[str, int]:
        """Every partition, by name (its number)."""
        await trio.lowlevel.checkpoint()
        return {str(index): index for index in range(self.partitions)}

    def start(self, name: str, resource: int, token: str, deadline: float) -> None:
        """Start consuming a partition until ``deadline`` (moved by renewals)."""
        del token  # acknowledging is idempotent: a worker past its lease does no harm
        stream = _scripts.partition_keys(self.store.prefix, resource)[0]
        part = Partition(resource, stream, trio.CancelScope(deadline=deadline))
        self._held[name] = part
        self._nursery.start_soon(self._read, name, part)

    def extend(self, name: str, deadline: float) -> bool:
        """Move a partition's safe end; ``False`` if it stopped."""
        part = self._held.get(name)
        if part is None or part.done.is_set():
            self._held.pop(name, None)
            return False
        part.scope.deadline = deadline
        for scope in part.active:
            scope.deadline = deadline
        return True

    def stop_now(self, name: str) -> None:
        """The lease is gone: stop reading and cancel its handlers at once."""
        part = self._held.pop(name, None)
        if part is not None:
            cancel_partition(part)

    async def drain(self, name: str) -> None:
        """Stop reading, let the entries in hand finish (``drain_timeout``), then stop.

        Entries cut by the timeout stay pending for the partition's next owner.
        """
        part = self._held.get(name)
        if part is None:
            await trio.lowlevel.checkpoint()
            return
        part.stopping = True
        if part.read_scope is not None:
            part.read_scope.cancel()
        for scope in part.waiting:  # a wait for a retry ends at once: stays pending
            scope.cancel()
        with trio.move_on_after(self._drain_timeout):
            await part.done.wait()
        cancel_partition(part)
        await part.done.wait()
        self._held.pop(name, None)

    def released(self, name: str) -> None:
        """Nothing to undo: partitions are not fenced."""
        del name

    # --- reading ----------------------------------------------------------------------

    async def _read(self, name: str, part: Partition) -> None:
        try:
            with part.scope:
                with (
                    redis_errors(f"creating the group of partition {name}"),
                    contextlib.suppress(coredis.exceptions.StreamDuplicateConsumerGroupError),
                ):
                    await self.store.client.xgroup_create(
                        part.stream, GROUP, identifier="0", mkstream=True
                    )
                await self._take_over(name, part)
                while not part.stopping:
                    await self._read_new(name, part)
        except StoreError as exc:
            # Entries in hand finish; the partition restarts once they did, and
            # claims whatever stayed unacknowledged.
            log.warning("%s: partition %s stopped: %s", self.node_id, name, exc)
        finally:
            part.reading = False
            part.settle()

    async def _take_over(self, name: str, part: Partition) -> None:
        """Queue what a previous consumer read but never acknowledged, oldest first."""
        start = "0-0"
        while not part.stopping:
            await self._wait_for_room(part)
            with redis_errors(f"claiming the pending entries of partition {name}"):
                reply: Any = await self.store.client.xautoclaim(
                    part.stream, GROUP, self.node_id, min_idle_time=0, start=start, count=64
                )
            start, entries = reply[0], reply[1]
            self._claimed += len(entries)
            for entry in entries:
                self._submit(part, entry)
            if start == "0-0":
                return

    async def _read_new(self, name: str, part: Partition) -> None:
        await self._wait_for_room(part)
        reply: Any = None
        with trio.CancelScope() as part.read_scope:
            if part.stopping:
                return
            with redis_errors(f"reading partition {name}"):
                reply = await self.store.client.xreadgroup(
                    GROUP,
                    self.node_id,
                    streams={part.stream: ">"},
                    count=max(1, self._max_pending - part.in_flight),
                    block=1000,
                )
        part.read_scope = None
        for entry in (reply or {}).get(part.stream, ()):
            self._submit(part, entry)

    async def _wait_for_room(self, part: Partition) -> None:
        while part.in_flight >= self._max_pending:
            part.room = trio.Event()
            await part.room.wait()

    def _submit(self, part: Partition, entry: Any) -> None:
        fields: Mapping[str, str] = entry.field_values
        part.in_flight += 1
        lane = f"{fields.get('a', '')}\x00{fields.get('k', '')}"
        self._dispatcher.submit(lane, Entry(part, entry))

    # --- handling ---------------------------------------------------------------------

    async def _run_entry(self, lane: Lane[Entry], work: Entry) -> None:
        del lane
        part = work.part
        try:
            with trio.CancelScope(deadline=part.scope.deadline) as scope:
                if part.scope.cancel_called:
                    scope.cancel()
                part.active.add(scope)
                try:
                    await self._process(part, work.entry)
                finally:
                    part.active.discard(scope)
        except Exception:  # the dispatcher's contract: never raise; the entry stays pending
            log.exception("%s: entry %s stays pending", self.node_id, work.entry.identifier)
        finally:
            part.in_flight -= 1
            part.settle()

    async def _process(self, part: Partition, entry: Any) -> None:
        stream = part.stream
        fields: Mapping[str, str] = entry.field_values
        try:
            account = fields["a"]
            mid = int(fields["id"])
            raw = json.loads(fields["m"])
            client = await self._client(account)
            if client is None:
                raise ValueError(f"unknown account {account!r}")
            message = Message.from_json(
                raw, message_id=mid, ctx=ReplyContext(client, store=self.store)
            )
        except (
            KeyError,
            ValueError,
            TypeError,
            AttributeError,
            cattrs.BaseValidationError,
        ) as exc:
            log.error("dropping a malformed stream entry %s: %s", entry.identifier, exc)
            await self._acknowledge(stream, entry.identifier)
            return
        user = message.from_user_id
        if user:
            now = time.time()
            created = message.create_time.timestamp() if message.create_time else now
            tokens = {user: message.context_token} if message.context_token else {}
            client._state.record_inbound(tokens, {user: min(created, now)})
        outcome = await self._runner.run(Job(message=message, raw=raw), PartitionHost(part))
        if outcome.kind == "cut":
            return  # the partition is handed over: the next owner claims the entry
        if outcome.dead_letter is not None:
            with bounded_shield() as scope:
                await self.store.dead_letter(account, outcome.dead_letter)
            if scope.cancelled_caught:
                return  # not written: the entry stays pending and is handled again
        await self._acknowledge(stream, entry.identifier)

    async def _acknowledge(self, stream: str, entry_id: str) -> None:
        # A cut acknowledgement leaves the entry pending: it is handled again later
        # (its replies hidden), never lost.
        with bounded_shield(), redis_errors("acknowledging an entry"):
            await self._ack(keys=[stream], args=[GROUP, entry_id])

    # --- clients ----------------------------------------------------------------------

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


@asynccontextmanager
async def open_fanout_worker(
    handler: Handler,
    *,
    store: RedisStore,
    node_id: str | None = None,
    partitions: int | None = None,
    lease_ttl: float = 15.0,
    max_concurrency: int = 16,
    max_pending: int = 64,
    max_attempts: int = 3,
    retry_delay: float = 1.0,
    retry_backoff: Backoff | None = None,
    handler_timeout: float | None = None,
    drain_timeout: float = 10.0,
    client_options: Mapping[str, Any] | None = None,
    on_error: ErrorHook | None = None,
    error_notice: ErrorNotices | NoticeText | None = None,
) -> AsyncIterator[FanoutWorker]:
    """Handle the messages that pollers publish, sharing the partitions with other workers.

    Args:
        handler: The message handler (as for a monitor; replies work as usual).
        store: The shared store (accounts, streams, leases, dead letters).
        node_id: This worker's id (default: host, pid and a random suffix).
        partitions: Expected partition count (default: what the pollers configured).
        lease_ttl: Partition lease lifetime in seconds; a dead worker's partitions are
            taken over after it.
        max_concurrency: Handlers running at once (one ``trio.CapacityLimiter``).
        max_pending: Entries of one partition in hand at once (read, not yet done).
        max_attempts: Handler runs per message before it is dead-lettered (counted as
            a monitor counts them: a reply refused by the send window finishes the
            message instead).
        retry_delay: First delay between attempts (doubling up to 30 s, jittered),
            unless ``retry_backoff`` is given.
        retry_backoff: Delay policy between attempts (a fresh streak per message).
        handler_timeout: Optional deadline of one handler run (counts as a failure).
        drain_timeout: Seconds a partition being handed over (or the whole worker,
            when leaving the block) waits for its handlers; then they are cancelled
            and their messages stay pending for the next owner.
        client_options: Extra arguments for [`open_client`][weixin_trio.open_client] (e.g.
            ``send_retry``).
        on_error: ``async (message, exc)``, called for each handler failure.
        error_notice: Tell the sender when their message is given up, as
            ``error_notice`` of [`open_monitor`][weixin_trio.open_monitor].

    Yields:
        The running [`FanoutWorker`][weixin_trio.redis.FanoutWorker].

    Exceptions: one exception from the block (yours, or an internal failure) reaches
    the caller as itself, not wrapped in an ``ExceptionGroup``; several at once arrive
    as one ``ExceptionGroup`` of them.

    Cancellation:
        Leaving the block lets the handlers in progress finish (at most
        ``drain_timeout``), then releases the partitions to the other workers.
    """
    check_handler(handler)
    if max_concurrency < 1 or max_attempts < 1 or max_pending < 1:
        raise ValueError("max_concurrency, max_pending and max_attempts must be >= 1")
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
    with unwrap_single_error():
        async with trio.open_nursery() as nursery:
            worker = FanoutWorker(
                store,
                handler,
                nursery,
                partitions=count,
                max_concurrency=max_concurrency,
                max_pending=max_pending,
                max_attempts=max_attempts,
                retry_backoff=retry_backoff or default_retry_backoff(retry_delay),
                handler_timeout=handler_timeout,
                drain_timeout=drain_timeout,
                client_options=dict(client_options or {}),
                on_error=on_error,
                error_notice=error_notice,
            )
            worker.node_id = node
            await nursery.start(worker._dispatcher.run, nursery)
            async with open_coordinator(leases, worker, drain_timeout=drain_timeout) as coordinator:
                worker.coordinator = coordinator
                yield worker
            nursery.cancel_scope.cancel()
