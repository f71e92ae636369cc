"""Wire types: one ``@attrs.frozen`` class per JSON object of PROTOCOL §2-§3.

Field names are the wire names. Optional fields default to ``None`` and are omitted
from outbound JSON (the wire never carries ``null``); required fields have no default.
Enum fields are typed ``SomeEnum | int`` so unknown values survive a round trip.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ._enums import (
    ItemType,
    MessageState,
    MessageType,
    TypingStatus,
    UploadMediaType,
    VoiceEncodeType,
)

__all__ = [
    "BaseInfo",
    "CDNMedia",
    "FileItem",
    "GetBotQrcodeReq",
    "GetBotQrcodeResp",
    "GetConfigReq",
    "GetConfigResp",
    "GetUpdatesReq",
    "GetUpdatesResp",
    "GetUploadUrlReq",
    "GetUploadUrlResp",
    "ImageItem",
    "MessageItem",
    "NotifyReq",
    "QrcodeStatusResp",
    "RefMessage",
    "SendMessageReq",
    "SendMessageResp",
    "SendTypingReq",
    "StatusResp",
    "TextItem",
    "ToolCallResultItem",
    "ToolCallStartItem",
    "VideoItem",
    "VoiceItem",
    "WeixinMessage",
]


def _redacted(value: object) -> str:
    """attrs field repr for secrets: shows only whether a value is set."""
    return "None" if value is None else "<redacted>"


@attrs.frozen
class BaseInfo:
    """``base_info`` carried by every authenticated POST body (PROTOCOL §1.5)."""

    channel_version: str | None = None
    bot_agent: str | None = None


@attrs.frozen
class CDNMedia:
    """Reference to an encrypted CDN object (PROTOCOL §3.5)."""

    encrypt_query_param: str | None = attrs.field(default=None, repr=_redacted)
    aes_key: str | None = attrs.field(default=None, repr=_redacted)
    encrypt_type: int | None = None
    full_url: str | None = attrs.field(default=None, repr=_redacted)


@attrs.frozen
class TextItem:
    """Payload of item type 1."""

    text: str | None = None


@attrs.frozen
class ImageItem:
    """Payload of item type 2 (PROTOCOL §3.6)."""

    media: CDNMedia | None = None
    thumb_media: CDNMedia | None = None
    aeskey: str | None = attrs.field(default=None, repr=_redacted)
    url: str | None = attrs.field(default=None, repr=_redacted)
    mid_size: int | None = None
    thumb_size: int | None = None
    thumb_height: int | None = None
    thumb_width: int | None = None
    hd_size: int | None = None


@attrs.frozen
class VoiceItem:
    """Payload of item type 3; ``playtime`` is in milliseconds, ``text`` the transcript."""

    media: CDNMedia | None = None
    encode_type: VoiceEncodeType | int | None = None
    bits_per_sample: int | None = None
    sample_rate: int | None = None
    playtime: int | None = None
    text: str | None = None


@attrs.frozen
class FileItem:
    """Payload of item type 4; ``len`` is the plaintext size as a decimal **string**."""

    media: CDNMedia | None = None
    file_name: str | None = None
    md5: str | None = None
    len: str | None = None


@attrs.frozen
class VideoItem:
    """Payload of item type 5."""

    media: CDNMedia | None = None
    video_size: int | None = None
    play_length: int | None = None
    video_md5: str | None = None
    thumb_media: CDNMedia | None = None
    thumb_size: int | None = None
    thumb_height: int | None = None
    thumb_width: int | None = None


@attrs.frozen
class ToolCallStartItem:
    """Payload of item type 11 (protocol 2.4.6): a tool call began."""

    tool_name: str | None = None
    tool_call_id: str | None = None


@attrs.frozen
class ToolCallResultItem:
    """Payload of item type 12: ``status`` is completed, failed, blocked or unknown."""

    tool_name: str | None = None
    tool_call_id: str | None = None
    status: str | None = None


@attrs.frozen
class RefMessage:
    """A quoted message (PROTOCOL §3.8): ``message_item.msg_id`` is the reliable key."""

    message_item: MessageItem | None = None
    title: str | None = None


@attrs.frozen
class MessageItem:
    """One item of ``item_list`` (PROTOCOL §3.2).

    ``extra`` keeps payload keys this library does not know (e.g. a future
    ``foo_item``) so they are neither lost nor rejected, and are sent back unchanged.
    """

    type: ItemType | int | None = None
    create_time_ms: int | None = None
    update_time_ms: int | None = None
    is_completed: bool | None = None
    msg_id: str | None = None
    ref_msg: RefMessage | None = None
    text_item: TextItem | None = None
    image_item: ImageItem | None = None
    voice_item: VoiceItem | None = None
    file_item: FileItem | None = None
    video_item: VideoItem | None = None
    tool_call_start_item: ToolCallStartItem | None = None
    tool_call_result_item: ToolCallResultItem | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class WeixinMessage:
    """A message, inbound or outbound (PROTOCOL §3.1)."""

    seq: int | None = None
    message_id: int | None = None
    from_user_id: str | None = None
    to_user_id: str | None = None
    client_id: str | None = None
    create_time_ms: int | None = None
    update_time_ms: int | None = None
    delete_time_ms: int | None = None
    session_id: str | None = None
    group_id: str | None = None
    message_type: MessageType | int | None = None
    message_state: MessageState | int | None = None
    item_list: tuple[MessageItem, ...] | None = None
    context_token: str | None = attrs.field(default=None, repr=_redacted)
    run_id: str | None = None


# --- requests and responses -------------------------------------------------------


@attrs.frozen
class StatusResp:
    """Envelope shared by every response: ``ret``/``errcode``/``errmsg`` (all optional)."""

    ret: int | None = None
    errcode: int | None = None
    errmsg: str | None = None


@attrs.frozen
class GetUpdatesReq:
    """``POST ilink/bot/getupdates`` body; ``get_updates_buf`` is ``""`` when none."""

    get_updates_buf: str = attrs.field(repr=_redacted)
    base_info: BaseInfo
    sync_buf: str | None = None


@attrs.frozen
class GetUpdatesResp:
    """``getupdates`` response. ``msgs`` holds only the messages that parsed.

    Messages that did not fit the schema are in ``malformed`` as ``(raw JSON, reason)``
    pairs, so one bad message never makes the batch unreadable (PROTOCOL §3.3).
    """

    ret: int | None = None
    errcode: int | None = None
    errmsg: str | None = None
    msgs: tuple[WeixinMessage, ...] = ()
    get_updates_buf: str | None = None
    sync_buf: str | None = None
    longpolling_timeout_ms: int | None = None
    malformed: tuple[tuple[Mapping[str, Any], str], ...] = attrs.field(default=(), hash=False)
    raw_msgs: tuple[Mapping[str, Any], ...] = attrs.field(default=(), hash=False, repr=False)

    @property
    def next_cursor(self) -> str | None:
        """The cursor to store: a non-empty ``get_updates_buf``, else ``None`` (§4.1).

        The deprecated ``sync_buf`` is never used as the cursor (TS-ref ignores it; RS
        falls back to it): it is a different, older value, and resuming from it could
        replay or skip messages.
        """
        return self.get_updates_buf or None


@attrs.frozen
class SendMessageReq:
    """``POST ilink/bot/sendmessage`` body."""

    msg: WeixinMessage
    base_info: BaseInfo


@attrs.frozen
class SendMessageResp:
    """``sendmessage`` response: ``{"message_id": N}``, an empty body, or an error."""

    ret: int | None = None
    errcode: int | None = None
    errmsg: str | None = None
    message_id: int | None = None


@attrs.frozen
class GetUploadUrlReq:
    """``POST ilink/bot/getuploadurl`` body (PROTOCOL §2.4)."""

    filekey: str
    media_type: UploadMediaType | int
    to_user_id: str
    rawsize: int
    rawfilemd5: str
    filesize: int
    aeskey: str = attrs.field(repr=_redacted)
    base_info: BaseInfo
    no_need_thumb: bool = True
    thumb_rawsize: int | None = None
    thumb_rawfilemd5: str | None = None
    thumb_filesize: int | None = None


@attrs.frozen
class GetUploadUrlResp:
    """``getuploadurl`` response."""

    ret: int | None = None
    errcode: int | None = None
    errmsg: str | None = None
    upload_param: str | None = attrs.field(default=None, repr=_redacted)
    thumb_upload_param: str | None = attrs.field(default=None, repr=_redacted)
    upload_full_url: str | None = attrs.field(default=None, repr=_redacted)


@attrs.frozen
class GetConfigReq:
    """``POST ilink/bot/getconfig`` body."""

    ilink_user_id: str
    base_info: BaseInfo
    context_token: str | None = attrs.field(default=None, repr=_redacted)


@attrs.frozen
class GetConfigResp:
    """``getconfig`` response; success only when ``ret == 0`` exactly."""

    ret: int | None = None
    errcode: int | None = None
    errmsg: str | None = None
    typing_ticket: str | None = attrs.field(default=None, repr=_redacted)


@attrs.frozen
class SendTypingReq:
    """``POST ilink/bot/sendtyping`` body."""

    ilink_user_id: str
    typing_ticket: str = attrs.field(repr=_redacted)
    status: TypingStatus | int
    base_info: BaseInfo


@attrs.frozen
class NotifyReq:
    """``POST ilink/bot/msg/notifystart`` and ``notifystop`` body."""

    base_info: BaseInfo


@attrs.frozen
class GetBotQrcodeReq:
    """``POST ilink/bot/get_bot_qrcode`` body: up to 10 tokens this client holds."""

    local_token_list: tuple[str, ...] = attrs.field(default=(), repr=_redacted)


@attrs.frozen
class GetBotQrcodeResp:
    """``get_bot_qrcode`` response."""

    ret: int | None = None
    errcode: int | None = None
    errmsg: str | None = None
    qrcode: str | None = attrs.field(default=None, repr=_redacted)
    qrcode_img_content: str | None = None


@attrs.frozen
class QrcodeStatusResp:
    """``get_qrcode_status`` response (PROTOCOL §2.8.2)."""

    status: str | None = None
    ret: int | None = None
    errcode: int | None = None
    errmsg: str | None = None
    bot_token: str | None = attrs.field(default=None, repr=_redacted)
    ilink_bot_id: str | None = None
    baseurl: str | None = None
    ilink_user_id: str | None = None
    redirect_host: str | None = None
