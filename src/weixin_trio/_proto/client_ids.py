"""What a send returns, and the ``client_id`` values sends are made with (PROTOCOL §5.1, §7.3)."""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import time
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import attrs

from .. import _wire as w

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

__all__ = [
    "CLIENT_ID_PREFIX",
    "ClientIdSource",
    "ReplyId",
    "SendResult",
    "content_digest",
    "derived_client_ids",
    "new_client_id",
    "outbox_client_id",
    "reply_client_id",
]

CLIENT_ID_PREFIX: Final = "weixin-trio"


def new_client_id() -> str:
    """A fresh random ``client_id`` in the references' shape (PROTOCOL §5.1)."""
    return f"{CLIENT_ID_PREFIX}:{int(time.time() * 1000)}-{secrets.token_hex(4)}"


def reply_client_id(account: str, message_id: int, index: int, content: str) -> str:
    """The deterministic ``client_id`` of the ``index``-th reply to an inbound message.

    ``content`` is a digest of what the reply carries (`content_digest`). A
    redelivered or retried handler that sends the same reply again uses the same id,
    so WeChat shows it once (PROTOCOL §7.3); a reply whose content changed gets a new
    id and is shown, never silently hidden as a duplicate of the first.
    """
    key = f"{account}\x00{message_id}\x00{index}\x00{content}"
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{CLIENT_ID_PREFIX}:r-{digest[:24]}"


#: Item fields that differ between two sends of the same content (upload keys, times).
_VOLATILE = frozenset({"aes_key", "aeskey", "encrypt_query_param", "full_url", "create_time_ms"})


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def content_digest(items: Iterable[w.MessageItem]) -> str:
    """A digest of what a message shows: its items without upload keys or timestamps."""
    canonical = json.dumps(
        [_stable(w.unstructure(item)) for item in items], sort_keys=True, ensure_ascii=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@attrs.frozen
class ReplyId:
    """The ``client_id`` of a reply whose content is not known yet.

    The reply source hands it out before the message is built; the message's content
    completes it (`for_items`), so a changed reply never reuses an old id.
    """

    account: str
    message_id: int
    index: int

    def for_items(self, items: Iterable[w.MessageItem]) -> str:
        """The id for a message carrying ``items``."""
        return self.for_content(content_digest(items))

    def for_content(self, content: str) -> str:
        """The id for a message whose content digest is ``content``."""
        return reply_client_id(self.account, self.message_id, self.index, content)


#: Where a send takes its ``client_id`` from: a fixed id, a reply id to be completed
#: with the content, or ``None`` for a fresh random one.
ClientIdSource: TypeAlias = "Callable[[], str | ReplyId | None]"


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
        cancelled: A ``before_send`` hook cancelled the send: nothing went out, the
            send window was not charged, and ``client_id`` is empty.
    """

    client_id: str
    message_id: int | None = None
    parts: tuple[SendResult, ...] = ()
    queued: bool = False
    cancelled: bool = False

    @property
    def confirmed(self) -> bool:
        """Whether the server assigned a ``message_id`` to every message sent."""
        return all(p.message_id is not None for p in self.parts or (self,))


def derived_client_ids(client_id: str | None) -> Iterator[str | None]:
    """``client_id``, ``client_id-1``, ``client_id-2``... (or ``None`` forever).

    The ids of a split text's parts when the caller chose the first one.
    """
    if client_id is None:
        yield from itertools.repeat(None)
    else:
        yield client_id
        for n in itertools.count(1):
            yield f"{client_id}-{n}"
