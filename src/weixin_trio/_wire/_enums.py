"""Wire enums (PROTOCOL §3.3).

Every enum derives from `WireIntEnum`. Fields typed ``SomeEnum | int`` keep values
the library does not know yet as plain ``int`` and send them back unchanged: the
protocol grows new values (item types 11/12 arrived in 2.4.6) and one unknown value
must never make a whole batch unreadable.
"""

from __future__ import annotations

import enum
from typing import TypeVar

__all__ = [
    "EncryptType",
    "ItemType",
    "MessageState",
    "MessageType",
    "TypingStatus",
    "UploadMediaType",
    "VoiceEncodeType",
    "WireIntEnum",
    "open_enum",
]


class WireIntEnum(enum.IntEnum):
    """Base of every wire enum; the converter keeps unknown values as ``int``."""


class MessageType(WireIntEnum):
    """``WeixinMessage.message_type``: who wrote the message."""

    NONE = 0
    USER = 1
    BOT = 2


class MessageState(WireIntEnum):
    """``WeixinMessage.message_state``."""

    NEW = 0
    GENERATING = 1
    FINISH = 2


class ItemType(WireIntEnum):
    """``MessageItem.type``: which payload field of the item is populated."""

    NONE = 0
    TEXT = 1
    IMAGE = 2
    VOICE = 3
    FILE = 4
    VIDEO = 5
    TOOL_CALL_START = 11
    TOOL_CALL_RESULT = 12


class UploadMediaType(WireIntEnum):
    """``getuploadurl`` ``media_type``."""

    IMAGE = 1
    VIDEO = 2
    FILE = 3
    VOICE = 4


class TypingStatus(WireIntEnum):
    """``sendtyping`` ``status``."""

    TYPING = 1
    CANCEL = 2


class EncryptType(WireIntEnum):
    """``CDNMedia.encrypt_type``."""

    FILE_ID_ONLY = 0
    PACKED = 1


class VoiceEncodeType(WireIntEnum):
    """``VoiceItem.encode_type``."""

    PCM = 1
    ADPCM = 2
    FEATURE = 3
    SPEEX = 4
    AMR = 5
    SILK = 6
    MP3 = 7
    OGG_SPEEX = 8


_E = TypeVar("_E", bound="WireIntEnum")


def open_enum(cls: type[_E], value: int) -> _E | int:
    """Return ``cls(value)`` when ``value`` is a known member, else ``value`` itself."""
    try:
        return cls(value)
    except ValueError:
        return value
