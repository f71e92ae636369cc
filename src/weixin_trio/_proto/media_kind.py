"""``MediaKind`` on its own, so a text bot's inbound parsing needs no media tables.

Public as [`weixin_trio.media.MediaKind`][weixin_trio.media.MediaKind], which is the
same object; `weixin_trio.media` (MIME tables, safe file names) loads only when a
bot sends or downloads media.
"""

from __future__ import annotations

import enum

__all__ = ["MediaKind"]


class MediaKind(enum.Enum):
    """Kind of an outbound media message.

    The values are the getuploadurl ``media_type`` numbers (``UploadMediaType``, §3.3);
    they are *not* ``MessageItemType`` values.
    """

    __module__ = "weixin_trio.media"  # its public home, as before the move

    IMAGE = 1
    VIDEO = 2
    FILE = 3
    VOICE = 4
