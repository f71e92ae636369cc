"""How a monitor runs its handlers: dispatch into lanes, handler runs, interrupts.

`Handling` is a part the [`Monitor`][weixin_trio.Monitor] holds (no mixin). It owns the
lane dispatcher and the count of unfinished messages (the backpressure the poll loop
waits on), and it is the `RunHost` of the `HandlerRunner` (attempts, timeouts, retry
backoff and dead letters are the runner's, shared with the Redis fan-out worker):
attempts run in the `Drain`'s protected scopes, results go to the `Commits`.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, final

import attrs
import trio

from .. import _wire as w
from .._client.message import Message, ReplyContext
from .._errors import WeixinError
from .._proto.client_ids import outbox_client_id
from .._proto.quarantine import identity_problem, quarantined_reason
from ..store import DeadLetter, JournalEntry
from .handler_runner import HandlerRunner, Job
from .lanes import Dispatcher

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from .._client.ilink_client import ILinkClient
    from ..store import Store
    from .commits import Commits, Drain
    from .lanes import Lane
    from .pending_outbox import PendingOutbox
    from .values import MonitorCounters

__all__ = ["Handling", "Work"]

log = logging.getLogger("weixin_trio.monitor")


@attrs.define(eq=False, kw_only=True)
class Work(Job):
    """One accepted message on its way through a lane."""

    entry: JournalEntry


@final
class Handling:
    """Dispatching and handling of a monitor's accepted messages (its ``RunHost``)."""

    def __init__(
        self,
        *,
        client: ILinkClient,
        runner: HandlerRunner,
        account: str,
        counters: MonitorCounters,
        max_concurrency: int,
        max_pending: int,
        lane_key: Callable[[Message], str],
        control: Callable[[Message], bool] | None,
        drain: Drain,
        commits: Commits,
        outbox: PendingOutbox,
        store: Store | None = None,
    ) -> None:
        self._client = client
        self._store = store  # what messages hand to msg.state and access control
        self._runner = runner
        self._account = account
        self._counters = counters
        self._max_pending = max_pending
        self._lane_key = lane_key
        self._control = control
        self._drain = drain
        self._commits = commits
        self.outbox = outbox
        self.nursery: trio.Nursery | None = None
        # The dispatcher borrows a slot before it spawns a handler and returns it in
        # ``finally``: one CapacityLimiter bounds every lane of the account.
        self.limiter = trio.CapacityLimiter(max_concurrency)
        self.dispatcher: Dispatcher[Work] = Dispatcher(self._run_work, self.limiter)
        self.unfinished = 0
        self.in_flight = 0
        # Created by whoever waits (a parked account keeps none).
        self.capacity: trio.Event | None = None
        self.idle: trio.Event | None = None

    # --- dispatch and handling ------------------------------------------------------------

    def dispatch(self, entry: JournalEntry, wire: w.WeixinMessage | None = None) -> None:
        """Queue an accepted entry; ``wire`` is its parsed form when already at hand."""
        self._counters.accepted += 1
        self.unfinished += 1
        reason = quarantined_reason(entry.raw)
        message = None
        if reason is None:
            try:
                if wire is None:  # a redelivery: judge the journaled JSON again
                    wire = w.structure(entry.raw, w.WeixinMessage)
                    reason = identity_problem(wire)
                if reason is None:
                    ctx = ReplyContext(self._client, store=self._store)
                    message = Message.from_wire(wire, message_id=entry.message_id, ctx=ctx)
            except Exception as exc:  # journaled JSON that no longer parses
                reason = f"journaled message does not parse: {exc!r}"
        if message is None:
            self._set_aside(entry, reason or "unknown")
            return
        work = Work(message=message, raw=entry.raw, attempts=entry.attempts, entry=entry)
        if self._control is not None and self._control(message):
            assert self.nursery is not None
            self.nursery.start_soon(self._run_work, None, work)
        else:
            self.dispatcher.submit(self._lane_key(message), work)

    def _set_aside(self, entry: JournalEntry, reason: str) -> None:
        """Dead-letter a message that cannot be handled (it never reaches the handler)."""
        self._counters.malformed += 1
        self._counters.dead_lettered += 1
        log.warning("%s: dead-lettered malformed message %d", self._account, entry.message_id)
        letter = DeadLetter(
            entry.message_id, entry.raw, entry.attempts, f"malformed: {reason}", time.time()
        )
        self._commits.dead_letter(letter)
        self.finish(None, done=False)

    async def _run_work(self, lane: Lane[Work] | None, work: Work) -> None:
        del lane
        self.in_flight += 1
        try:
            await self._handle_with_retries(work)
        finally:
            self.in_flight -= 1

    async def _flush_outbox(self, user_id: str) -> None:
        """Send texts queued for ``user_id`` while its window was closed, oldest first."""
        for entry in self.outbox.queued(user_id):
            try:
                await self._client.send_text(
                    user_id, entry.text, client_id=outbox_client_id(entry.entry_id)
                )
            except WeixinError as exc:
                log.warning("%s: queued text for %s stays queued: %s", self._account, user_id, exc)
                return
            except ValueError:
                log.warning("%s: dropping an empty queued text for %s", self._account, user_id)
            await self.outbox.sent(entry)

    async def _handle_with_retries(self, work: Work) -> None:
        if self.outbox.queued(work.message.from_user_id):
            with self._drain.protected():
                await self._flush_outbox(work.message.from_user_id)
        outcome = await self._runner.run(work, self)
        if outcome.dead_letter is not None:
            self._commits.dead_letter(outcome.dead_letter)
        # "cut" stays pending (redelivered at the next start), as does a dead letter
        # until the letter is written with it.
        self.finish(work, done=outcome.finished)

    def finish(self, work: Work | None, *, done: bool) -> None:
        """One accepted message left the monitor's hands (``done``: it is finished)."""
        self._commits.finished(work.entry.message_id if work is not None and done else None)
        self.unfinished -= 1
        if self.capacity is not None and self.unfinished <= self._max_pending:
            self.capacity.set()
        if self.unfinished == 0 and self.idle is not None:
            self.idle.set()
            self.idle = None

    # --- RunHost ------------------------------------------------------------------------

    def attempt_scope(self) -> AbstractContextManager[trio.CancelScope]:
        """An attempt runs shielded; a stop bounds it with the drain deadline."""
        return self._drain.protected()

    def wait_scope(self) -> AbstractContextManager[trio.CancelScope]:
        """The wait before the next attempt: shielded, but a stop ends it at once."""
        return self._drain.waiting()

    def cut(self) -> bool:
        """Whether a cancelled attempt was cut by the drain deadline."""
        return self._drain.cut()

    def stopping(self) -> bool:
        """No new attempt starts once a stop began."""
        return self._drain.stopping

    def failed(self, job: Job, attempts: int) -> None:
        """Record the failure count, so a restart continues it."""
        self._commits.failed(job.message.message_id, attempts)
