"""Sending media: upload through the CDN, then one message with the media item.

Items are built exactly as the references build them (PROTOCOL §5.4): ``aes_key`` as
base64 of the 32-character hex key, ``mid_size``/``video_size`` the ciphertext size,
``file_item.len`` the plaintext size as a decimal string. A caption goes out first as
its own text message; if it fails, the media is not sent.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .. import _wire as w
from .._proto.client_ids import ReplyId
from ..media import MediaKind, media_kind_for_mime, mime_from_filename
from .cdn_transfer import UploadedMedia, upload_media

if TYPE_CHECKING:
    from .._proto.client_ids import ClientIdSource, SendResult
    from .cdn_transfer import MediaSource, Progress
    from .messenger import Messenger

__all__ = ["media_item", "send_media"]

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


def kind_for(source: MediaSource, file_name: str | None) -> MediaKind:
    """Route by MIME type of the file name (PROTOCOL §6.8): video, image, else file."""
    name = file_name
    if name is None and isinstance(source, str | os.PathLike):
        name = os.fspath(source)
    return media_kind_for_mime(mime_from_filename(name or ""))


async def send_media(
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
        await messenger.send_text(to, caption, context_token=token, client_ids=client_ids)
    client_id = client_ids()
    if isinstance(client_id, ReplyId):
        # The upload's keys are new each time; the plaintext is what the user sees.
        name = uploaded.file_name or ""
        client_id = client_id.for_content(f"{kind.value}:{uploaded.md5}:{name}")
    return await messenger.send_item(
        to, media_item(kind, uploaded, voice=voice), context_token=token, client_id=client_id
    )
