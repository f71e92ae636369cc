"""Error notices: the short message a user gets when their message failed for good.

``open_monitor(client, handler, error_notice=ErrorNotices())`` (and the Redis fan-out
worker) sends one when a message is dead-lettered (cause ``handler``, ``timeout`` or
``send``). The text is picked by what failed (`notice_kind`):

- ``download``: fetching media failed (a CDN download, a remote media URL);
- ``upload``: uploading media failed (``getuploadurl``, the CDN upload);
- ``send``: a reply could not be sent (transient failures that outlasted the retries);
- ``internal``: anything else (the handler raised, or timed out).

Never after a permanent send failure (`unreachable`: the user cannot be reached, so a
notice would fail too), and at most once per message: its ``client_id`` derives from
the account and message id (`notice_client_id`), so a redelivery after a crash is
not shown twice.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Literal, TypeAlias

import attrs

from .._errors import (
    ApiError,
    CdnError,
    NoContextTokenError,
    RateLimitedError,
    RemoteMediaError,
    SendWindowClosedError,
    TransportError,
)
from .client_ids import CLIENT_ID_PREFIX

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DEFAULT_NOTICE_TIMEOUT",
    "ErrorNotices",
    "NoticeKind",
    "NoticeText",
    "notice_client_id",
    "notice_kind",
    "unreachable",
]

NoticeKind: TypeAlias = Literal["download", "upload", "send", "internal"]

#: A callable choosing the text: ``(kind, error) -> text`` (``None`` or ``""``: none).
NoticeText: TypeAlias = "Callable[[NoticeKind, Exception], str | None]"

#: Seconds a notice's send may take (retries included), unless configured.
DEFAULT_NOTICE_TIMEOUT = 15.0

_SEND = "ilink/bot/sendmessage"
_UPLOAD_MODULES = ("weixin_trio._client.cdn_transfer", "weixin_trio._client.media_send")
_DOWNLOAD_MODULES = ("weixin_trio._client.cdn_download", "weixin_trio._client.remote_media")


@attrs.frozen
class ErrorNotices:
    """The texts of the error notices (an empty text switches that kind off).

    Attributes:
        download: Media could not be fetched.
        upload: Media could not be uploaded.
        send: A reply could not be sent.
        internal: Anything else.
        timeout: Seconds the notice's send may take (retries included).
    """

    download: str = "⚠️ 文件下载失败，请稍后再试。The file could not be downloaded."
    upload: str = "⚠️ 文件上传失败，请稍后再试。The file could not be uploaded."
    send: str = "⚠️ 消息发送失败，请稍后再试。The reply could not be sent."
    internal: str = "⚠️ 处理消息时出错，请稍后再试。Something went wrong; please try again."
    timeout: float = DEFAULT_NOTICE_TIMEOUT

    def text_for(self, kind: NoticeKind, error: Exception) -> str | None:
        """The notice text for ``kind`` (``None`` when switched off)."""
        del error
        return getattr(self, kind) or None


def _raised_in(exc: BaseException, modules: tuple[str, ...]) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "") in modules:
            return True
        tb = tb.tb_next
    return False


def notice_kind(exc: Exception) -> NoticeKind:
    """Which notice a final failure gets: download, upload, send or internal."""
    if isinstance(exc, RemoteMediaError):
        return "download"
    endpoint = getattr(exc, "endpoint", None)
    if isinstance(exc, ApiError | TransportError) and endpoint == "ilink/bot/getuploadurl":
        return "upload"
    if isinstance(exc, CdnError) or (isinstance(exc, TransportError) and endpoint == "cdn"):
        if _raised_in(exc, _DOWNLOAD_MODULES):
            return "download"
        return "upload"
    if isinstance(exc, ApiError | TransportError) and endpoint == _SEND:
        return "send"
    return "internal"


def unreachable(exc: Exception) -> bool:
    """Whether the failure says the user cannot be reached (then no notice is sent).

    A permanent ``sendmessage`` failure (an `ApiError` that is neither a 5xx nor a
    throttle), no context token, or a closed send window.
    """
    if isinstance(exc, NoContextTokenError | SendWindowClosedError):
        return True
    if isinstance(exc, ApiError) and exc.endpoint == _SEND:
        return not isinstance(exc, RateLimitedError) and exc.status_code < 500
    return False


def notice_client_id(account: str, message_id: int) -> str:
    """The notice's ``client_id``: the same for every attempt at the same message."""
    key = f"notice\x00{account}\x00{message_id}"
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{CLIENT_ID_PREFIX}:n-{digest[:24]}"
