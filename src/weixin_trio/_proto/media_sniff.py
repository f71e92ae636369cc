"""What a downloaded file is, by its first bytes (magic numbers), sans-IO.

Used by remote media sends: the server's ``Content-Type`` and the URL's extension are
only hints; an image send whose bytes are not an image is refused.
"""

from __future__ import annotations

from typing import Final

__all__ = ["SNIFF_BYTES", "sniff_mime"]

#: How many leading bytes `sniff_mime` looks at.
SNIFF_BYTES: Final = 32

_PREFIXES: Final = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"%PDF-", "application/pdf"),
    (b"\x1aE\xdf\xa3", "video/webm"),
    (b"PK\x03\x04", "application/zip"),
    (b"#!SILK_V3", "audio/silk"),
    (b"\x02#!SILK_V3", "audio/silk"),
    (b"ID3", "audio/mpeg"),
    (b"OggS", "audio/ogg"),
)

_FTYP_BRANDS: Final = {
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heif",
    b"msf1": "image/heif",
    b"avif": "image/avif",
    b"qt  ": "video/quicktime",
    b"M4A ": "audio/mp4",
}


def sniff_mime(head: bytes) -> str | None:
    """The MIME type the leading bytes ``head`` show, or ``None`` when unknown.

    Recognises JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC/HEIF/AVIF, MP4/MOV (``ftyp``),
    WebM/Matroska, AVI, WAV, PDF, ZIP, SILK, MP3 (ID3) and Ogg.
    """
    for prefix, mime in _PREFIXES:
        if head.startswith(prefix):
            return mime
    if head[:4] == b"RIFF" and len(head) >= 12:
        return {b"WEBP": "image/webp", b"AVI ": "video/x-msvideo", b"WAVE": "audio/wav"}.get(
            head[8:12]
        )
    if head[4:8] == b"ftyp" and len(head) >= 12:
        return _FTYP_BRANDS.get(head[8:12], "video/mp4")
    return None
