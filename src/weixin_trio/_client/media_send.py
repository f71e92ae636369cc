"""Sending media: upload through the CDN, then one message with the media item.

Items are built exactly as the references build them (PROTOCOL §5.4): ``aes_key`` as
base64 of the 32-character hex key, ``mid_size``/``video_size`` the ciphertext size,
``file_item.len`` the plaintext size as a decimal string. A caption goes out first as
its own text message; if it fails, the media is not sent.

The source may be an ``http(s)`` URL: it is fetched first (``remote_media``: host
policy after DNS, size cap, sniffed type) into a temporary file that the upload reads
and that is removed afterwards. The client's send hooks run once around the whole
send (caption, download, upload and message).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .. import _wire as w
from .._proto.client_ids import ReplyId
from .._proto.outgoing import Outgoing
from ..media import MediaKind, media_kind_for_mime, mime_from_filename
from .cdn_transfer import UploadedMedia, upload_media
from .remote_media import fetch_remote, is_remote

if TYPE_CHECKING:
    from .._proto.client_ids import ClientIdSource, SendResult
    from .._proto.outgoing import OutgoingKind
    from .cdn_transfer import MediaSource, Progress
    from .messenger import Messenger
    from .remote_media import MediaInput

__all__ = ["media_item", "send_media"]

_KIND_NAMES: dict[MediaKind, OutgoingKind] = {
    MediaKind.IMAGE: "image",
    MediaKind.VIDEO: "video",
    MediaKind.FILE: "file",
    MediaKind.VOICE: "voice",
}
_UPLOAD_TYPES = {
    MediaKind.IMAGE: w.UploadMediaType.IMAGE,
    MediaKind.VIDEO: w.UploadMediaType.VIDEO,
    MediaKind.FILE: w.UploadMediaType.FILE,
    MediaKind.VOICE: w.UploadMediaType.VOICE,
}


def media_item(
    kind: MediaKind, uploaded: UploadedMedia, *, voice: w.VoiceItem | None = None
) -> w.MessageItem:
    """The message item for an uploaded object."""
    if kind is MediaKind.IMAGE:
        return w.MessageItem(
            type=w.ItemType.IMAGE,
            image_item=w.ImageItem(media=uploaded.media, mid_size=uploaded.filesize),
        )
    if kind is MediaKind.VIDEO:
        return w.MessageItem(
            type=w.ItemType.VIDEO,
            video_item=w.VideoItem(media=uploaded.media, video_size=uploaded.filesize),
        )
    if kind is MediaKind.VOICE:
        base = voice or w.VoiceItem()
        return w.MessageItem(
            type=w.ItemType.VOICE,
            voice_item=w.VoiceItem(
                media=uploaded.media,
                encode_type=base.encode_type,
                bits_per_sample=base.bits_per_sample,
                sample_rate=base.sample_rate,
                playtime=base.playtime,
            ),
        )
    return w.MessageItem(
        type=w.ItemType.FILE,
        file_item=w.FileItem(
            media=uploaded.media,
            file_name=uploaded.file_name or "file.bin",
            len=str(uploaded.rawsize),
        ),
    )


def kind_for(source: object, file_name: str | None) -> MediaKind:
    """Route by MIME type of the file name (PROTOCOL §6.8): video, image, else file.

    For a URL, its path's name (the bytes decide once fetched).
    """
    name = file_name
    if name is None and is_remote(source):
        name = urlsplit(str(source)).path
    elif name is None and isinstance(source, str | os.PathLike):
        name = os.fspath(source)
    return media_kind_for_mime(mime_from_filename(name or ""))


async def send_media(
    messenger: Messenger,
    to: str,
    source: MediaInput,
    *,
    kind: MediaKind | None,
    caption: str | None = None,
    file_name: str | None = None,
    context_token: str | None = None,
    progress: Progress | None = None,
    client_ids: ClientIdSource = lambda: None,
    voice: w.VoiceItem | None = None,
    reply_to: int | None = None,
) -> SendResult:
    """Send media from a path, bytes, a stream or an ``http(s)`` URL, through the hooks.

    ``kind=None`` routes by name (for a URL: by the fetched bytes' type).

    Raises:
        NoContextTokenError: No context token known for ``to``.
        SendWindowClosedError: The user's send window is closed (checked before any
            download or upload).
        RemoteMediaError: The URL could not be fetched, or was refused.
        CdnError: The upload failed.
        SendHookError: A ``before_send`` hook failed.

    Cancellation:
        Before the media message is sent, nothing is shown; the caption may be. A
        download in progress is aborted and its temporary file removed.
    """
    if is_remote(source):
        source = str(source)
    routed = kind is None
    outgoing = Outgoing(
        to=to,
        kind=_KIND_NAMES[kind or kind_for(source, file_name)],
        text=caption or None,
        file_name=file_name,
        source=source,
        context_token=context_token,
        reply_to=reply_to,
    )

    async def perform(out: Outgoing) -> SendResult:
        chosen = MediaKind[out.kind.upper()]
        if is_remote(out.source):
            return await _send_remote(
                messenger,
                out,
                None if routed else chosen,
                progress=progress,
                client_ids=client_ids,
            )
        return await upload_and_send(
            messenger,
            out.to,
            out.source,
            kind=chosen,
            caption=out.text,
            file_name=out.file_name,
            context_token=out.context_token,
            progress=progress,
            client_ids=client_ids,
            voice=voice,
        )

    if not messenger.hooks:
        return await perform(outgoing)
    return await messenger.hooks.run(outgoing, perform)


async def _send_remote(
    messenger: Messenger,
    out: Outgoing,
    kind: MediaKind | None,
    *,
    progress: Progress | None,
    client_ids: ClientIdSource,
) -> SendResult:
    """Fetch ``out.source`` (a URL) and send it; ``kind=None``: route by its bytes."""
    token = messenger.resolve_context_token(out.to, out.context_token)
    messenger.check_send_window(out.to, token)  # before downloading anything
    async with fetch_remote(str(out.source), kind=kind, policy=messenger.remote_media) as remote:
        return await upload_and_send(
            messenger,
            out.to,
            remote.path,
            kind=kind or remote.kind,
            caption=out.text,
            file_name=out.file_name or remote.file_name,
            context_token=token,
            progress=progress,
            client_ids=client_ids,
        )


async def upload_and_send(
    messenger: Messenger,
    to: str,
    source: MediaSource,
    *,
    kind: MediaKind,
    caption: str | None = None,
    file_name: str | None = None,
    context_token: str | None = None,
    progress: Progress | None = None,
    client_ids: ClientIdSource = lambda: None,
    voice: w.VoiceItem | None = None,
) -> SendResult:
    """Upload ``source`` and send it to ``to`` (after an optional caption).

    Raises:
        NoContextTokenError: No context token known for ``to``.
        SendWindowClosedError: The user's send window is closed (checked before the
            upload, so nothing is uploaded in vain).
        CdnError: The upload failed.

    Cancellation:
        Before the media message is sent, nothing is shown; the caption may be.
    """
    token = messenger.resolve_context_token(to, context_token)
    messenger.check_send_window(to, token)
    if kind is MediaKind.FILE and file_name is None and isinstance(source, str | os.PathLike):
        file_name = os.path.basename(os.fspath(source))
    uploaded = await upload_media(
        messenger.endpoints,
        to,
        source,
        media_type=_UPLOAD_TYPES[kind],
        file_name=file_name,
        progress=progress,
    )
    if caption:
        await messenger.deliver_text(to, caption, context_token=token, client_ids=client_ids)
    client_id = client_ids()
    if isinstance(client_id, ReplyId):
        # The upload's keys are new each time; the plaintext is what the user sees.
        name = uploaded.file_name or ""
        client_id = client_id.for_content(f"{kind.value}:{uploaded.md5}:{name}")
    return await messenger.send_item(
        to, media_item(kind, uploaded, voice=voice), context_token=token, client_id=client_id
    )
