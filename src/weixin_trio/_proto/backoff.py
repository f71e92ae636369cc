"""A pure retry-delay policy: no clock, no sleeping, unit-testable without an event loop."""

from __future__ import annotations

import random
from typing import final

import attrs

__all__ = ["Backoff"]


@final
@attrs.define
class Backoff:
    """Delay policy for consecutive failures.

    The defaults follow the reference clients (PROTOCOL §4.4): 2 s after the first and
    second consecutive failure, 30 s after the third, after which the streak starts over
    (2 s, 2 s, 30 s, ...). Any success resets the streak.

    The object never sleeps: callers do ``await trio.sleep(backoff.next_delay())``, so
    the sleep stays interruptible and tests can check the sequence on a virtual clock.

    Args:
        retry_delay: Delay in seconds after each failure of a streak but the last.
        backoff_delay: Delay in seconds after ``max_failures`` consecutive failures.
        max_failures: Length of a streak; after it the counter starts over.
        growth: Above ``1``, the delays grow exponentially instead:
            ``retry_delay * growth ** (n - 1)`` after the n-th consecutive failure,
            capped at ``backoff_delay`` (``max_failures`` then plays no part). The
            default ``1`` keeps the reference schedule.
        jitter: Relative jitter in ``[0, 1)``: each delay is multiplied by a factor drawn
            uniformly from ``[1 - jitter, 1 + jitter]``. ``0`` (the default) gives the
            exact reference schedule.
        rng: Source of randomness for the jitter (inject a seeded one in tests).
    """

    retry_delay: float = attrs.field(default=2.0, validator=attrs.validators.ge(0))
    backoff_delay: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))
    max_failures: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    growth: float = attrs.field(default=1.0, validator=attrs.validators.ge(1))
    jitter: float = attrs.field(
        default=0.0, validator=[attrs.validators.ge(0), attrs.validators.lt(1)]
    )
    rng: random.Random = attrs.field(factory=random.Random, eq=False, repr=False)
    _streak: int = attrs.field(default=0, init=False)
    _total: int = attrs.field(default=0, init=False)

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last success (not reset by the end of a streak)."""
        return self._total

    def next_delay(self) -> float:
        """Record one failure and return how long to wait before the next attempt."""
        self._total += 1
        self._streak += 1
        if self.growth > 1:
            try:
                delay = min(self.retry_delay * self.growth ** (self._total - 1), self.backoff_delay)
            except OverflowError:  # a very long streak
                delay = self.backoff_delay
        elif self._streak >= self.max_failures:
            self._streak = 0
            delay = self.backoff_delay
        else:
            delay = self.retry_delay
        if self.jitter:
            delay *= self.rng.uniform(1 - self.jitter, 1 + self.jitter)
        return delay

    def reset(self) -> None:
        """Record a success: the next failure starts a new streak."""
        self._streak = 0
        self._total = 0
