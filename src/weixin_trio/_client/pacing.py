"""The send governor: a token bucket that keeps an account's sends under the throttle.

The live server answers ``ret -2`` ("prepare failed") to bursts — 18 messages in 34 s
tripped it, 10 spread over 170 s did not — and then refuses every send of the bot for
minutes (PROTOCOL §7.1). So sends wait for a token instead of tripping it, and a ``-2``
that happens anyway starts a cool-down during which sends wait instead of extending
the throttle with retries.
"""

from __future__ import annotations

import math
from typing import final

import attrs
import trio

__all__ = ["Pacing", "SendGovernor"]


@attrs.frozen
class Pacing:
    """Pacing policy of one account.

    Args:
        rate: Sustained sends per second (default one every 5 s).
        burst: Sends allowed at once after a quiet period.
        cool_down: Seconds every send waits after the server throttled one (``-2``).

    The defaults stay below both live measurements (at most 12 sends in any 34 s).
    Pass ``pacing=None`` to [`open_client`][weixin_trio.open_client] to switch pacing off (the
    fake server does not throttle unless told to).
    """

    rate: float = attrs.field(default=0.2, validator=attrs.validators.gt(0))
    burst: int = attrs.field(default=6, validator=attrs.validators.ge(1))
    cool_down: float = attrs.field(default=120.0, validator=attrs.validators.ge(0))


@final
class SendGovernor:
    """Token bucket on trio's clock; waiting senders are served first come, first served."""

    def __init__(self, pacing: Pacing) -> None:
        self.pacing = pacing
        self._tokens = float(pacing.burst)
        self._updated = -math.inf
        self._blocked_until = -math.inf
        self._lock = trio.Lock()

    def _refill(self, now: float) -> None:
        if self._updated == -math.inf:
            self._updated = now
        self._tokens = min(
            float(self.pacing.burst), self._tokens + (now - self._updated) * self.pacing.rate
        )
        self._updated = now

    async def acquire(self) -> None:
        """Wait until a send may go out, and take its token.

        Cancellation:
            Safe: a cancelled waiter takes no token.
        """
        async with self._lock:
            while True:
                now = trio.current_time()
                if now < self._blocked_until:
                    await trio.sleep_until(self._blocked_until)
                    continue
                self._refill(now)
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await trio.sleep((1 - self._tokens) / self.pacing.rate)

    def throttled(self) -> None:
        """The server answered ``-2``: hold every send for the cool-down."""
        self._blocked_until = trio.current_time() + self.pacing.cool_down
        self._tokens = 0.0

    @property
    def blocked_until(self) -> float | None:
        """End of the current cool-down (trio clock), or ``None``."""
        return self._blocked_until if self._blocked_until > trio.current_time() else None
