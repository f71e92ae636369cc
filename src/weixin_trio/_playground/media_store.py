"""`MediaStore`: the bytes behind every picture and file the page shows, by id."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import attrs

from ..media import mime_from_filename

__all__ = ["MediaEntry", "MediaStore", "sniff_mime"]

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"#!SILK", "audio/silk"),
    (b"\x02#!SILK", "audio/silk"),
    (b"%PDF-", "application/pdf"),
)


def sniff_mime(data: bytes, name: str = "") -> str:
    """The MIME type from the first bytes (images, SILK, PDF), else from ``name``."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return mime_from_filename(name) if name else "application/octet-stream"


@attrs.frozen
class MediaEntry:
    """One stored medium: a name for downloads and how to get its plaintext.

    ``load`` decrypts on demand (the bot's uploads stay encrypted in the fake CDN).
    """

    name: str
    load: Callable[[], bytes] = attrs.field(repr=False)


class MediaStore:
    """Media by id (``m1``, ``m2``, ...)."""

    def __init__(self) -> None:
        self._entries: dict[str, MediaEntry] = {}
        self._ids = itertools.count(1)

    def add(self, name: str, load: Callable[[], bytes]) -> str:
        """Keep a medium; returns its id."""
        media_id = f"m{next(self._ids)}"
        self._entries[media_id] = MediaEntry(name, load)
        return media_id

    def get(self, media_id: str) -> MediaEntry | None:
        """The medium with this id, if any."""
        return self._entries.get(media_id)
