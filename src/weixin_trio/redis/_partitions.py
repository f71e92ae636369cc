"""The partitions a fan-out worker holds: their state, and the handler runner's host.

A `FanoutWorker` reads each held partition in a task; this module holds the per-partition
state (scopes to cancel at a hand-over, the entries in hand), the runner's host for
its entries, and the bounded shield of a store write.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs
import trio

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .._monitor.handler_runner import Job

__all__ = [
    "STORE_STEP_TIMEOUT",
    "Entry",
    "Partition",
    "PartitionHost",
    "bounded_shield",
    "cancel_partition",
]


@attrs.define(eq=False)
class Partition:
    index: int
    stream: str
    scope: trio.CancelScope
    stopping: bool = False
    reading: bool = True
    in_flight: int = 0
    read_scope: trio.CancelScope | None = None
    active: set[trio.CancelScope] = attrs.field(factory=set)
    waiting: set[trio.CancelScope] = attrs.field(factory=set)
    room: trio.Event = attrs.field(factory=trio.Event)
    done: trio.Event = attrs.field(factory=trio.Event)

    def settle(self) -> None:
        """Wake the reader when there is room; mark done when nothing is left."""
        self.room.set()
        if not self.reading and self.in_flight == 0:
            self.done.set()


@attrs.define(eq=False)
class Entry:
    part: Partition
    entry: Any


@attrs.define(eq=False)
class PartitionHost:
    """The worker's side of the handler runner, for one partition's entries.

    Attempts run in plain scopes: a lost lease or the end of a drain cancels the
    partition's scopes, and that cancellation propagates (the entry stays pending for
    the next owner). A partition being handed over starts no further attempt.
    """

    part: Partition

    def attempt_scope(self) -> trio.CancelScope:
        return trio.CancelScope()

    @contextmanager
    def wait_scope(self) -> Iterator[trio.CancelScope]:
        with trio.CancelScope() as scope:
            if self.part.stopping:
                scope.cancel()
            self.part.waiting.add(scope)
            try:
                yield scope
            finally:
                self.part.waiting.discard(scope)

    def cut(self) -> bool:
        return False

    def stopping(self) -> bool:
        return self.part.stopping

    def failed(self, job: Job, attempts: int) -> None:
        del job, attempts  # the stream entry keeps no attempt count


#: How long a shielded store write (an acknowledgement, a dead letter) may take: a
#: hung Redis must not hold a drain or a lease hand-over for ever.
STORE_STEP_TIMEOUT = 3.0


def bounded_shield() -> trio.CancelScope:
    """A shielded scope with its own deadline (no shield inside can outlive it)."""
    return trio.CancelScope(shield=True, deadline=trio.current_time() + STORE_STEP_TIMEOUT)


def cancel_partition(part: Partition) -> None:
    part.scope.cancel()
    for scope in part.active:
        scope.cancel()
