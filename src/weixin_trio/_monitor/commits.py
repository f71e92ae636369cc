"""The stop of a monitor and the group commit of its done marks.

- `Drain`: once a stop begins, shielded work
  (handler attempts, store calls) is bounded by one drain deadline;
- `Commits`: done marks, failure counts and dead letters are buffered and written by
  one flusher task, each store call shielded and bounded by the drain deadline. The
  flusher starts when something is buffered and exits after `FLUSHER_IDLE` seconds
  without work, so a parked account runs none.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from typing import TYPE_CHECKING, final

import trio

from .._errors import LeaseLostError, MonitorCrashed, StoreUnavailableError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from .._proto.backoff import Backoff
    from ..store import DeadLetter, Store
    from .values import MonitorCounters

__all__ = ["Commits", "Drain"]

log = logging.getLogger("weixin_trio.monitor")

#: The flusher task exits after this long without anything to write.
FLUSHER_IDLE = 5.0


@final
class Drain:
    """The drain of a stop: shielded scopes that the stop bounds with one deadline."""

    def __init__(self) -> None:
        self.stopping = False
        self.deadline = math.inf
        self._protected: set[trio.CancelScope] = set()
        self._waiting: set[trio.CancelScope] = set()

    def begin(self, deadline: float) -> None:
        """A stop began: waits for a next attempt end at once, the rest by ``deadline``."""
        self.stopping = True
        for scope in self._waiting:
            scope.cancel()
        self.set_deadline(deadline)

    def set_deadline(self, deadline: float) -> None:
        """Move the drain deadline earlier (never later) for every protected scope."""
        self.deadline = min(self.deadline, deadline)
        for scope in self._protected:
            scope.deadline = min(scope.deadline, self.deadline)

    @contextmanager
    def protected(self) -> Iterator[trio.CancelScope]:
        """A shielded scope that a stop bounds with the drain deadline."""
        with trio.CancelScope(shield=True, deadline=self.deadline) as scope:
            self._protected.add(scope)
            try:
                yield scope
            finally:
                self._protected.discard(scope)

    @contextmanager
    def waiting(self) -> Iterator[trio.CancelScope]:
        """The wait before a next attempt: shielded, but a stop ends it at once."""
        with self.protected() as scope:
            if self.stopping:
                scope.cancel()
            self._waiting.add(scope)
            try:
                yield scope
            finally:
                self._waiting.discard(scope)

    def cut(self) -> bool:
        """Whether a cancelled attempt was cut by the drain deadline."""
        return self.stopping and trio.current_time() >= self.deadline

    async def bounded(self, deadline: float, call: Awaitable[object]) -> bool:
        """Await one store call, shielded, until ``deadline``; whether it finished.

        Before a stop, a later stop moves the deadline to the drain deadline.
        """
        with trio.CancelScope(shield=True, deadline=deadline) as scope:
            if not self.stopping:
                self._protected.add(scope)
            try:
                await call
            finally:
                self._protected.discard(scope)
            return True
        return False  # cut at its deadline (or it passed before the call started)


@final
class Commits:
    """Done marks, failure counts and dead letters of one account, group-committed."""

    def __init__(
        self,
        store: Store,
        account: str,
        drain: Drain,
        counters: MonitorCounters,
        retry_backoff: Backoff,
    ) -> None:
        self._store = store
        self._account = account
        self._drain = drain
        self._counters = counters
        self._retry_backoff = retry_backoff
        self._done_ids: list[int] = []
        self._failures: dict[int, int] = {}
        self._dead: list[DeadLetter] = []
        self._dirty = False  # something is buffered that the flusher did not take yet
        self._wakeup: trio.Event | None = None  # the idle flusher waits on it
        self._nursery: trio.Nursery | None = None
        self._flusher: trio.CancelScope | None = None

    def start(self, nursery: trio.Nursery) -> None:
        """Run the flusher in ``nursery`` whenever something is buffered."""
        self._nursery = nursery
        if self._dirty:
            self._wake()

    def stop(self) -> None:
        """Start no flusher any more and stop the running one (after its store call)."""
        self._nursery = None
        if self._flusher is not None:
            self._flusher.cancel()

    def _wake(self) -> None:
        self._dirty = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._flusher is None and self._nursery is not None:
            self._flusher = trio.CancelScope()
            self._nursery.start_soon(self._flush_loop, self._flusher)

    def finished(self, message_id: int | None) -> None:
        """A message finished (``None``: it stays pending); wake the flusher."""
        if message_id is not None:
            self._done_ids.append(message_id)
            self._failures.pop(message_id, None)
        self._wake()

    def failed(self, message_id: int, attempts: int) -> None:
        """Record the failure count, so a restart continues it."""
        self._failures[message_id] = attempts
        self._wake()

    def dead_letter(self, letter: DeadLetter) -> None:
        """Buffer a dead letter (written with the next commit)."""
        self._dead.append(letter)

    def crash(self, exc: Exception, what: str) -> MonitorCrashed:
        """The error that ends the monitor after a store write failed for good."""
        if isinstance(exc, LeaseLostError):
            lost = f"{self._account}: stopping: the account's lease was lost ({exc})"
            return MonitorCrashed(lost)
        return MonitorCrashed(f"{self._account}: {what}: {exc}")

    async def _flush_loop(self, scope: trio.CancelScope) -> None:
        """Write what is buffered whenever something finished, until idle or the stop."""
        try:
            with scope:
                while True:
                    if not self._dirty:
                        self._wakeup = trio.Event()
                        deadline = trio.current_time() + FLUSHER_IDLE
                        with trio.CancelScope(deadline=deadline):
                            await self._wakeup.wait()
                        self._wakeup = None
                        if not self._dirty:
                            return  # idle: the next finished message starts a flusher
                    self._dirty = False
                    if not await self._flush_once():
                        return
        finally:
            if self._flusher is scope:
                self._flusher = None

    async def _flush_once(self) -> bool:
        """One group commit; ``False`` once a call was cut (the stop's deadline)."""
        try:
            # Each store call is shielded, so a stop does not cut a write in half;
            # the drain deadline bounds it (a hung store cannot hold the stop), and
            # what is not written stays buffered for the shutdown's final write.
            if not await self.write(lambda: self._drain.deadline):
                return False
            self._retry_backoff.reset()  # the next outage starts a new streak
        except StoreUnavailableError as exc:
            # The marks stay buffered; a lost mark only means a redelivery later.
            self._counters.store_failures += 1
            log.warning("%s: cannot write done marks (%s); retrying", self._account, exc)
            self._dirty = True
            await trio.sleep(self._retry_backoff.next_delay())
        except Exception as exc:
            raise self.crash(exc, "cannot write the journal") from exc
        return True

    async def write(self, deadline: Callable[[], float]) -> bool:
        """Write buffered done marks, failure counts and dead letters.

        Each store call runs in its own shielded scope whose deadline is ``deadline()``
        (taken when the call starts): one scope, one deadline, no shield inside that
        could outlive it. Items leave the buffers only after they were written, so a
        call cut short loses nothing.

        Returns:
            ``False`` if a call did not finish by its deadline (the store hangs; the
            rest stays buffered), else ``True``.
        """
        bounded = self._drain.bounded
        done = list(self._done_ids)
        if done:
            if not await bounded(deadline(), self._store.mark_done(self._account, done)):
                return False
            del self._done_ids[: len(done)]
        for mid, attempts in dict(self._failures).items():
            call = self._store.record_failure(self._account, mid, attempts)
            if not await bounded(deadline(), call):
                return False
            if self._failures.get(mid) == attempts:
                del self._failures[mid]
        while self._dead:
            if not await bounded(deadline(), self._store.dead_letter(self._account, self._dead[0])):
                return False
            self._dead.pop(0)
        return True
