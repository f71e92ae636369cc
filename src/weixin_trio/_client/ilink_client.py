"""``ILinkClient``: the endpoints plus the high-level sends (text, media, runs, typing).

The client is a facade over three components it holds (no inheritance): the endpoint
layer (`weixin_trio._client.endpoints.Endpoints`, the error choke point), the account's
`weixin_trio._client.state.LiveState` and the `weixin_trio._client.messenger.Messenger`
(text preparation, context tokens, send windows, hand-off to the sender tasks).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, final

from .. import _wire as w
from .._errors import SendWindowClosedError
from .._proto.client_ids import (
    CLIENT_ID_PREFIX,
    ClientIdSource,
    SendResult,
    derived_client_ids,
    new_client_id,
    outbox_client_id,
    reply_client_id,
)
from .._proto.media_kind import MediaKind
from .._util import NoPublicConstructor, run_blocking
from ..cdn import DEFAULT_MAX_DOWNLOAD
from .endpoints import DEFAULT_BASE_URL, DEFAULT_CDN_BASE_URL
from .runs import Run
from .state import DEFAULT_LONG_POLL_MS
from .typing_indicator import typing_indicator

if TYPE_CHECKING:
    import os
    from contextlib import AbstractAsyncContextManager

    from .._proto.inbound import MediaRef
    from .._proto.send_windows import SendWindow
    from .cdn_transfer import Progress
    from .endpoints import Endpoints
    from .messenger import Messenger
    from .remote_media import MediaInput
    from .state import LiveState

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
class ILinkClient(metaclass=NoPublicConstructor):
    """A connection to the iLink bot API for one bot account.

    Obtain one from `weixin_trio.open_client`. The endpoint methods map one-to-one
    onto PROTOCOL §2; the high-level sends (`send_text`, `send_media`, ...)
    build messages, attach the user's context token and a fresh ``client_id``, and
    check the user's send window.

    Every method may raise [`TransportError`][weixin_trio.TransportError],
    [`ApiError`][weixin_trio.ApiError] (and its subclasses) or
    [`ProtocolError`][weixin_trio.ProtocolError]; nothing else escapes on purpose.
    """

    def __init__(self, endpoints: Endpoints, state: LiveState, messenger: Messenger) -> None:
        self._endpoints = endpoints
        self._state = state
        self._messenger = messenger

    def __repr__(self) -> str:
        return f"<ILinkClient account={self.account_id!r} base_url={self.base_url!r}>"

    @property
    def account_id(self) -> str:
        """The account's name in logs, stores and reply ids."""
        return self._endpoints.account_id

    @property
    def base_url(self) -> str:
        """The account's API base URL."""
        return self._endpoints.base_url

    @property
    def cdn_base_url(self) -> str:
        """The CDN base URL for media."""
        return self._endpoints.cdn_base_url

    # --- endpoints ------------------------------------------------------------------

    async def get_updates(self, cursor: str = "") -> w.GetUpdatesResp:
        """Long-poll for new messages (``ilink/bot/getupdates``).

        The server holds the request until a message arrives or its hold (about 35 s,
        see ``longpolling_timeout_ms``) expires. Scope it with
        ``trio.move_on_after(hold + margin)``; expiry is simply an empty batch.

        Args:
            cursor: The ``get_updates_buf`` of the previous successful response; ``""``
                on the first call.

        Returns:
            The parsed response. Messages that did not fit the schema are in
            ``.malformed`` instead of failing the batch.

        Raises:
            StaleTokenError: ``-14``; log in again.
            ApiError: Other failures.

        Cancellation:
            Safe at any point: the request is aborted and nothing is consumed locally.
            Messages the server already sent in an aborted response are not replayed
            by the server (its cursor is forward-only).
        """
        return await self._endpoints.get_updates(cursor)

    async def send_message(self, msg: w.WeixinMessage) -> SendResult:
        """Send one message as built (``ilink/bot/sendmessage``).

        An empty body, a body without ``ret`` and ``ret == 0`` all mean success.

        Args:
            msg: The complete outbound message (``client_id`` included).

        Returns:
            The ``client_id`` and, when the server assigned one, the ``message_id``.

        Transient failures (HTTP 5xx, connection errors, no answer, ``-2`` after the
        governor's cool-down) are retried with the same ``client_id`` as the client's
        ``send_retry`` policy says, so the message is shown once.

        Raises:
            RateLimitedError: ``ret -2`` too often: the message was not delivered (the
                throttle, or the user's send window is closed).
            ApiError: A permanent failure (4xx, other ``ret``), or a 5xx that outlasted
                the retries; the message was not delivered.
            TransportError: No answer within the retries.

        Cancellation:
            If cancelled while the request is in flight, the message may or may not
            have been delivered; a cancelled wait between retries sends nothing more.
            Resending with the same ``client_id`` is safe: WeChat shows a
            ``client_id`` once.
        """
        return await self._messenger.transmit(msg)

    async def get_upload_url(self, req: w.GetUploadUrlReq) -> w.GetUploadUrlResp:
        """Ask for CDN upload parameters (``ilink/bot/getuploadurl``).

        Args:
            req: The request; its ``base_info`` is replaced by the client's.

        Returns:
            ``upload_param`` and/or ``upload_full_url``.

        Cancellation:
            Safe: nothing is uploaded yet.
        """
        return await self._endpoints.get_upload_url(req)

    async def get_config(self, user_id: str, context_token: str | None = None) -> w.GetConfigResp:
        """Fetch the per-user bot config, i.e. the typing ticket (``ilink/bot/getconfig``).

        Args:
            user_id: The peer user.
            context_token: The user's latest context token, if known.

        Raises:
            ApiError: Also when ``ret`` is absent: this endpoint needs ``ret == 0``.

        Cancellation:
            Safe.
        """
        return await self._endpoints.get_config(user_id, context_token)

    async def send_typing(
        self, user_id: str, typing_ticket: str, status: w.TypingStatus | int
    ) -> None:
        """Start (``TypingStatus.TYPING``) or cancel the typing indicator.

        Cancellation:
            Safe; a cancelled start leaves no indicator that outlives its ~5 s expiry.
        """
        await self._endpoints.send_typing(user_id, typing_ticket, status)

    async def notify_start(self) -> None:
        """Tell the server this account is online (``ilink/bot/msg/notifystart``).

        Cancellation:
            Safe.
        """
        await self._endpoints.notify_start()

    async def notify_stop(self) -> None:
        """Tell the server this account goes offline (``ilink/bot/msg/notifystop``).

        Cancellation:
            Safe; call it in a shielded scope with a short deadline during shutdown.
        """
        await self._endpoints.notify_stop()

    async def get_bot_qrcode(
        self,
        local_tokens: tuple[str, ...] = (),
        *,
        bot_type: str = "3",
        base_url: str | None = None,
    ) -> w.GetBotQrcodeResp:
        """Start a QR login (``ilink/bot/get_bot_qrcode``, unauthenticated POST).

        Args:
            local_tokens: Up to 10 bot tokens this client already holds, newest first,
                so the server can answer ``binded_redirect`` instead of a new binding.
            bot_type: Query parameter, ``"3"`` for bots.
            base_url: The QR host; defaults to the client's base URL.

        Cancellation:
            Safe.
        """
        return await self._endpoints.get_bot_qrcode(
            local_tokens, bot_type=bot_type, base_url=base_url
        )

    async def get_qrcode_status(
        self, qrcode: str, *, verify_code: str | None = None, base_url: str | None = None
    ) -> w.QrcodeStatusResp:
        """Poll a QR login (``ilink/bot/get_qrcode_status``, GET, long poll).

        Cancellation:
            Safe: polling is idempotent.
        """
        return await self._endpoints.get_qrcode_status(
            qrcode, verify_code=verify_code, base_url=base_url
        )

    # --- high-level sends -----------------------------------------------------------

    def send_window(self, to: str, *, context_token: str | None = None) -> SendWindow:
        """Whether and how much can be sent to ``to`` now (PROTOCOL §7.1a).

        The 24-hour rule is per user; the quota is per context token. By default the
        answer is for the next proactive send, which carries the newest token; pass
        ``context_token`` to ask about a send carrying that token (a reply's).
        """
        return self._messenger.send_window(to, context_token=context_token)

    def run(self, to: str, *, context_token: str | None = None, run_id: str | None = None) -> Run:
        """Start an agent run to ``to``: progress items and answers under one ``run_id``.

        Raises:
            NoContextTokenError: No context token known for ``to``.
        """
        token = self._messenger.resolve_context_token(to, context_token)
        return Run(self._messenger, to, context_token=token, run_id=run_id)

    def typing(
        self, to: str, *, context_token: str | None = None
    ) -> AbstractAsyncContextManager[None]:
        """``async with client.typing(user):`` shows "typing…" while the block runs.

        See `weixin_trio._client.typing_indicator.typing_indicator`: keep-alive every 5 s, a
        guaranteed cancel on exit, and no failure if the ticket cannot be had.
        """
        return typing_indicator(
            self._endpoints, self._state.typing_tickets, to, context_token=context_token
        )

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
            self._messenger.prepare_text(text)  # refuse empty texts now, not at flush time
            outbox = self._state.pending_outbox
            if outbox is None:
                raise SendWindowClosedError(to, "closed, and no monitor keeps a pending outbox")
            entry = await outbox.put(to, text)
            return SendResult(client_id=outbox_client_id(entry.entry_id), queued=True)
        ids = derived_client_ids(client_id)
        return await self._messenger.send_text(
            to, text, context_token=context_token, client_ids=lambda: next(ids), run_id=run_id
        )

    # --- media ----------------------------------------------------------------------

    async def send_media(
        self,
        to: str,
        source: MediaInput,
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
            source: A path, bytes, an async iterable of byte chunks (spooled to a
                temporary file), or an ``http(s)`` URL (``str`` or ``httpx.URL``),
                fetched under the client's ``remote_media`` policy (public addresses
                only by default; 20 MiB; type sniffed from the bytes), then uploaded.
            kind: Force IMAGE, VIDEO or FILE instead of routing by name (a URL: by
                its bytes); an IMAGE (VIDEO) URL whose bytes are not one is refused.
            caption: A text sent just before the media.
            file_name: The name shown for files (default: the path's base name).
            context_token: Overrides the stored token of ``to``.
            progress: ``progress(sent_bytes, total_bytes)`` during the upload.
            client_ids: Source of ``client_id``s (replies pass deterministic ones).

        Raises:
            CdnError: The upload failed.
            RemoteMediaError: The URL could not be fetched, or what it gave was refused.
            SendWindowClosedError: Checked before downloading or uploading.
            SendHookError: A ``before_send`` hook failed.

        Cancellation:
            Safe before the media message is sent; the caption may already be shown.
            A download is aborted and its temporary file removed.
        """
        from .media_send import send_media  # on first use: text bots never load it

        if kind is MediaKind.VOICE:
            raise ValueError("use send_voice() for voice messages")
        return await send_media(
            self._messenger,
            to,
            source,
            kind=kind,
            caption=caption,
            file_name=file_name,
            context_token=context_token,
            progress=progress,
            client_ids=client_ids or (lambda: None),
        )

    async def send_image(self, to: str, source: MediaInput, **options: Any) -> SendResult:
        """Send an image (see `send_media` for the options).

        Cancellation:
            As `send_media`.
        """
        return await self.send_media(to, source, kind=MediaKind.IMAGE, **options)

    async def send_video(self, to: str, source: MediaInput, **options: Any) -> SendResult:
        """Send a video (see `send_media` for the options).

        Cancellation:
            As `send_media`.
        """
        return await self.send_media(to, source, kind=MediaKind.VIDEO, **options)

    async def send_file(self, to: str, source: MediaInput, **options: Any) -> SendResult:
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
        from ..voice import SILK_SAMPLE_RATE, is_silk, silk_duration_ms, wav_to_silk
        from .media_send import send_media

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
            self._messenger,
            to,
            silk,
            kind=MediaKind.VOICE,
            context_token=context_token,
            client_ids=client_ids or (lambda: None),
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
        from ..media import download_name  # on first use, as the media sends
        from .cdn_download import download_media

        return await download_media(
            self._endpoints,
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
