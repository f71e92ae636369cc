"""What a send returns, and the ``client_id`` values sends are made with (PROTOCOL §5.1, §7.3)."""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Final

import attrs

__all__ = ["CLIENT_ID_PREFIX", "SendResult", "new_client_id", "outbox_client_id", "reply_client_id"]

CLIENT_ID_PREFIX: Final = "weixin-trio"


def new_client_id() -> str:
    """A fresh random ``client_id`` in the references' shape (PROTOCOL §5.1)."""
    return f"{CLIENT_ID_PREFIX}:{int(time.time() * 1000)}-{secrets.token_hex(4)}"


def reply_client_id(account: str, message_id: int, index: int) -> str:
    """The deterministic ``client_id`` of the ``index``-th reply to an inbound message.

    A redelivered message's handler sends its replies with the same ids, so WeChat
    shows each of them once (PROTOCOL §7.3).
    """
    digest = hashlib.sha256(f"{account}\x00{message_id}\x00{index}".encode()).hexdigest()
    return f"{CLIENT_ID_PREFIX}:r-{digest[:24]}"


def outbox_client_id(entry_id: str) -> str:
    """The ``client_id`` of a queued text (stable, so a repeated flush is shown once)."""
    return f"{CLIENT_ID_PREFIX}:o-{entry_id}"


@attrs.frozen
class SendResult:
    """What a send achieved.

    Attributes:
        client_id: The ``client_id`` the (last) message was sent with.
        message_id: The server's ``message_id`` of the (last) message; ``None`` when the
            server answered ``{"ret": 0}`` or an empty body (accepted, but unconfirmed).
        parts: When a long text was split into several messages, the result of each,
            in order (the last one is this result's own ``client_id``/``message_id``).
        queued: The text went to the pending outbox instead (send window closed).
    """

    client_id: str
    message_id: int | None = None
    parts: tuple[SendResult, ...] = ()
    queued: bool = False

    @property
    def confirmed(self) -> bool:
        """Whether the server assigned a ``message_id`` to every message sent."""
        return all(p.message_id is not None for p in self.parts or (self,))
