"""The values send hooks see: `Outgoing` (before a send) and `SendReport` (after it).

``open_client(before_send=..., after_send=...)`` runs the hooks once per logical send:
a text split into parts, a media send with its caption, and the retries of a message
are each one send. See ``weixin_trio._client.send_hooks``.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import attrs

from .client_ids import SendResult

__all__ = ["Outgoing", "OutgoingKind", "SendReport"]

#: What a send carries.
OutgoingKind: TypeAlias = Literal["text", "image", "video", "file", "voice"]


@attrs.frozen(kw_only=True)
class Outgoing:
    """One send about to happen, as ``before_send`` hooks see (and may rewrite) it.

    Rewrite with [`evolve`][weixin_trio.Outgoing.evolve] (``text``, ``file_name``,
    ``source`` and ``context_token`` may change; ``to`` and ``kind`` may not).

    Attributes:
        to: The peer user.
        kind: ``"text"``, ``"image"``, ``"video"``, ``"file"`` or ``"voice"``.
        text: The text of a text send, or a media send's caption (``None``: none).
        file_name: The file name a media send shows or routes by, when known.
        source: What a media send uploads: a path, bytes, an async iterable, or an
            ``http(s)`` URL (not in the ``repr``: bytes can be large).
        context_token: The token the send carries (not in the ``repr``: a secret);
            ``None`` means the user's stored one.
        run_id: The agent run the send belongs to, if any.
        reply_to: The inbound ``message_id`` this send answers (``msg.reply*``), if any.
    """

    to: str
    kind: OutgoingKind
    text: str | None = None
    file_name: str | None = None
    source: Any = attrs.field(default=None, repr=False)
    context_token: str | None = attrs.field(default=None, repr=False)
    run_id: str | None = None
    reply_to: int | None = None

    def evolve(self, **changes: Any) -> Outgoing:
        """A copy with ``changes`` applied (``attrs.evolve``)."""
        return attrs.evolve(self, **changes)

    @property
    def is_media(self) -> bool:
        """Whether the send uploads a file."""
        return self.kind != "text"


@attrs.frozen
class SendReport:
    """A finished send, as ``after_send`` hooks see it.

    Attributes:
        outgoing: The send as it went out (after every ``before_send`` rewrite).
        result: What the send returned, or ``None`` when it failed.
        error: The exception the send raised, or ``None``.
        duration: Seconds from the first ``before_send`` hook to the end (trio clock).
    """

    outgoing: Outgoing
    result: SendResult | None
    error: Exception | None
    duration: float

    @property
    def ok(self) -> bool:
        """Whether the send succeeded (a send a hook cancelled counts as ok)."""
        return self.error is None

    @property
    def cancelled(self) -> bool:
        """Whether a ``before_send`` hook cancelled the send (nothing went out)."""
        return self.result is not None and self.result.cancelled
