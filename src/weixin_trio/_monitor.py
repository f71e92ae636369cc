"""``Monitor``: the long-poll task, per-user lanes and durable delivery of one account.

Structure (DESIGN §5): one nursery per monitor. The poll loop runs in its own cancel
scope; handler tasks run in the same nursery, each in its own shielded cancel scope so
that a stop (by ``monitor.stop()``, leaving the ``async with``, or cancellation from
outside) can give them a bounded drain (``drain_timeout``) instead of killing them.

Delivery: a batch's accepted messages and its new cursor are journaled in one atomic
store write *before* they are dispatched; done marks are group-committed by a flusher
task. Unfinished entries are redelivered at the next start, and their replies reuse
deterministic ``client_id``s, so WeChat shows them once.

Exception policy: internal failures (e.g. the store cannot be written) raise
:class:`~weixin_trio.MonitorCrashed` inside the monitor's nursery, so they surface in
an ``ExceptionGroup`` (use ``except* MonitorCrashed``), like any error of the body.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, final

import attrs
import trio

from . import _wire as w
from ._api import outbox_client_id
from ._backoff import Backoff
from ._errors import MonitorCrashed, StaleTokenError, WeixinError
from ._lanes import Dispatcher, Lane
from ._messages import Message, ReplyContext
from ._monitor_types import (
    ErrorHook,
    Handler,
    MalformedMessageError,
    MonitorCounters,
    MonitorStatistics,
    StaleTokenHook,
    StaleTokenInfo,
    should_process,
    synthetic_message_id,
)
from ._pending_outbox import PendingOutbox
from ._util import NoPublicConstructor
from .store import DeadLetter, JournalEntry, MemoryStore, Store
from .store._journal import DEFAULT_SEEN_WINDOW

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from ._api import ILinkClient

__all__ = ["Monitor", "open_monitor", "run_monitor"]

log = logging.getLogger("weixin_trio.monitor")

#: Added to the server's hold to get the client deadline of one long poll.
POLL_MARGIN = 5.0
#: Time allowed for the final journal flush and for ``notifystop`` at shutdown.
SHUTDOWN_STEP_TIMEOUT = 3.0


@attrs.define(eq=False)
class _Work:
    entry: JournalEntry
    message: Message
    interrupted: bool = False
    scope: trio.CancelScope | None = None


@final
class Monitor(metaclass=NoPublicConstructor):
    """A running monitor; obtain it from :func:`open_monitor` or :func:`run_monitor`.

    It polls one account, journals accepted messages, and runs the handler for each of
    them in per-user FIFO lanes under a global concurrency limit.
    """

    def __init__(
        self,
        *,
        client: ILinkClient,
        handler: Handler,
        store: Store,
        max_concurrency: int,
        max_pending: int,
        max_attempts: int,
        drain_timeout: float,
        handler_timeout: float | None,
        stale_token_pause: float,
        should_process: Callable[[w.WeixinMessage], bool],
        lane_key: Callable[[Message], str],
        control: Callable[[Message], bool] | None,
        on_error: ErrorHook | None,
        on_token_stale: StaleTokenHook | None,
        backoff: Backoff,
        retry_backoff: Backoff,
        notify: bool,
    ) -> None:
        self._client = client
        self._handler = handler
        self._store = store
        self._account = client.account_id
        self._max_concurrency = max_concurrency
        self._max_pending = max_pending
        self._max_attempts = max_attempts
        self._drain_timeout = drain_timeout
        self._handler_timeout = handler_timeout
        self._stale_token_pause = stale_token_pause
        self._should_process = should_process
        self._lane_key = lane_key
        self._control = control
        self._on_error = on_error
        self._on_token_stale = on_token_stale
        self._backoff = backoff
        self._retry_backoff = retry_backoff
        self._notify = notify
        self._nursery: trio.Nursery | None = None
        self._counters = MonitorCounters()
        self._cursor = ""
        self._hint_ms = self._client.long_poll_hint_ms
        self._seen: set[int] = set()
        self._seen_order: deque[int] = deque()
        self._seen_window = DEFAULT_SEEN_WINDOW
        self._unfinished = 0
        self._in_flight = 0
        self._limiter = trio.CapacityLimiter(self._max_concurrency)
        self._dispatcher: Dispatcher[_Work] = Dispatcher(self._run_work, self._limiter)
        self._poll_scope = trio.CancelScope()
        self._service_scope = trio.CancelScope()
        self._body_scope: trio.CancelScope | None = None
        self._protected: set[trio.CancelScope] = set()
        self._stopping = False
        self._stop_requested = False
        self._drain_deadline = math.inf
        self._paused_until: float | None = None
        self._resume = trio.Event()
        self._stale_retried = False
        self._capacity = trio.Event()
        self._idle = trio.Event()
        self._idle.set()
        self._done_ids: list[int] = []
        self._failures: dict[int, int] = {}
        self._dead: list[DeadLetter] = []
        self._dirty = trio.Event()
        self._redelivery: list[JournalEntry] = []
        self._outbox = PendingOutbox(self._store, self._account)

    # --- public API ---------------------------------------------------------------------

    @property
    def client(self) -> ILinkClient:
        """The client this monitor polls with."""
        return self._client

    @property
    def account_id(self) -> str:
        """The account this monitor serves (its store namespace)."""
        return self._account

    def stop(self) -> None:
        """Stop the monitor: abort the poll at once, drain handlers, then exit.

        The ``async with open_monitor(...)`` block (or :func:`run_monitor`) ends without
        an exception. Safe to call more than once, and from a handler.
        """
        self._stop_requested = True
        if self._body_scope is not None:
            self._body_scope.cancel()

    def resume(self) -> None:
        """End a stale-token pause now (e.g. after a new login updated the token)."""
        self._paused_until = None
        self._resume.set()

    def interrupt(self, lane_key: str, *, drop_queued: bool = False) -> bool:
        """Cancel the handler running in ``lane_key``'s lane (e.g. on a ``/stop`` message).

        The interrupted message counts as finished (it is not retried). Queued messages
        of the lane run next, unless ``drop_queued`` is true, in which case they are
        finished without running.

        Returns:
            Whether a running handler was cancelled.
        """
        lane = self._dispatcher.lane(lane_key)
        if lane is None:
            return False
        if drop_queued:
            while lane.queue:
                self._counters.interrupted += 1
                self._finish(lane.queue.popleft(), done=True)
        running = lane.running
        if running is None or running.scope is None:
            return False
        running.interrupted = True
        running.scope.cancel()
        return True

    def statistics(self) -> MonitorStatistics:
        """A frozen snapshot of the counters."""
        c = self._counters
        return MonitorStatistics(
            **attrs.asdict(c),
            in_flight=self._in_flight,
            pending=self._unfinished,
            lanes=self._dispatcher.lanes,
            consecutive_failures=self._backoff.consecutive_failures,
            paused_until=self._paused_until,
        )

    async def wait_idle(self) -> None:
        """Wait until no accepted message is pending (queued or running).

        Cancellation:
            Safe.
        """
        while self._unfinished:
            await self._idle.wait()
        await trio.lowlevel.checkpoint()

    # --- start and stop ---------------------------------------------------------------

    async def _load(self) -> None:
        try:
            state = await self._store.load(self._account)
        except Exception as exc:
            raise MonitorCrashed(f"cannot load the store for {self._account}: {exc}") from exc
        self._cursor = state.cursor
        for mid in state.seen_ids:
            self._remember(mid)
        self._client.context_tokens.update(state.context_tokens)
        windows = self._client.send_windows
        if windows is not None:
            for user, at in state.last_inbound.items():
                windows.record_inbound(user, at)
        self._outbox = PendingOutbox(self._store, self._account, state.outbox)
        self._client.pending_outbox = self._outbox
        self._redelivery = list(state.pending)

    async def _start(self, nursery: trio.Nursery) -> None:
        if self._notify:
            await self._notify_start()
        nursery.start_soon(self._services, nursery)
        for entry in self._redelivery:
            self._counters.redelivered += 1
            self._dispatch(entry)
        self._redelivery = []
        await nursery.start(self._poll_loop)

    async def _services(self, nursery: trio.Nursery) -> None:
        with self._service_scope:
            async with trio.open_nursery() as services:
                services.start_soon(self._dispatcher.run, nursery)
                services.start_soon(self._flush_loop)

    def _begin_stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._poll_scope.cancel()
        self._service_scope.cancel()
        self._drain_deadline = trio.current_time() + self._drain_timeout
        for scope in self._protected:
            scope.deadline = min(scope.deadline, self._drain_deadline)

    async def _shutdown(self) -> None:
        if self._client.pending_outbox is self._outbox:
            self._client.pending_outbox = None
        with trio.CancelScope(shield=True):
            with trio.move_on_after(SHUTDOWN_STEP_TIMEOUT):
                try:
                    await self._write_marks()
                    await self._store.flush(self._account)
                except Exception:
                    log.exception("%s: final journal flush failed", self._account)
            if self._notify:
                with trio.move_on_after(SHUTDOWN_STEP_TIMEOUT):
                    try:
                        await self._client.notify_stop()
                    except WeixinError as exc:
                        log.warning("%s: notifystop failed: %s", self._account, exc)

    async def _notify_start(self) -> None:
        with trio.move_on_after(10.0):
            try:
                await self._client.notify_start()
            except WeixinError as exc:
                log.warning("%s: notifystart failed: %s", self._account, exc)

    # --- the poll loop -----------------------------------------------------------------

    async def _poll_loop(self, *, task_status: trio.TaskStatus[None]) -> None:
        with self._poll_scope:
            task_status.started()
            while True:
                await self._wait_for_capacity()
                await self._wait_while_paused()
                self._counters.polls += 1
                self._counters.last_poll_at = trio.current_time()
                response: w.GetUpdatesResp | None = None
                try:
                    with trio.move_on_after(self._hint_ms / 1000 + POLL_MARGIN):
                        response = await self._client.get_updates(self._cursor)
                except StaleTokenError as exc:
                    await self._on_stale(exc)
                    continue
                except WeixinError as exc:
                    self._counters.poll_failures += 1
                    delay = self._backoff.next_delay()
                    log.warning(
                        "%s: poll failed (%s); retrying in %.1fs", self._account, exc, delay
                    )
                    await trio.sleep(delay)
                    continue
                self._backoff.reset()
                self._stale_retried = False
                if response is None:
                    continue  # the deadline passed: an empty batch, not a failure
                hint = response.longpolling_timeout_ms
                if hint is not None and hint > 0:
                    self._hint_ms = hint
                await self._accept(response)

    async def _wait_for_capacity(self) -> None:
        while self._unfinished > self._max_pending:
            self._capacity = trio.Event()
            await self._capacity.wait()

    async def _wait_while_paused(self) -> None:
        if self._paused_until is None:
            return
        with trio.move_on_at(self._paused_until):
            await self._resume.wait()
        self._resume = trio.Event()
        self._paused_until = None

    async def _on_stale(self, exc: StaleTokenError) -> None:
        self._counters.stale_tokens += 1
        self._backoff.reset()
        first = not self._stale_retried
        paused_until = None if first else trio.current_time() + self._stale_token_pause
        log.warning(
            "%s: bot token is stale (-14)%s",
            self._account,
            "; retrying once after notifystart" if first else "; pausing polling",
        )
        if self._on_token_stale is not None:
            info = StaleTokenInfo(self._account, exc.ret, exc.errcode, paused_until)
            try:
                await self._on_token_stale(info)
            except Exception:
                log.exception("%s: on_token_stale hook failed", self._account)
        if first:
            self._stale_retried = True
            await self._notify_start()
        else:
            self._stale_retried = False
            self._paused_until = paused_until

    async def _accept(self, response: w.GetUpdatesResp) -> None:
        new_cursor = response.next_cursor or self._cursor
        entries: list[JournalEntry] = []
        parsed: list[w.WeixinMessage] = []
        tokens: dict[str, str] = {}
        inbound: dict[str, float] = {}
        wall = time.time()
        batch_ids: set[int] = set()
        for raw, msg in zip(response.raw_msgs, response.msgs, strict=True):
            if not self._should_process(msg):
                self._counters.filtered += 1
                continue
            mid = msg.message_id if msg.message_id is not None else synthetic_message_id(raw)
            if mid in self._seen or mid in batch_ids:
                self._counters.duplicates += 1
                continue
            batch_ids.add(mid)
            entries.append(JournalEntry(mid, raw))
            parsed.append(msg)
            if msg.from_user_id and msg.context_token:
                tokens[msg.from_user_id] = msg.context_token
            if msg.from_user_id:
                created = (msg.create_time_ms or 0) / 1000 or wall
                inbound[msg.from_user_id] = max(
                    inbound.get(msg.from_user_id, 0), min(created, wall)
                )
        for raw, reason in response.malformed:
            self._counters.malformed += 1
            log.warning("%s: skipped a malformed message: %s", self._account, reason)
            await self._report(None, MalformedMessageError(reason, raw=raw))
        if new_cursor == self._cursor and not entries:
            return
        try:
            await self._store.accept(
                self._account,
                cursor=new_cursor,
                entries=entries,
                context_tokens=tokens,
                last_inbound=inbound,
            )
        except Exception as exc:
            raise MonitorCrashed(
                f"{self._account}: cannot journal a batch, stopping before the cursor moves: {exc}"
            ) from exc
        now = trio.current_time()
        if new_cursor != self._cursor:
            self._cursor = new_cursor
            self._counters.cursor_updated_at = now
        self._client.context_tokens.update(tokens)
        windows = self._client.send_windows
        if windows is not None:
            for user, at in inbound.items():
                windows.record_inbound(user, at)
        if entries:
            self._counters.batches += 1
            self._counters.last_message_at = now
        for entry, msg in zip(entries, parsed, strict=True):
            self._remember(entry.message_id)
            self._dispatch(entry, msg)

    def _remember(self, mid: int) -> None:
        self._seen.add(mid)
        self._seen_order.append(mid)
        if len(self._seen_order) > self._seen_window:
            self._seen.discard(self._seen_order.popleft())

    # --- dispatch and handling ------------------------------------------------------------

    def _dispatch(self, entry: JournalEntry, wire: w.WeixinMessage | None = None) -> None:
        """Queue an accepted entry; ``wire`` is its parsed form when already at hand."""
        self._counters.accepted += 1
        self._unfinished += 1
        self._idle = trio.Event() if self._idle.is_set() else self._idle
        try:
            ctx = ReplyContext(self._client)
            if wire is None:
                wire = w.structure(entry.raw, w.WeixinMessage)
            message = Message.from_wire(wire, message_id=entry.message_id, ctx=ctx)
        except Exception as exc:  # journaled JSON that no longer parses
            self._counters.malformed += 1
            self._dead.append(
                DeadLetter(entry.message_id, entry.raw, entry.attempts, repr(exc), 0.0)
            )
            self._finish(None, done=False)
            return
        work = _Work(entry, message)
        if self._control is not None and self._control(message):
            self._nursery_spawn(work)
        else:
            self._dispatcher.submit(self._lane_key(message), work)

    def _nursery_spawn(self, work: _Work) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(self._run_work, None, work)

    async def _run_work(self, lane: Lane[_Work] | None, work: _Work) -> None:
        del lane
        self._in_flight += 1
        try:
            await self._handle_with_retries(work)
        finally:
            self._in_flight -= 1

    async def _flush_outbox(self, user_id: str) -> None:
        """Send texts queued for ``user_id`` while its window was closed, oldest first."""
        for entry in self._outbox.queued(user_id):
            try:
                await self._client.send_text(
                    user_id, entry.text, client_id=outbox_client_id(entry.entry_id)
                )
            except WeixinError as exc:
                log.warning("%s: queued text for %s stays queued: %s", self._account, user_id, exc)
                return
            except ValueError:
                log.warning("%s: dropping an empty queued text for %s", self._account, user_id)
            await self._outbox.sent(entry)

    async def _handle_with_retries(self, work: _Work) -> None:
        if self._outbox.queued(work.message.from_user_id):
            with self._protected_scope():
                await self._flush_outbox(work.message.from_user_id)
        attempts = work.entry.attempts
        while True:
            outcome = await self._attempt(work)
            if outcome is None:
                self._counters.handled += 1
                self._finish(work, done=True)
                return
            if outcome == "interrupted":
                self._counters.interrupted += 1
                self._finish(work, done=True)
                return
            if outcome == "cut":
                self._finish(work, done=False)  # stays pending: redelivered at next start
                return
            attempts += 1
            if attempts >= self._max_attempts:
                self._counters.dead_lettered += 1
                self._dead.append(
                    DeadLetter(
                        work.entry.message_id,
                        work.entry.raw,
                        attempts,
                        repr(outcome),
                        trio.current_time(),
                    )
                )
                log.error(
                    "%s: message %d dead-lettered after %d attempts",
                    self._account,
                    work.entry.message_id,
                    attempts,
                )
                self._finish(work, done=False)
                return
            self._failures[work.entry.message_id] = attempts
            self._dirty.set()
            if not await self._protected_sleep(self._retry_backoff.next_delay()):
                self._finish(work, done=False)
                return

    async def _attempt(self, work: _Work) -> Exception | str | None:
        """Run the handler once; ``None`` on success, ``"cut"``/``"interrupted"``, or the error."""
        outcome: Exception | str | None = None
        with self._protected_scope() as scope:
            work.scope = scope
            if self._handler_timeout is not None:
                scope.deadline = min(scope.deadline, trio.current_time() + self._handler_timeout)
            try:
                await self._handler(work.message)
            except Exception as exc:
                outcome = exc
                self._counters.failed += 1
                log.warning(
                    "%s: handler failed for message %d: %s: %s",
                    self._account,
                    work.entry.message_id,
                    type(exc).__name__,
                    exc,
                )
                await self._report(work.message, exc)
        work.scope = None
        if not scope.cancelled_caught:
            return outcome
        if work.interrupted:
            return "interrupted"
        if self._stopping and trio.current_time() >= self._drain_deadline:
            return "cut"
        self._counters.failed += 1
        self._counters.timed_out += 1
        timeout = TimeoutError(f"handler exceeded handler_timeout={self._handler_timeout}s")
        await self._report(work.message, timeout)
        return timeout

    @contextmanager
    def _protected_scope(self) -> Iterator[trio.CancelScope]:
        """A shielded scope that a stop bounds with the drain deadline."""
        with trio.CancelScope(shield=True, deadline=self._drain_deadline) as scope:
            self._protected.add(scope)
            try:
                yield scope
            finally:
                self._protected.discard(scope)

    async def _protected_sleep(self, seconds: float) -> bool:
        """Sleep between attempts; ``False`` if a stop cut it short."""
        with self._protected_scope():
            await trio.sleep(seconds)
        return not self._stopping

    async def _report(self, message: Message | None, exc: Exception) -> None:
        if self._on_error is None:
            return
        try:
            await self._on_error(message, exc)
        except Exception:
            log.exception("%s: on_error hook failed", self._account)

    def _finish(self, work: _Work | None, *, done: bool) -> None:
        if work is not None and done:
            self._done_ids.append(work.entry.message_id)
            self._failures.pop(work.entry.message_id, None)
        self._dirty.set()
        self._unfinished -= 1
        if self._unfinished <= self._max_pending:
            self._capacity.set()
        if self._unfinished == 0:
            self._idle.set()

    # --- group commit of done marks -----------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty = trio.Event()
            try:
                await self._write_marks()
            except Exception as exc:
                raise MonitorCrashed(f"{self._account}: cannot write the journal: {exc}") from exc

    async def _write_marks(self) -> None:
        """Write buffered done marks, failure counts and dead letters.

        Shielded, so a stop cannot cut a write in half and lose what it took from the
        buffers; items leave the buffers only after they were written.
        """
        with trio.CancelScope(shield=True):
            done = list(self._done_ids)
            if done:
                await self._store.mark_done(self._account, done)
                del self._done_ids[: len(done)]
            failures = dict(self._failures)
            for mid, attempts in failures.items():
                await self._store.record_failure(self._account, mid, attempts)
                if self._failures.get(mid) == attempts:
                    del self._failures[mid]
            while self._dead:
                await self._store.dead_letter(self._account, self._dead[0])
                self._dead.pop(0)


def _default_lane_key(message: Message) -> str:
    return message.from_user_id


@asynccontextmanager
async def open_monitor(
    client: ILinkClient,
    handler: Handler,
    *,
    store: Store | None = None,
    max_concurrency: int = 16,
    max_pending: int = 128,
    max_attempts: int = 3,
    drain_timeout: float = 10.0,
    handler_timeout: float | None = None,
    stale_token_pause: float = 3600.0,
    should_process: Callable[[w.WeixinMessage], bool] = should_process,
    lane_key: Callable[[Message], str] = _default_lane_key,
    control: Callable[[Message], bool] | None = None,
    on_error: ErrorHook | None = None,
    on_token_stale: StaleTokenHook | None = None,
    backoff: Backoff | None = None,
    retry_backoff: Backoff | None = None,
    notify: bool = True,
) -> AsyncIterator[Monitor]:
    """Run a monitor for ``client``'s account while the block runs.

    Yields once the journal is loaded, unfinished messages are queued for redelivery
    and the poll task is running. Leaving the block, :meth:`Monitor.stop` and
    cancellation all stop it the same way: the parked long poll is aborted at once,
    running handlers get ``drain_timeout`` seconds, the journal is flushed and
    ``notifystop`` is sent (shielded, with a short deadline).

    Args:
        client: The account's client (from :func:`open_client`).
        handler: ``async def handler(msg: Message) -> None``, called once per message.
        store: Where the cursor and journal live; default a fresh :class:`MemoryStore`
            (nothing survives the process; use :class:`FileStore` for real bots).
        max_concurrency: Handlers running at once (one ``trio.CapacityLimiter``).
        max_pending: The poll loop stops fetching while more accepted messages than
            this are unfinished (backpressure; at most one batch more is held).
        max_attempts: Handler runs per message before it is dead-lettered.
        drain_timeout: Seconds running handlers get at stop before they are cancelled.
        handler_timeout: Optional deadline of one handler run (counts as a failure).
        stale_token_pause: Seconds polling pauses after a ``-14`` (after one retry).
        should_process: Inbound filter (default: user messages, not recalled, not
            generating).
        lane_key: Key of the FIFO lane of a message (default: the sender).
        control: Messages matching it bypass their lane and run at once, e.g.
            ``lambda m: m.text == "/stop"`` with a handler calling
            :meth:`Monitor.interrupt`.
        on_error: ``async (message | None, exc)``, called for each handler failure and
            for each malformed message (``message`` is then ``None``; the error is a
            ``MalformedMessageError`` carrying the raw JSON).
        on_token_stale: ``async (StaleTokenInfo)``, called on every ``-14``.
        backoff: Delay policy for failed polls (default :class:`Backoff`: 2 s, 2 s, 30 s).
        retry_backoff: Delay policy between attempts of a failing handler (default
            1 s, 1 s, ...).
        notify: Send ``notifystart``/``notifystop``.

    Yields:
        The running :class:`Monitor`.

    Raises:
        MonitorCrashed: (inside an ``ExceptionGroup``) the store failed; nothing was
            acknowledged that was not journaled.

    Cancellation:
        Cancelling the block stops the monitor as described above; every accepted
        message that did not finish stays in the store and is redelivered next time.
    """
    if max_concurrency < 1 or max_pending < 1 or max_attempts < 1:
        raise ValueError("max_concurrency, max_pending and max_attempts must be >= 1")
    monitor = Monitor._create(
        client=client,
        handler=handler,
        store=store if store is not None else MemoryStore(),
        max_concurrency=max_concurrency,
        max_pending=max_pending,
        max_attempts=max_attempts,
        drain_timeout=drain_timeout,
        handler_timeout=handler_timeout,
        stale_token_pause=stale_token_pause,
        should_process=should_process,
        lane_key=lane_key,
        control=control,
        on_error=on_error,
        on_token_stale=on_token_stale,
        backoff=backoff if backoff is not None else Backoff(),
        retry_backoff=retry_backoff
        if retry_backoff is not None
        else Backoff(retry_delay=1.0, backoff_delay=1.0),
        notify=notify,
    )
    await monitor._load()
    try:
        async with trio.open_nursery() as nursery:
            monitor._nursery = nursery
            try:
                await monitor._start(nursery)
                with trio.CancelScope() as body:
                    monitor._body_scope = body
                    if monitor._stop_requested:
                        body.cancel()
                    yield monitor
            finally:
                monitor._begin_stop()
    finally:
        await monitor._shutdown()


async def run_monitor(
    client: ILinkClient,
    handler: Handler,
    *,
    task_status: trio.TaskStatus[Monitor] = trio.TASK_STATUS_IGNORED,
    **options: Any,
) -> None:
    """Run a monitor until cancelled or stopped, for callers that own a nursery.

    ``monitor = await nursery.start(run_monitor, client, handler)`` returns once the
    monitor is running. Options are those of :func:`open_monitor`.

    Cancellation:
        As :func:`open_monitor`.
    """
    async with open_monitor(client, handler, **options) as monitor:
        task_status.started(monitor)
        await trio.sleep_forever()
