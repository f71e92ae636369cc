"""The ``Store`` protocol and the values it holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from .._errors import (
    LeaseLostError,
    StoreError,
    StoreLockedError,
    StoreUnavailableError,
)

__all__ = [
    "AccountState",
    "DeadLetter",
    "JournalEntry",
    "LeaseLostError",
    "OutboxEntry",
    "Store",
    "StoreError",
    "StoreLockedError",
    "StoreUnavailableError",
]


@attrs.frozen
class JournalEntry:
    """An accepted inbound message that is not finished yet.

    Attributes:
        message_id: The server's message id.
        raw: The message as it arrived (wire JSON), so it can be redelivered as is.
        attempts: How many times its handler failed so far.
    """

    message_id: int
    raw: Mapping[str, Any] = attrs.field(repr=False, hash=False)
    attempts: int = 0


@attrs.frozen
class DeadLetter:
    """A message whose handler failed ``max_attempts`` times: kept, never dropped."""

    message_id: int
    raw: Mapping[str, Any] = attrs.field(repr=False, hash=False)
    attempts: int
    error: str
    at: float


@attrs.frozen
class OutboxEntry:
    """A text queued for a user whose send window was closed.

    Attributes:
        entry_id: Unique id; the send uses a ``client_id`` derived from it, so a flush
            interrupted by a crash is not shown twice.
        user_id: The recipient.
        text: The text to send when the user writes again.
        queued_at: Wall-clock time it was queued.
    """

    entry_id: str
    user_id: str
    text: str = attrs.field(repr=False)
    queued_at: float


@attrs.frozen
class AccountState:
    """Everything a monitor needs to resume an account.

    Attributes:
        cursor: The last journaled ``get_updates_buf`` (``""`` when none).
        pending: Accepted messages not yet handled, in acceptance order.
        seen_ids: Recently accepted message ids, oldest first (the dedupe window).
        context_tokens: Latest context token per user.
        dead_letters: Messages that exhausted their attempts.
        last_inbound: Wall-clock time of each user's latest message (send windows).
        outbox: Texts queued for closed send windows, oldest first.
    """

    cursor: str = attrs.field(default="", repr=False)
    pending: tuple[JournalEntry, ...] = ()
    seen_ids: tuple[int, ...] = attrs.field(default=(), repr=False)
    context_tokens: Mapping[str, str] = attrs.field(factory=dict, repr=False, hash=False)
    dead_letters: tuple[DeadLetter, ...] = ()
    last_inbound: Mapping[str, float] = attrs.field(factory=dict, repr=False, hash=False)
    outbox: tuple[OutboxEntry, ...] = ()


@runtime_checkable
class Store(Protocol):
    """Durable state of one or more accounts.

    Contract (what the monitor relies on):

    - `accept` is atomic and durable before it returns: after a crash at any
      instant, either the whole batch and its cursor are there, or none of it.
    - `mark_done` and `record_failure` may be made durable lazily (group
      commit); losing one re-runs a handler, whose replies are then hidden by their
      deterministic ``client_id``. `flush` makes them durable.
    - A store never loses a dead letter.
    """

    async def load(self, account: str) -> AccountState:
        """Read an account's state (empty state for an unknown account)."""
        ...

    async def accept(
        self,
        account: str,
        *,
        cursor: str,
        entries: Sequence[JournalEntry],
        context_tokens: Mapping[str, str],
        last_inbound: Mapping[str, float] | None = None,
    ) -> None:
        """Journal accepted messages, the new cursor and per-user data atomically."""
        ...

    async def mark_done(self, account: str, message_ids: Sequence[int]) -> None:
        """Mark handled (or dead-lettered) messages as finished."""
        ...

    async def record_failure(self, account: str, message_id: int, attempts: int) -> None:
        """Record that a handler failed ``attempts`` times so far."""
        ...

    async def dead_letter(self, account: str, letter: DeadLetter) -> None:
        """Keep a message that exhausted its attempts and finish it."""
        ...

    async def outbox_put(self, account: str, entry: OutboxEntry) -> None:
        """Durably queue a text for a closed send window."""
        ...

    async def outbox_remove(self, account: str, entry_id: str) -> None:
        """Forget a queued text once it was sent."""
        ...

    async def flush(self, account: str) -> None:
        """Make every earlier write of ``account`` durable."""
        ...

    async def save_account(self, account_id: str, data: Mapping[str, Any]) -> None:
        """Store an account's credentials (a JSON object; written privately)."""
        ...

    async def load_accounts(self) -> list[dict[str, Any]]:
        """Every stored account's JSON, in a stable order.

        Raises:
            StoreError: A stored account is corrupt (named by its path).
        """
        ...

    async def remove_account(self, account_id: str) -> bool:
        """Forget an account's credentials; returns whether it existed."""
        ...

    async def aclose(self) -> None:
        """Release files and connections."""
        ...
