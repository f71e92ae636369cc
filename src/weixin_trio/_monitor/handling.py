"""How a monitor runs its handlers: dispatch, the handler runner, interrupts, group commit.

A mixin of [`Monitor`][weixin_trio.Monitor] (it shares the monitor's state, declared
below); split out to keep each module readable. Attempts, timeouts, retry backoff and
dead letters are the `HandlerRunner`'s, shared
with the Redis fan-out worker; the monitor is its `RunHost`.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

import attrs
import trio

from .. import _wire as w
from .._client.message import Message, ReplyContext
from .._errors import MonitorCrashed, WeixinError
from .._handler_runner import HandlerRunner, Job
from .._proto.client_ids import outbox_client_id
from .._proto.quarantine import identity_problem, quarantined_reason
from ..store import DeadLetter, JournalEntry, LeaseLostError, StoreUnavailableError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from contextlib import AbstractContextManager

    from .._client.ilink_client import ILinkClient
    from .._proto.backoff import Backoff
    from ..store import Store
    from .lanes import Dispatcher, Lane
    from .pending_outbox import PendingOutbox
    from .values import MonitorCounters

__all__ = ["HandlingMixin", "Work"]

log = logging.getLogger("weixin_trio.monitor")


@attrs.define(eq=False, kw_only=True)
class Work(Job):
    """One accepted message on its way through a lane."""

    entry: JournalEntry


class HandlingMixin:
    """Dispatching and handling of accepted messages (part of ``Monitor``)."""

    _client: ILinkClient
    _runner: HandlerRunner
    _store: Store
    _account: str
    _counters: MonitorCounters
    _max_pending: int
    _retry_backoff: Backoff
    _lane_key: Callable[[Message], str]
    _control: Callable[[Message], bool] | None
    _nursery: trio.Nursery | None
    _dispatcher: Dispatcher[Work]
    _outbox: PendingOutbox
    _protected: set[trio.CancelScope]
    _waiting: set[trio.CancelScope]
    _stopping: bool
    _drain_deadline: float
    _unfinished: int
    _in_flight: int
    _capacity: trio.Event
    _idle: trio.Event
    _done_ids: list[int]
    _failures: dict[int, int]
    _dead: list[DeadLetter]
    _dirty: trio.Event

    # --- dispatch and handling ------------------------------------------------------------

    def _dispatch(self, entry: JournalEntry, wire: w.WeixinMessage | None = None) -> None:
        """Queue an accepted entry; ``wire`` is its parsed form when already at hand."""
        self._counters.accepted += 1
        self._unfinished += 1
        self._idle = trio.Event() if self._idle.is_set() else self._idle
        reason = quarantined_reason(entry.raw)
        message = None
        if reason is None:
            try:
                if wire is None:  # a redelivery: judge the journaled JSON again
                    wire = w.structure(entry.raw, w.WeixinMessage)
                    reason = identity_problem(wire)
                if reason is None:
                    ctx = ReplyContext(self._client)
                    message = Message.from_wire(wire, message_id=entry.message_id, ctx=ctx)
            except Exception as exc:  # journaled JSON that no longer parses
                reason = f"journaled message does not parse: {exc!r}"
        if message is None:
            self._set_aside(entry, reason or "unknown")
            return
        work = Work(message=message, raw=entry.raw, attempts=entry.attempts, entry=entry)
        if self._control is not None and self._control(message):
            self._nursery_spawn(work)
        else:
            self._dispatcher.submit(self._lane_key(message), work)

    def _set_aside(self, entry: JournalEntry, reason: str) -> None:
        """Dead-letter a message that cannot be handled (it never reaches the handler)."""
        self._counters.malformed += 1
        self._counters.dead_lettered += 1
        log.warning("%s: dead-lettered malformed message %d", self._account, entry.message_id)
        letter = DeadLetter(
            entry.message_id, entry.raw, entry.attempts, f"malformed: {reason}", time.time()
        )
        self._dead.append(letter)
        self._finish(None, done=False)

    def _nursery_spawn(self, work: Work) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(self._run_work, None, work)

    async def _run_work(self, lane: Lane[Work] | None, work: Work) -> None:
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

    async def _handle_with_retries(self, work: Work) -> None:
        if self._outbox.queued(work.message.from_user_id):
            with self._protected_scope():
                await self._flush_outbox(work.message.from_user_id)
        outcome = await self._runner.run(work, self)
        if outcome.dead_letter is not None:
            self._dead.append(outcome.dead_letter)
        # "cut" stays pending (redelivered at the next start), as does a dead letter
        # until the letter is written with it.
        self._finish(work, done=outcome.finished)

    # --- RunHost ------------------------------------------------------------------------

    def attempt_scope(self) -> AbstractContextManager[trio.CancelScope]:
        """An attempt runs shielded; a stop bounds it with the drain deadline."""
        return self._protected_scope()

    @contextmanager
    def wait_scope(self) -> Iterator[trio.CancelScope]:
        """The wait before the next attempt: shielded, but a stop ends it at once."""
        with self._protected_scope() as scope:
            if self._stopping:
                scope.cancel()
            self._waiting.add(scope)
            try:
                yield scope
            finally:
                self._waiting.discard(scope)

    def cut(self) -> bool:
        """Whether a cancelled attempt was cut by the drain deadline."""
        return self._stopping and trio.current_time() >= self._drain_deadline

    def stopping(self) -> bool:
        """No new attempt starts once a stop began."""
        return self._stopping

    def failed(self, job: Job, attempts: int) -> None:
        """Record the failure count, so a restart continues it."""
        self._failures[job.message.message_id] = attempts
        self._dirty.set()

    @contextmanager
    def _protected_scope(self) -> Iterator[trio.CancelScope]:
        """A shielded scope that a stop bounds with the drain deadline."""
        with trio.CancelScope(shield=True, deadline=self._drain_deadline) as scope:
            self._protected.add(scope)
            try:
                yield scope
            finally:
                self._protected.discard(scope)

    async def _report(self, message: Message | None, exc: Exception) -> None:
        await self._runner.report(message, exc)

    def _finish(self, work: Work | None, *, done: bool) -> None:
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
                # Each store call is shielded, so a stop does not cut a write in half;
                # the drain deadline bounds it (a hung store cannot hold the stop), and
                # what is not written stays buffered for the shutdown's final write.
                if not await self._write_marks(lambda: self._drain_deadline):
                    return
                self._retry_backoff.reset()  # the next outage starts a new streak
            except StoreUnavailableError as exc:
                # The marks stay buffered; a lost mark only means a redelivery later.
                self._counters.store_failures += 1
                log.warning("%s: cannot write done marks (%s); retrying", self._account, exc)
                self._dirty.set()
                await trio.sleep(self._retry_backoff.next_delay())
            except Exception as exc:
                raise self._store_crash(exc, "cannot write the journal") from exc

    def _store_crash(self, exc: Exception, what: str) -> MonitorCrashed:
        """The error that ends the monitor after a store write failed for good."""
        if isinstance(exc, LeaseLostError):
            lost = f"{self._account}: stopping: the account's lease was lost ({exc})"
            return MonitorCrashed(lost)
        return MonitorCrashed(f"{self._account}: {what}: {exc}")

    async def _write_marks(self, deadline: Callable[[], float]) -> bool:
        """Write buffered done marks, failure counts and dead letters.

        Each store call runs in its own shielded scope whose deadline is ``deadline()``
        (taken when the call starts): one scope, one deadline, no shield inside that
        could outlive it. Items leave the buffers only after they were written, so a
        call cut short loses nothing.

        Returns:
            ``False`` if a call did not finish by its deadline (the store hangs; the
            rest stays buffered), else ``True``.
        """
        done = list(self._done_ids)
        if done:
            if not await self._bounded(deadline(), self._store.mark_done(self._account, done)):
                return False
            del self._done_ids[: len(done)]
        for mid, attempts in dict(self._failures).items():
            call = self._store.record_failure(self._account, mid, attempts)
            if not await self._bounded(deadline(), call):
                return False
            if self._failures.get(mid) == attempts:
                del self._failures[mid]
        while self._dead:
            if not await self._bounded(
                deadline(), self._store.dead_letter(self._account, self._dead[0])
            ):
                return False
            self._dead.pop(0)
        return True

    async def _bounded(self, deadline: float, call: Awaitable[object]) -> bool:
        """Await one store call, shielded, until ``deadline``; whether it finished.

        Before a stop, a later stop moves the deadline to the drain deadline.
        """
        with trio.CancelScope(shield=True, deadline=deadline) as scope:
            if not self._stopping:
                self._protected.add(scope)
            try:
                await call
            finally:
                self._protected.discard(scope)
            return True
        return False  # cut at its deadline (or it passed before the call started)
