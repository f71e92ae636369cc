"""Sans-IO per-user cache of ``getconfig`` results (the typing ticket), PROTOCOL §5.6.

- success (``ret == 0``): keep the ticket (or ``""``), refresh at a uniformly random point
  inside the 24 h TTL, reset the retry delay to 2 s;
- failure with no entry yet: empty ticket, retry after 2 s;
- failure with an entry: keep the previous ticket, retry after twice the previous
  delay (at most one hour).

Deliberate difference: the reference fetches in the hot path before every message; here
a ticket is fetched only when typing is actually used, and a failure never fails the
caller.
"""

from __future__ import annotations

import random
from typing import final

import attrs

__all__ = ["ConfigCache"]

TTL = 24 * 3600.0
INITIAL_RETRY = 2.0
MAX_RETRY = 3600.0


@attrs.define
class _Entry:
    ticket: str
    next_fetch_at: float
    retry_delay: float = INITIAL_RETRY


# One generator for every cache of the process: a random.Random is ~2.9 KiB, and a
# parked account must stay small (the jitter needs no per-account stream).
_SHARED_RNG = random.Random()


@final
@attrs.define
class ConfigCache:
    """Typing tickets per user with TTL and failure backoff; times are caller-supplied."""

    rng: random.Random = attrs.field(default=_SHARED_RNG, repr=False)
    _entries: dict[str, _Entry] = attrs.field(factory=dict, repr=False)

    def needs_fetch(self, user_id: str, now: float) -> bool:
        """Whether a ``getconfig`` for ``user_id`` is due."""
        entry = self._entries.get(user_id)
        return entry is None or now >= entry.next_fetch_at

    def ticket(self, user_id: str) -> str | None:
        """The cached ticket (``""`` when the server gave none), or ``None`` if unknown."""
        entry = self._entries.get(user_id)
        return None if entry is None else entry.ticket

    def record_success(self, user_id: str, ticket: str | None, now: float) -> None:
        """Store a fresh ticket; the next refresh is at a random point within the TTL."""
        self._entries[user_id] = _Entry(ticket or "", now + self.rng.uniform(0, TTL))

    def record_failure(self, user_id: str, now: float) -> float:
        """Record a failed fetch; returns the delay until the next attempt."""
        entry = self._entries.get(user_id)
        if entry is None:
            self._entries[user_id] = _Entry("", now + INITIAL_RETRY)
            return INITIAL_RETRY
        entry.retry_delay = min(entry.retry_delay * 2, MAX_RETRY)
        entry.next_fetch_at = now + entry.retry_delay
        return entry.retry_delay
