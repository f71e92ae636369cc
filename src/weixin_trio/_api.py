"""``ILinkClient``: the endpoints plus the high-level sends (text, media, runs, typing).

The endpoint methods and the error choke point live in `weixin_trio._endpoints`;
this module adds what a bot author calls: text through the markdown filter and the
chunker, send windows, runs, typing, and media through the encrypted CDN.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, final

import attrs

from . import _wire as w
from ._cdn_transfer import DEFAULT_MAX_DOWNLOAD, download_media
from ._endpoints import DEFAULT_BASE_URL, DEFAULT_CDN_BASE_URL, DEFAULT_LONG_POLL_MS, Endpoints
from ._errors import SendWindowClosedError
from ._media_send import kind_for, send_media
from ._runs import Run
from ._send_window import SendWindow
from ._sent import (
    CLIENT_ID_PREFIX,
    ClientIdSource,
    ReplyId,
    SendResult,
    new_client_id,
    outbox_client_id,
    reply_client_id,
)
from ._typing import typing_indicator
from ._util import run_blocking
from .markdown import filter_markdown
from .media import MediaKind, download_name
from .text import split_text

if TYPE_CHECKING:
    import os
    from collections.abc import Iterator
    from contextlib import AbstractAsyncContextManager

    from ._cdn_transfer import MediaSource, Progress
    from ._inbound import MediaRef

__all__ = [
    "CLIENT_ID_PREFIX",
    "DEFAULT_BASE_URL",
    "DEFAULT_CDN_BASE_URL",
    "DEFAULT_LONG_POLL_MS",
    "ILinkClient",
    "SendResult",
    "new_client_id",
    "outbox_client_id",
    "reply_client_id",
]


@final
class ILinkClient(Endpoints):
    """A connection to the iLink bot API for one bot account.

    Obtain one from `weixin_trio.open_client`. The endpoint methods map one-to-one
    onto PROTOCOL §2; the high-level sends (`send_text`, `send_media`, ...)
    build messages, attach the user's context token and a fresh ``client_id``, and
    check the user's send window.

    Every method may raise [`TransportError`][weixin_trio.TransportError],
    [`ApiError`][weixin_trio.ApiError] (and its subclasses) or
    [`ProtocolError`][weixin_trio.ProtocolError]; nothing else escapes on purpose.
    """

    def prepare_text(self, text: str) -> list[str]:
        """The messages a text becomes: markdown filtered (if enabled), then split.

        Raises:
            ValueError: Nothing is left to send (empty text, or only removed markdown).
        """

        if self.markdown:
            text = filter_markdown(text)
        chunks = [c for c in split_text(text, self.text_limit) if c.strip()]
        if not chunks:
            raise ValueError("refusing to send an empty text message")
        return chunks

    async def send_item(
        self,
        to: str,
        item: w.MessageItem,
        *,
        context_token: str | None = None,
        client_id: str | ReplyId | None = None,
        run_id: str | None = None,
        count_in_window: bool = True,
    ) -> SendResult:
        """Send one message with one item to ``to``, through the send window check.

        The send spends the budget of the context token it carries (PROTOCOL §7.1a).
        ``count_in_window=False`` sends without checking or using the user's window
        quota (for progress items, which the chat does not show).

        Raises:
            NoContextTokenError: No context token known for ``to``.
            SendWindowClosedError: The user's send window is closed.

        Cancellation:
            As `send_message`.
        """
        token = self.resolve_context_token(to, context_token)
        if count_in_window:
            self.check_send_window(to, token)
        msg = self.build_message(
            to, (item,), context_token=token, client_id=client_id, run_id=run_id
        )
        result = await self.send_message(msg)
        if self.send_windows is not None and count_in_window:
            self.send_windows.record_send(to, token)
        return result

    def check_send_window(self, to: str, context_token: str | None = None) -> None:
        """Raise `SendWindowClosedError` if a send to ``to`` would be refused.

        Args:
            to: The peer.
            context_token: The token the send carries (default: the newest one known
                for ``to``, as a proactive send uses); its own budget is checked.
        """
        window = self.send_window(to, context_token=context_token)
        if not window.is_open:
            raise SendWindowClosedError(to, window.reason or "closed")

    def send_window(self, to: str, *, context_token: str | None = None) -> SendWindow:
        """Whether and how much can be sent to ``to`` now (PROTOCOL §7.1a).

        The 24-hour rule is per user; the quota is per context token. By default the
        answer is for the next proactive send, which carries the newest token; pass
        ``context_token`` to ask about a send carrying that token (a reply's).
        """
        if self.send_windows is None:
            return SendWindow(to, is_open=True, known=False)
        token = context_token or self.context_tokens.get(to)
        return self.send_windows.check(to, time.time(), token=token)

    def run(self, to: str, *, context_token: str | None = None, run_id: str | None = None) -> Run:
        """Start an agent run to ``to``: progress items and answers under one ``run_id``.

        Raises:
            NoContextTokenError: No context token known for ``to``.
        """
        token = self.resolve_context_token(to, context_token)
        return Run(self, to, context_token=token, run_id=run_id)

    def typing(
        self, to: str, *, context_token: str | None = None
    ) -> AbstractAsyncContextManager[None]:
        """``async with client.typing(user):`` shows "typing…" while the block runs.

        See `weixin_trio._typing.typing_indicator`: keep-alive every 5 s, a
        guaranteed cancel on exit, and no failure if the ticket cannot be had.
        """
        return typing_indicator(self, to, context_token=context_token)

    async def send_text(
        self,
        to: str,
        text: str,
        *,
        context_token: str | None = None,
        client_id: str | None = None,
        run_id: str | None = None,
        queue_if_closed: bool = False,
    ) -> SendResult:
        """Send a text to ``to`` with the user's context token.

        The text goes through the markdown filter (unless the client was opened with
        ``markdown=False``) and is split at ``text_limit`` characters on paragraph,
        line and sentence boundaries; the parts are sent in order.

        Args:
            to: The peer user id.
            text: The text (must not be empty).
            context_token: Overrides the stored token of ``to``.
            client_id: A ``client_id`` to use (default: a fresh random one); later
                parts of a split text get ``<client_id>-<n>``.
            run_id: Tags the message as part of an agent run.
            queue_if_closed: When the user's send window is closed, queue the text in
                the durable pending outbox (needs a running monitor, whose store keeps
                it) and send it when the user writes again; the result then has
                ``queued=True``.

        Raises:
            NoContextTokenError: No context token known for ``to``.
            SendWindowClosedError: The user's send window is closed (and the text was
                not queued).
            ValueError: Nothing to send.
            RateLimitedError: Throttled (``ret -2``); not delivered.

        Cancellation:
            As `send_message`; parts already sent stay sent.
        """
        if queue_if_closed and not self.send_window(to, context_token=context_token).is_open:
            self.prepare_text(text)  # refuse empty texts now, not at flush time
            if self.pending_outbox is None:
                raise SendWindowClosedError(to, "closed, and no monitor keeps a pending outbox")
            entry = await self.pending_outbox.put(to, text)
            return SendResult(client_id=outbox_client_id(entry.entry_id), queued=True)
        ids = _derived_ids(client_id)
        return await self.send_text_parts(
            to, text, context_token=context_token, next_client_id=lambda: next(ids), run_id=run_id
        )

    async def send_text_parts(
        self,
        to: str,
        text: str,
        *,
        context_token: str | None,
        next_client_id: ClientIdSource,
        run_id: str | None = None,
    ) -> SendResult:
        """`send_text` with a ``client_id`` source per part (used by replies)."""
        chunks = self.prepare_text(text)
        token = self.resolve_context_token(to, context_token)
        results: list[SendResult] = []
        for chunk in chunks:
            item = w.MessageItem(type=w.ItemType.TEXT, text_item=w.TextItem(text=chunk))
            results.append(
                await self.send_item(
                    to, item, context_token=token, client_id=next_client_id(), run_id=run_id
                )
            )
        if len(results) == 1:
            return results[0]
        return attrs.evolve(results[-1], parts=tuple(results))

    # --- media ----------------------------------------------------------------------

    async def send_media(
        self,
        to: str,
        source: MediaSource,
        *,
        kind: MediaKind | None = None,
        caption: str | None = None,
        file_name: str | None = None,
        context_token: str | None = None,
        progress: Progress | None = None,
        client_ids: ClientIdSource | None = None,
    ) -> SendResult:
        """Upload and send a file, routed by MIME type: video, image, else file.

        Args:
            to: The peer user.
            source: A path, bytes, or an async iterable of byte chunks (spooled to a
                temporary file, so memory stays constant).
            kind: Force IMAGE, VIDEO or FILE instead of routing by name.
            caption: A text sent just before the media.
            file_name: The name shown for files (default: the path's base name).
            context_token: Overrides the stored token of ``to``.
            progress: ``progress(sent_bytes, total_bytes)`` during the upload.
            client_ids: Source of ``client_id``s (replies pass deterministic ones).

        Raises:
            CdnError: The upload failed.
            SendWindowClosedError: Checked before uploading.

        Cancellation:
            Safe before the media message is sent; the caption may already be shown.
        """
        if kind is MediaKind.VOICE:
            raise ValueError("use send_voice() for voice messages")
        return await send_media(
            self,
            to,
            source,
            kind=kind or kind_for(source, file_name),
            caption=caption,
            file_name=file_name,
            context_token=context_token,
            progress=progress,
            next_client_id=client_ids or (lambda: None),
        )

    async def send_image(self, to: str, source: MediaSource, **options: Any) -> SendResult:
        """Send an image (see `send_media` for the options).

        Cancellation:
            As `send_media`.
        """
        return await self.send_media(to, source, kind=MediaKind.IMAGE, **options)

    async def send_video(self, to: str, source: MediaSource, **options: Any) -> SendResult:
        """Send a video (see `send_media` for the options).

        Cancellation:
            As `send_media`.
        """
        return await self.send_media(to, source, kind=MediaKind.VIDEO, **options)

    async def send_file(self, to: str, source: MediaSource, **options: Any) -> SendResult:
        """Send a file attachment (see `send_media` for the options).

        Cancellation:
            As `send_media`.
        """
        return await self.send_media(to, source, kind=MediaKind.FILE, **options)

    async def send_voice(
        self,
        to: str,
        source: str | os.PathLike[str] | bytes,
        *,
        playtime_ms: int | None = None,
        context_token: str | None = None,
        client_ids: ClientIdSource | None = None,
    ) -> SendResult:
        """Send a voice bubble from SILK, or from a mono 16-bit WAV (encoded to SILK).

        Needs the ``silk`` extra (``pip install 'weixin-trio[silk]'``) to encode WAV,
        and to measure a SILK file's duration when ``playtime_ms`` is not given.

        Raises:
            VoiceCodecUnavailable: The codec is needed and not installed.
            ValueError: Neither SILK nor a usable WAV.

        Cancellation:
            As `send_media`.
        """
        from .voice import SILK_SAMPLE_RATE, is_silk, silk_duration_ms, wav_to_silk

        data = source if isinstance(source, bytes) else await run_blocking(Path(source).read_bytes)
        if is_silk(data):
            silk, rate = data, SILK_SAMPLE_RATE
            duration = playtime_ms or await run_blocking(silk_duration_ms, data)
        else:
            silk, duration, rate = await run_blocking(wav_to_silk, data)
        voice = w.VoiceItem(
            encode_type=w.VoiceEncodeType.SILK,
            bits_per_sample=16,
            sample_rate=rate,
            playtime=playtime_ms or duration,
        )
        return await send_media(
            self,
            to,
            silk,
            kind=MediaKind.VOICE,
            context_token=context_token,
            next_client_id=client_ids or (lambda: None),
            voice=voice,
        )

    async def download(
        self,
        media: MediaRef,
        *,
        to: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        max_bytes: int = DEFAULT_MAX_DOWNLOAD,
        progress: Progress | None = None,
    ) -> Path | bytes:
        """Download and decrypt a media item of an inbound message.

        Args:
            media: One of ``Message.media``.
            to: A directory (an existing one, or any path ending in ``/``, which is
                created; a safe file name is chosen inside it), a file path, or
                ``None`` to get the bytes back.
            overwrite: Replace an existing file. By default it is kept and a free
                name beside it is used (``name (1).ext``).
            max_bytes: Size cap (default 100 MiB), enforced before and during the
                transfer.
            progress: ``progress(received_bytes, total_bytes)``.

        Returns:
            The path written (see ``overwrite``), or the bytes.

        Raises:
            CdnError: Failed, refused host, too large, size mismatch, bad key/padding,
                or a video, file or voice item without a key (never downloaded).
            OSError: The file cannot be written locally.

        Cancellation:
            Safe: no partial file is left under the final name.
        """
        return await download_media(
            self,
            media.media,
            aes_key_hex=media.aes_key_hex,
            require_key=media.kind is not MediaKind.IMAGE,
            advertised_size=media.size,
            expected_size=media.size if media.kind is MediaKind.FILE else None,
            to=to,
            overwrite=overwrite,
            file_name=download_name(media),
            max_bytes=max_bytes,
            progress=progress,
        )


def _derived_ids(client_id: str | None) -> Iterator[str | None]:
    """``client_id``, ``client_id-1``, ``client_id-2``... (or ``None`` forever)."""
    if client_id is None:
        yield from itertools.repeat(None)
    else:
        yield client_id
        for n in itertools.count(1):
            yield f"{client_id}-{n}"
