"""Readiness of a process: every account polls and none is paused (sans-IO)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from .sample import AccountSample, Sample

__all__ = ["FAILING_POLLS", "Readiness", "account_problem", "readiness"]

#: Consecutive failed polls after which an account counts as not polling.
FAILING_POLLS = 3


@attrs.frozen
class Readiness:
    """Whether the process is ready, and why not.

    Attributes:
        ready: Every account polls and none is paused.
        not_ready: Why each account that is not ready is not, by account id.
        accounts: How many accounts the process runs.
    """

    ready: bool
    not_ready: dict[str, str]
    accounts: int

    def as_json(self) -> dict[str, object]:
        """The body of ``/readyz``."""
        return {"ready": self.ready, "accounts": self.accounts, "not_ready": self.not_ready}


def account_problem(account: AccountSample, now: float) -> str | None:
    """Why ``account`` is not ready at ``now`` (trio clock), or ``None`` when it is."""
    stats = account.statistics
    if stats is None:
        return "its monitor is (re)starting"
    if stats.paused_until is not None and stats.paused_until > now:
        return f"paused for {stats.paused_until - now:.0f} s (stale token, -14)"
    if stats.consecutive_failures >= FAILING_POLLS:
        return f"{stats.consecutive_failures} polls failed in a row"
    if stats.polls == 0:
        return "has not polled yet"
    return None


def readiness(sample: Sample, now: float) -> Readiness:
    """Readiness of the process at ``now`` (trio clock) from one sample.

    A process without accounts is ready (a Redis-mode node waiting for its share, a
    fan-out worker).
    """
    problems = {}
    for account in sample.accounts:
        problem = account_problem(account, now)
        if problem is not None:
            problems[account.account_id] = problem
    return Readiness(not problems, problems, len(sample.accounts))
