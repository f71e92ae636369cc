"""``Monitor``: the long-poll task and durable acceptance of one account's messages.

Structure (DESIGN §5): one nursery per monitor; the poll loop runs in its own cancel
scope and is the only task of a parked monitor (handler tasks and the flusher start
when there is work). The monitor holds its parts (no mixin): `Handling` (lanes, handler runs, the
runner's host), `Drain` (a stop's bounded drain) and `Commits` (done marks).

Delivery: a batch's accepted messages and its new cursor are journaled in one atomic
store write *before* they are dispatched; done marks are group-committed by a flusher
task. Unfinished entries are redelivered at the next start, and their replies reuse
deterministic ``client_id``s, so WeChat shows them once.

Exception policy: internal failures raise [`MonitorCrashed`][weixin_trio.MonitorCrashed];
``open_monitor`` raises a single exception as itself (``_util.unwrap_single_error``).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING, final

import attrs
import trio

from .._errors import MonitorCrashed, StaleTokenError, WeixinError
from .._proto.quarantine import (
    identity_problem,
    journalable,
    quarantine,
    sane_time_ms,
    synthetic_message_id,
    usable_id,
    wire_message_id,
)
from .._util import NoPublicConstructor
from ..store import JournalEntry, Store, StoreUnavailableError
from ..store._journal import DEFAULT_SEEN_WINDOW
from .commits import Commits, Drain
from .handler_runner import HandlerRunner
from .handling import Handling
from .pending_outbox import PendingOutbox
from .stop_slots import notify_stop
from .values import (
    ErrorHook,
    Handler,
    MalformedMessageError,
    MonitorCounters,
    MonitorStatistics,
    StaleTokenHook,
    StaleTokenInfo,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from .. import _wire as w
    from .._client.ilink_client import ILinkClient
    from .._client.message import Message
    from .._proto.backoff import Backoff
    from .._proto.error_notices import ErrorNotices, NoticeText

__all__ = ["Monitor"]

log = logging.getLogger("weixin_trio.monitor")

#: Added to the server's hold to get the client deadline of one long poll.
POLL_MARGIN = 5.0
#: What a store raises when a record cannot be encoded (nothing was written).
_UNENCODABLE = (ValueError, TypeError, RecursionError, OverflowError)
#: Time allowed for the final journal flush and for ``notifystop`` at shutdown.
SHUTDOWN_STEP_TIMEOUT = 3.0


@final
class Monitor(metaclass=NoPublicConstructor):
    """A running monitor; obtain it from `open_monitor` or `run_monitor`.

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
        error_notice: ErrorNotices | NoticeText | None = None,
    ) -> None:
        # At most 30 attributes: CPython then shares the instance dict's keys across
        # monitors (~1.3 KiB less per account than an unshared dict).
        self._client = client
        self._live = client._state  # the account's state: the monitor reports inbound
        self._store = store
        self._account = client.account_id
        self._max_pending = max_pending
        self._drain_timeout = drain_timeout
        self._stale_token_pause = stale_token_pause
        self._should_process = should_process
        self._on_token_stale = on_token_stale
        self._backoff = backoff
        self._notify = notify
        self._counters = MonitorCounters()
        self._runner = HandlerRunner(
            handler,
            max_attempts=max_attempts,
            handler_timeout=handler_timeout,
            retry_backoff=retry_backoff,
            counters=self._counters,
            on_error=on_error,
            name=self._account,
            error_notice=error_notice,
        )
        self._cursor = ""
        self._seen: set[int] = set()
        self._seen_order: deque[int] | None = None  # created with the first id
        self._seen_window = DEFAULT_SEEN_WINDOW
        self._poll_scope = trio.CancelScope()
        self._body_scope: trio.CancelScope | None = None
        self._stop_requested = False
        self._paused_until: float | None = None
        self._resume: trio.Event | None = None  # while paused
        self._stale_retried = False
        self._redelivery: list[JournalEntry] = []
        self._drain = Drain()
        self._commits = Commits(store, self._account, self._drain, self._counters, retry_backoff)
        self._handling = Handling(
            client=client,
            runner=self._runner,
            account=self._account,
            counters=self._counters,
            max_concurrency=max_concurrency,
            max_pending=max_pending,
            lane_key=lane_key,
            control=control,
            drain=self._drain,
            commits=self._commits,
            outbox=PendingOutbox(store, self._account),
            store=store,
        )

    # --- public API ---------------------------------------------------------------------

    @property
    def client(self) -> ILinkClient:
        """The client this monitor polls with."""
        return self._client

    @property
    def account_id(self) -> str:
        """The account this monitor serves (its store namespace)."""
        return self._account

    def stop(self, *, drain_timeout: float | None = None, notify: bool | None = None) -> None:
        """Stop the monitor: abort the poll at once, drain handlers, then exit.

        The ``async with open_monitor(...)`` block (or `run_monitor`) ends without
        an exception. Safe to call more than once (a later call can only shorten the
        drain), and from a handler.

        Args:
            drain_timeout: Use this drain instead of the monitor's ``drain_timeout``;
                ``0`` cancels running handlers at once (their messages stay pending),
                e.g. when another process has taken the account over.
            notify: Whether to send ``notifystop`` (default: as configured).
        """
        if notify is not None:
            self._notify = notify
        if drain_timeout is not None:
            self._drain_timeout = min(self._drain_timeout, drain_timeout)
            if self._drain.stopping:
                self._drain.set_deadline(trio.current_time() + drain_timeout)
        self._stop_requested = True
        if self._body_scope is not None:
            self._body_scope.cancel()

    def resume(self) -> None:
        """End a stale-token pause now (e.g. after a new login updated the token)."""
        self._paused_until = None
        if self._resume is not None:
            self._resume.set()

    def interrupt(self, lane_key: str, *, drop_queued: bool = False) -> bool:
        """Cancel the handler running in ``lane_key``'s lane (e.g. on a ``/stop`` message).

        The interrupted message counts as finished (it is not retried). Queued messages
        of the lane run next, unless ``drop_queued`` is true, in which case they are
        finished without running.

        Returns:
            Whether a running handler was cancelled.
        """
        lane = self._handling.dispatcher.lane(lane_key)
        if lane is None:
            return False
        if drop_queued:
            while lane.queue:
                self._counters.interrupted += 1
                self._handling.finish(lane.queue.popleft(), done=True)
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
            in_flight=self._handling.in_flight,
            pending=self._handling.unfinished,
            lanes=self._handling.dispatcher.lanes,
            consecutive_failures=self._backoff.consecutive_failures,
            paused_until=self._paused_until,
        )

    async def wait_idle(self) -> None:
        """Wait until no accepted message is pending (queued or running).

        Cancellation:
            Safe.
        """
        while self._handling.unfinished:
            if self._handling.idle is None:
                self._handling.idle = trio.Event()
            await self._handling.idle.wait()
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
        self._live.record_inbound(state.context_tokens, state.last_inbound)
        self._handling.outbox = PendingOutbox(self._store, self._account, state.outbox)
        self._live.pending_outbox = self._handling.outbox
        self._redelivery = list(state.pending)

    async def _start(self, nursery: trio.Nursery) -> None:
        if self._notify:
            await self._notify_start()
        self._handling.dispatcher.attach(nursery)
        self._commits.start(nursery)
        for entry in self._redelivery:
            self._counters.redelivered += 1
            self._handling.dispatch(entry)
        self._redelivery = []
        await nursery.start(self._poll_loop)

    def _begin_stop(self) -> None:
        if self._drain.stopping:
            return
        self._poll_scope.cancel()
        self._handling.dispatcher.close()
        self._commits.stop()
        self._drain.begin(trio.current_time() + self._drain_timeout)

    async def _shutdown(self) -> None:
        """The final journal write and ``notifystop``, bounded by the step limit.

        Every store call of the final write, and ``notifystop``, runs in one shielded
        scope that carries its own deadline (`SHUTDOWN_STEP_TIMEOUT`), with no
        shield inside that could outlive it: a hung store or a hung request cannot
        hold the stop. The first store call that does not finish in time ends the
        write (whatever is not written is redelivered at the next start).
        """
        if self._live.pending_outbox is self._handling.outbox:
            self._live.pending_outbox = None

        def step() -> float:
            return trio.current_time() + SHUTDOWN_STEP_TIMEOUT

        try:
            if await self._commits.write(step):
                if not await self._drain.bounded(step(), self._store.flush(self._account)):
                    log.warning("%s: the final journal sync did not finish", self._account)
            else:
                log.warning("%s: the final journal write did not finish", self._account)
        except Exception:
            log.exception("%s: final journal flush failed", self._account)
        if self._notify:  # shielded; many monitors stopping at once take turns
            await notify_stop(self._client, SHUTDOWN_STEP_TIMEOUT)

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
                    with trio.move_on_after(self._live.long_poll_hint_ms / 1000 + POLL_MARGIN):
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
                # get_updates recorded the server's hint in the account's LiveState
                await self._accept(response)

    async def _wait_for_capacity(self) -> None:
        while self._handling.unfinished > self._max_pending:
            self._handling.capacity = trio.Event()
            await self._handling.capacity.wait()

    async def _wait_while_paused(self) -> None:
        if self._paused_until is None:
            return
        self._resume = trio.Event()
        with trio.move_on_at(self._paused_until):
            await self._resume.wait()
        self._resume = None
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
        parsed: list[w.WeixinMessage | None] = []
        tokens: dict[str, str] = {}
        inbound: dict[str, float] = {}
        wall = time.time()
        batch_ids: set[int] = set()

        def fresh(mid: int) -> bool:
            if mid in self._seen or mid in batch_ids:
                self._counters.duplicates += 1
                return False
            batch_ids.add(mid)
            return True

        for raw, msg in zip(response.raw_msgs, response.msgs, strict=True):
            if not self._should_process(msg):
                self._counters.filtered += 1
                continue
            wire_id = usable_id(msg.message_id)
            mid = synthetic_message_id(raw) if wire_id is None else wire_id
            if not fresh(mid):
                continue
            problem = identity_problem(msg)
            if problem is not None:
                entries.append(JournalEntry(mid, quarantine(raw, problem)))
                parsed.append(None)
                await self._runner.report(None, MalformedMessageError(problem, raw=raw))
                continue
            entries.append(JournalEntry(mid, raw))
            parsed.append(msg)
            user = msg.from_user_id
            if user:
                if msg.context_token:
                    tokens[user] = msg.context_token
                created = min(sane_time_ms(msg.create_time_ms, fallback=wall), wall)
                inbound[user] = max(inbound.get(user, 0.0), created)
        for raw, reason in response.malformed:
            wire_id = wire_message_id(raw)
            mid = synthetic_message_id(raw) if wire_id is None else wire_id
            if not fresh(mid):
                continue
            log.warning("%s: set aside a malformed message: %s", self._account, reason)
            entries.append(JournalEntry(mid, quarantine(raw, reason)))
            parsed.append(None)
            await self._runner.report(None, MalformedMessageError(reason, raw=raw))
        if new_cursor == self._cursor and not entries:
            return
        await self._journal(new_cursor, entries, tokens, inbound)
        now = trio.current_time()
        if new_cursor != self._cursor:
            self._cursor = new_cursor
            self._counters.cursor_updated_at = now
        self._live.record_inbound(tokens, inbound)
        if entries:
            self._counters.batches += 1
            self._counters.last_message_at = now
        for entry, wire in zip(entries, parsed, strict=True):
            self._remember(entry.message_id)
            self._handling.dispatch(entry, wire)

    async def _journal(
        self,
        cursor: str,
        entries: list[JournalEntry],
        tokens: dict[str, str],
        inbound: dict[str, float],
    ) -> None:
        """Journal a batch; while the store is unreachable, hold it and retry.

        Polling waits meanwhile (the cursor never moves past what is not journaled).
        """
        while True:
            try:
                await self._store.accept(
                    self._account,
                    cursor=cursor,
                    entries=entries,
                    context_tokens=tokens,
                    last_inbound=inbound,
                )
            except _UNENCODABLE as exc:
                # A message whose JSON cannot be encoded must not stop the account: set
                # it aside (its quarantine record always encodes) and journal the rest.
                kept = [
                    e if journalable(e.raw) else attrs.evolve(e, raw=quarantine(e.raw, repr(exc)))
                    for e in entries
                ]
                if all(k is e for k, e in zip(kept, entries, strict=True)):
                    raise self._commits.crash(exc, "cannot journal a batch") from exc
                entries[:] = kept
                continue
            except StoreUnavailableError as exc:
                self._counters.store_failures += 1
                delay = self._backoff.next_delay()
                log.warning(
                    "%s: cannot journal a batch (%s); holding it, retrying in %.1fs",
                    self._account,
                    exc,
                    delay,
                )
                await trio.sleep(delay)
                continue
            except Exception as exc:
                what = "cannot journal a batch, stopping before the cursor moves"
                raise self._commits.crash(exc, what) from exc
            self._backoff.reset()
            return

    def _remember(self, mid: int) -> None:
        self._seen.add(mid)
        if self._seen_order is None:
            self._seen_order = deque()
        self._seen_order.append(mid)
        if len(self._seen_order) > self._seen_window:
            self._seen.discard(self._seen_order.popleft())
