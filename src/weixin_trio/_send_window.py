"""Sans-IO tracking of per-user send windows (PROTOCOL §7.1a).

WeChat delivers a bot's messages only within 24 h of the user's last message, and only
about ten of them per user message; past that, sends fail with a silent-looking
``ret -2``. The tracker knows, per user, when the last inbound message arrived and how
many sends went out since, so a send past the window fails fast with
:class:`~weixin_trio.SendWindowClosedError` instead.

A user we never saw a message from has an *unknown* window: sends are allowed (the
context token, if any, decides), and :meth:`SendWindows.check` says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

import attrs

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["SendWindow", "SendWindowPolicy", "SendWindows"]


@attrs.frozen
class SendWindowPolicy:
    """Limits of a send window.

    Args:
        duration: Seconds after the user's last message during which sends are allowed
            (default 23 h: the documented 24 h minus a safety margin).
        quota: Sends allowed per inbound message (default 10).
    """

    duration: float = attrs.field(default=23 * 3600.0, validator=attrs.validators.gt(0))
    quota: int = attrs.field(default=10, validator=attrs.validators.ge(1))


@attrs.frozen
class SendWindow:
    """Whether and how much can be sent to a user now.

    Attributes:
        user_id: The peer.
        is_open: Whether a send would be allowed now.
        known: Whether we saw a message from this user (else the window is unknown and
            sends are allowed).
        remaining: Sends left before the user must write again (``None`` if unknown).
        expires_at: Wall-clock time (``time.time()``) when the window closes.
        reason: Why it is closed: ``"expired"`` or ``"quota"``.
    """

    user_id: str
    is_open: bool
    known: bool
    remaining: int | None = None
    expires_at: float | None = None
    reason: str | None = None


@attrs.define
class _UserWindow:
    last_inbound: float
    sent: int = 0


@final
class SendWindows:
    """Per-user windows of one account. Times are wall-clock seconds, passed in."""

    def __init__(self, policy: SendWindowPolicy | None = None) -> None:
        self.policy = policy or SendWindowPolicy()
        self._users: dict[str, _UserWindow] = {}

    def record_inbound(self, user_id: str, at: float) -> None:
        """The user wrote at ``at``: the window reopens with a full quota."""
        current = self._users.get(user_id)
        if current is None or at >= current.last_inbound:
            self._users[user_id] = _UserWindow(at)

    def record_send(self, user_id: str) -> None:
        """One message went out to the user."""
        window = self._users.get(user_id)
        if window is not None:
            window.sent += 1

    def check(self, user_id: str, now: float) -> SendWindow:
        """The user's window at ``now``."""
        window = self._users.get(user_id)
        if window is None:
            return SendWindow(user_id, is_open=True, known=False)
        expires = window.last_inbound + self.policy.duration
        remaining = max(0, self.policy.quota - window.sent)
        reason = None
        if now >= expires:
            reason = "expired"
        elif remaining == 0:
            reason = "quota"
        return SendWindow(
            user_id,
            is_open=reason is None,
            known=True,
            remaining=remaining if reason != "expired" else 0,
            expires_at=expires,
            reason=reason,
        )

    def snapshot(self) -> dict[str, list[float]]:
        """JSON-ready state for persistence."""
        return {u: [w.last_inbound, w.sent] for u, w in self._users.items()}

    def restore(self, data: Mapping[str, Any]) -> None:
        """Load :meth:`snapshot` output (bad entries are skipped)."""
        for user, value in data.items():
            try:
                last, sent = float(value[0]), int(value[1])
            except (TypeError, ValueError, IndexError):
                continue
            self._users[str(user)] = _UserWindow(last, sent)
