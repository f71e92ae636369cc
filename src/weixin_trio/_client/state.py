"""``LiveState``: what one account knows about its peers while it runs (sans-IO).

One object per client owns the per-account state that used to be public fields of the
client, written from outside: the context tokens, the send windows, the typing tickets,
the pending-outbox slot and the long-poll hint. The Monitor and the Redis fan-out
worker report inbound messages through `LiveState.record_inbound`;
sends ask it. The stored counterpart (what a store loads and saves) is
`weixin_trio.store.AccountState`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final, Protocol, final

from .._proto.context_tokens import ContextTokens
from .._proto.send_metrics import SendMetrics
from .._proto.typing_tickets import ConfigCache

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .._proto.send_windows import SendWindows

__all__ = ["DEFAULT_LONG_POLL_MS", "LiveState", "PendingTexts", "QueuedText", "send_metrics_of"]

#: Server hold of a long poll when it gives no hint (PROTOCOL §4.2).
DEFAULT_LONG_POLL_MS: Final = 35_000


class QueuedText(Protocol):
    """A text in the pending outbox (``weixin_trio.store.OutboxEntry``)."""

    @property
    def entry_id(self) -> str:
        """The entry's id (its sends' ``client_id`` derives from it)."""
        ...


class PendingTexts(Protocol):
    """The pending outbox as sends see it (the running monitor's ``PendingOutbox``)."""

    async def put(self, user_id: str, text: str) -> QueuedText:
        """Durably queue ``text`` for ``user_id``."""
        ...


@final
class LiveState:
    """The in-memory state of one account: tokens, windows, tickets, outbox, poll hint.

    Attributes:
        context_tokens: The latest context token per user.
        send_windows: Per-user send windows, or ``None`` when the check is off.
        typing_tickets: The per-user ``getconfig`` cache (the typing ticket).
        pending_outbox: The durable outbox of the running monitor, if one runs.
        long_poll_hint_ms: The server's latest long-poll hold (default 35 s).
        send_metrics: Counters of the sends (latency, throttles, closed windows),
            read by the metrics exporter.
    """

    def __init__(
        self,
        *,
        context_tokens: Mapping[str, str] | None = None,
        send_windows: SendWindows | None = None,
    ) -> None:
        self.context_tokens = ContextTokens(context_tokens)
        self.send_windows = send_windows
        self.typing_tickets = ConfigCache()
        self.pending_outbox: PendingTexts | None = None
        self.long_poll_hint_ms: float = DEFAULT_LONG_POLL_MS
        self.send_metrics = SendMetrics()

    def __repr__(self) -> str:
        return f"<LiveState users={len(self.context_tokens)}>"

    def record_inbound(
        self, context_tokens: Mapping[str, str], last_inbound: Mapping[str, float]
    ) -> None:
        """Record an inbound batch: each user's newest token and newest message time.

        ``last_inbound`` maps users to the wall-clock time (seconds) of their newest
        message; it opens their send windows. Also used to restore a stored state.
        """
        self.context_tokens.update(context_tokens)
        if self.send_windows is not None:
            for user, at in last_inbound.items():
                self.send_windows.record_inbound(user, at)

    def record_poll_hint(self, hint_ms: float | None) -> None:
        """Keep the server's ``longpolling_timeout_ms`` when it is usable (positive, finite)."""
        if hint_ms is not None and hint_ms > 0 and math.isfinite(hint_ms):
            self.long_poll_hint_ms = hint_ms


def send_metrics_of(client: HasLiveState) -> SendMetrics:
    """The send counters of a client (`weixin_trio.ILinkClient`), for the metrics exporter."""
    return client._state.send_metrics


class HasLiveState(Protocol):
    """Anything holding an account's `LiveState` (the client)."""

    @property
    def _state(self) -> LiveState: ...
