"""``Message``: the frozen view of one inbound message that handlers receive."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import TYPE_CHECKING, Any

import attrs

from .. import _wire as w
from .._proto.client_ids import ReplyId
from .._proto.inbound import (
    MediaRef,
    Quote,
    extract_body,
    extract_media,
    extract_quote,
    extract_voice_text,
    primary_media,
)
from .._proto.media_kind import MediaKind
from ..cdn import DEFAULT_MAX_DOWNLOAD
from .ilink_client import ILinkClient, SendResult
from .runs import Run

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping
    from contextlib import AbstractAsyncContextManager
    from pathlib import Path

    from .._state.conversation import ConversationState
    from ..store._base import Store  # noqa: TC004 - attrs does not evaluate annotations
    from .cdn_transfer import Progress
    from .remote_media import MediaInput

__all__ = ["Message", "ReplyContext"]


@attrs.define(eq=False)
class ReplyContext:
    """What a message needs to answer itself: the client and its reply numbering.

    Replies get ``client_id``s derived from ``(account, message_id, reply index,
    content digest)`` when ``deterministic`` (the monitor's default), so a redelivered
    message's identical replies are shown once and a changed reply is shown.
    """

    client: ILinkClient
    deterministic: bool = True
    store: Store | None = None
    _counter: itertools.count[int] = attrs.field(factory=itertools.count, init=False)

    def restart(self) -> None:
        """Number replies from the start again (a new attempt at the same message)."""
        self._counter = itertools.count()

    def next_client_id(self, message_id: int) -> ReplyId | None:
        """The ``client_id`` for the next reply (``None``: let the client pick one).

        The id is completed with the reply's content when the message is built.
        """
        index = next(self._counter)
        if not self.deterministic:
            return None
        return ReplyId(self.client.account_id, message_id, index)


@attrs.frozen
class Message:
    """One inbound message.

    Attributes:
        message_id: The server's id (negative when the server sent none; see docs).
        from_user_id: The sender (``...@im.wechat``).
        to_user_id: The recipient (the bot), when the server says.
        text: The body per PROTOCOL §3.10: text items, voice transcripts, quotes
            rendered as ``[引用: ...]`` lines.
        context_token: The token every reply must carry.
        create_time: When the message was created (UTC), if known.
        quote: The quoted message, if any.
        media: Every media item of the message, in order.
        voice_text: The server's transcript of the first voice item, if any.
        session_id: Opaque session id.
        group_id: Group id (declared by the protocol, not used by the server yet).
        raw: The wire object.
    """

    message_id: int
    from_user_id: str
    to_user_id: str | None
    text: str
    context_token: str | None = attrs.field(repr=False)
    create_time: dt.datetime | None
    quote: Quote | None
    media: tuple[MediaRef, ...]
    voice_text: str | None
    session_id: str | None
    group_id: str | None
    raw: w.WeixinMessage = attrs.field(repr=False)
    _ctx: ReplyContext | None = attrs.field(default=None, repr=False, eq=False)

    @classmethod
    def from_wire(
        cls, msg: w.WeixinMessage, *, message_id: int, ctx: ReplyContext | None = None
    ) -> Message:
        """Build the view of a parsed wire message."""
        created = None
        if msg.create_time_ms is not None and msg.create_time_ms > 0:
            try:
                created = dt.datetime.fromtimestamp(msg.create_time_ms / 1000, tz=dt.UTC)
            except (OverflowError, OSError, ValueError):
                created = None
        return cls(
            message_id=message_id,
            from_user_id=msg.from_user_id or "",
            to_user_id=msg.to_user_id,
            text=extract_body(msg),
            context_token=msg.context_token,
            create_time=created,
            quote=extract_quote(msg),
            media=extract_media(msg),
            voice_text=extract_voice_text(msg),
            session_id=msg.session_id,
            group_id=msg.group_id,
            raw=msg,
            ctx=ctx,
        )

    @classmethod
    def from_json(
        cls, raw: Mapping[str, Any], *, message_id: int, ctx: ReplyContext | None = None
    ) -> Message:
        """Build the view of a raw JSON message (as journaled)."""
        return cls.from_wire(w.structure(raw, w.WeixinMessage), message_id=message_id, ctx=ctx)

    @property
    def client(self) -> ILinkClient:
        """The client this message arrived on.

        Raises:
            RuntimeError: The message was built without a client (e.g. in a unit test).
        """
        return self._require_ctx().client

    @property
    def store(self) -> Store | None:
        """The store of the account this message came to (``None`` when built by hand)."""
        return None if self._ctx is None else self._ctx.store

    @property
    def state(self) -> ConversationState:
        """The sender's conversation state with this account, kept in the store.

        See [`ConversationState`][weixin_trio.ConversationState]: ``await
        msg.state.get()``, ``set(mapping)``, ``update(**values)``, ``clear()``.

        Raises:
            NoStoreError: The message has no store with the key-value API (it was
                built by hand, not delivered by a monitor).
        """
        from .._state.conversation import conversation_state  # the store loads with it

        account = "" if self._ctx is None else self._ctx.client.account_id
        return conversation_state(self.store, account, self.from_user_id)

    def restart_replies(self) -> None:
        """Start the reply numbering over, for another attempt at handling this message.

        The monitor calls it before every attempt, so a retried handler's replies
        reuse the ``client_id``\\ s of the failed attempt's (WeChat shows those once),
        exactly as after a redelivery.
        """
        if self._ctx is not None:
            self._ctx.restart()

    async def reply(self, text: str) -> SendResult:
        """Send ``text`` to the sender, with this message's context token.

        Inside a monitor, replies carry ``client_id``s derived from this message, the
        reply's position and its content, so if the message is redelivered after a
        crash (or its handler retried) the same replies are not shown twice, while a
        reply whose text changed is shown.

        Args:
            text: The reply; must not be empty.

        Returns:
            The send result.

        Raises:
            ValueError: ``text`` is empty.
            RateLimitedError: The server throttled the send; it was not delivered.
            SendWindowClosedError: This message's context token has no budget left, or
                24 h passed since the user's last message.

        Cancellation:
            If cancelled mid-request the reply may or may not be shown; a retry of the
            same reply (same position in the handler, same text) reuses its
            ``client_id``.
        """
        if not text:
            raise ValueError("refusing to send an empty reply")
        ctx = self._require_ctx()
        return await ctx.client._messenger.send_text(
            self.from_user_id,
            text,
            context_token=self.context_token,
            client_ids=lambda: ctx.next_client_id(self.message_id),
            reply_to=self.message_id,
        )

    async def reply_media(self, source: MediaInput, **options: Any) -> SendResult:
        """Reply with a file, routed by MIME type (see `ILinkClient.send_media`).

        ``source`` may be an ``http(s)`` URL, as for
        [`ILinkClient.send_media`][weixin_trio.ILinkClient.send_media].

        Cancellation:
            As [`ILinkClient.send_media`][weixin_trio.ILinkClient.send_media].
        """
        return await self._reply_media(None, source, options)

    async def reply_image(self, source: MediaInput, **options: Any) -> SendResult:
        """Reply with an image (see `ILinkClient.send_media` for the options).

        Cancellation:
            As [`ILinkClient.send_media`][weixin_trio.ILinkClient.send_media].
        """
        return await self._reply_media(MediaKind.IMAGE, source, options)

    async def reply_video(self, source: MediaInput, **options: Any) -> SendResult:
        """Reply with a video (see `ILinkClient.send_media` for the options).

        Cancellation:
            As [`ILinkClient.send_media`][weixin_trio.ILinkClient.send_media].
        """
        return await self._reply_media(MediaKind.VIDEO, source, options)

    async def reply_file(self, source: MediaInput, **options: Any) -> SendResult:
        """Reply with a file attachment (see `ILinkClient.send_media`).

        Cancellation:
            As [`ILinkClient.send_media`][weixin_trio.ILinkClient.send_media].
        """
        return await self._reply_media(MediaKind.FILE, source, options)

    async def reply_voice(
        self, source: str | os.PathLike[str] | bytes, *, playtime_ms: int | None = None
    ) -> SendResult:
        """Reply with a voice bubble (SILK, or WAV with the ``silk`` extra).

        Cancellation:
            As [`ILinkClient.send_voice`][weixin_trio.ILinkClient.send_voice].
        """
        ctx = self._require_ctx()
        return await ctx.client.send_voice(
            self.from_user_id,
            source,
            playtime_ms=playtime_ms,
            context_token=self.context_token,
            client_ids=lambda: ctx.next_client_id(self.message_id),
        )

    async def _reply_media(
        self, kind: MediaKind | None, source: MediaInput, options: dict[str, Any]
    ) -> SendResult:
        from .media_send import send_media  # on first use: text bots never load it

        ctx = self._require_ctx()
        if kind is MediaKind.VOICE or options.get("kind") is MediaKind.VOICE:
            raise ValueError("use reply_voice() for voice messages")
        return await send_media(
            ctx.client._messenger,
            self.from_user_id,
            source,
            kind=options.pop("kind", kind),
            context_token=self.context_token,
            client_ids=lambda: ctx.next_client_id(self.message_id),
            reply_to=self.message_id,
            **options,
        )

    async def download(
        self,
        media: MediaRef | None = None,
        *,
        to: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        max_bytes: int = DEFAULT_MAX_DOWNLOAD,
        progress: Progress | None = None,
    ) -> Path | bytes:
        """Download and decrypt a media item of this message (default: the main one).

        The main item follows the reference priority image > video > file > voice
        without transcript, falling back to quoted media. ``to``, ``overwrite``,
        ``max_bytes`` and ``progress`` are those of `ILinkClient.download` (an
        existing file is kept unless ``overwrite``: a free name beside it is used).

        Raises:
            LookupError: The message has no downloadable media.
            CdnError: See [`ILinkClient.download`][weixin_trio.ILinkClient.download].

        Cancellation:
            Safe: no partial file is left under the final name.
        """
        ctx = self._require_ctx()
        if media is None:
            media = primary_media(self.media, self.quote)
            if media is None:
                raise LookupError("this message has no downloadable media")
        return await ctx.client.download(
            media, to=to, overwrite=overwrite, max_bytes=max_bytes, progress=progress
        )

    def typing(self) -> AbstractAsyncContextManager[None]:
        """``async with msg.typing():`` shows "typing…" to the sender while the block runs.

        The ticket comes from a per-user ``getconfig`` cache; "typing" is re-sent every
        5 s and cancelled on exit, even when the block fails or is cancelled. Problems
        getting the ticket never fail the handler.
        """
        ctx = self._require_ctx()
        return ctx.client.typing(self.from_user_id, context_token=self.context_token)

    def run(self, *, run_id: str | None = None) -> Run:
        """An agent run answering this message (progress items + answer, one ``run_id``).

        Its sends use this message's deterministic reply ``client_id``s.
        """
        ctx = self._require_ctx()
        return Run(
            ctx.client._messenger,
            self.from_user_id,
            context_token=self.context_token,
            run_id=run_id,
            client_ids=lambda: ctx.next_client_id(self.message_id),
        )

    def _require_ctx(self) -> ReplyContext:
        if self._ctx is None:
            raise RuntimeError("this Message is not bound to a client")
        return self._ctx
