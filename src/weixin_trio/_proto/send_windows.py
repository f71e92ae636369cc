"""Sans-IO tracking of send windows (PROTOCOL §7.1a).

WeChat delivers a bot's messages only within 24 h of the user's last message, and only
about ten of them per inbound message: the quota belongs to the message's
``context_token``, which every send carries. Past that, sends fail with a
silent-looking ``ret -2``. The tracker knows, per user, when the last inbound message
arrived (the 24-hour rule), and per context token how many sends carried it (the
quota), so a send past the window fails fast with
[`SendWindowClosedError`][weixin_trio.SendWindowClosedError] instead.

- A reply carries its own message's token and spends that token's budget, so a user
  who sends 20 messages in a burst can get a reply to each of them.
- A proactive send carries the newest token known for the user and spends its budget.
- A token the tracker has no count for (never used, or older than the last
  `TOKENS_PER_USER` tokens used) has its full budget: the tracker only refuses
  what it knows the server would refuse.

A user we never saw a message from has an *unknown* window: sends are allowed (the
context token, if any, decides), and `SendWindows.check` says so.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, final

import attrs

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["TOKENS_PER_USER", "SendWindow", "SendWindowPolicy", "SendWindows"]

#: Per user, the send counts of this many most recently used context tokens are kept.
TOKENS_PER_USER = 32


@attrs.frozen
class SendWindowPolicy:
    """Limits of a send window.

    Args:
        duration: Seconds after the user's last message during which sends are allowed
            (default 23 h: the documented 24 h minus a safety margin).
        quota: Sends allowed per inbound message, i.e. per context token (default 10).
    """

    duration: float = attrs.field(default=23 * 3600.0, validator=attrs.validators.gt(0))
    quota: int = attrs.field(default=10, validator=attrs.validators.ge(1))


@attrs.frozen
class SendWindow:
    """Whether and how much can be sent to a user now.

    Attributes:
        user_id: The peer.
        is_open: Whether a send (carrying the token asked about) would be allowed now.
        known: Whether we saw a message from this user (else the window is unknown and
            sends are allowed).
        remaining: Sends left with the token asked about (by default the newest one,
            which proactive sends carry) before the user must write again (``None``
            if unknown).
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
    sent: OrderedDict[str, int] = attrs.field(factory=OrderedDict)


@final
class SendWindows:
    """Send windows of one account. Times are wall-clock seconds, passed in."""

    def __init__(self, policy: SendWindowPolicy | None = None) -> None:
        self.policy = policy or SendWindowPolicy()
        self._users: dict[str, _UserWindow] = {}

    def record_inbound(self, user_id: str, at: float) -> None:
        """The user wrote at ``at``: the 24-hour window runs from the latest message.

        The message's new context token brings its own budget; nothing else changes.
        """
        current = self._users.get(user_id)
        if current is None:
            self._users[user_id] = _UserWindow(at)
        elif at > current.last_inbound:
            current.last_inbound = at

    def record_send(self, user_id: str, token: str | None = None) -> None:
        """One message carrying ``token`` went out to the user."""
        window = self._users.get(user_id)
        if window is None or not token:
            return
        window.sent[token] = window.sent.pop(token, 0) + 1
        while len(window.sent) > TOKENS_PER_USER:
            window.sent.popitem(last=False)

    def check(self, user_id: str, now: float, *, token: str | None = None) -> SendWindow:
        """The user's window at ``now`` for a send carrying ``token``."""
        window = self._users.get(user_id)
        if window is None:
            return SendWindow(user_id, is_open=True, known=False)
        expires = window.last_inbound + self.policy.duration
        used = window.sent.get(token, 0) if token else 0
        remaining = max(0, self.policy.quota - used)
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

    def snapshot(self) -> dict[str, list[Any]]:
        """JSON-ready state: ``{user: [last_inbound, {token: sends}]}``."""
        return {u: [w.last_inbound, dict(w.sent)] for u, w in self._users.items()}

    def restore(self, data: Mapping[str, Any]) -> None:
        """Load `snapshot` output (bad entries are skipped).

        The older per-user form ``[last_inbound, sends]`` restores the time only.
        """
        for user, value in data.items():
            try:
                last = float(value[0])
                counts = value[1] if len(value) > 1 else {}
            except (TypeError, ValueError, IndexError, KeyError):
                continue
            window = _UserWindow(last)
            if isinstance(counts, dict):
                for token, sends in list(counts.items())[-TOKENS_PER_USER:]:
                    if isinstance(sends, int) and not isinstance(sends, bool):
                        window.sent[str(token)] = sends
            self._users[str(user)] = window
