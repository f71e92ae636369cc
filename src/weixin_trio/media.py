"""MIME types, media routing and safe file names (PROTOCOL §5.4, §6.8).

Sans-IO helpers for media:

* `mime_from_filename`, `extension_from_mime` and
  `extension_from_content_type_or_url` reproduce the reference's tables and
  rules exactly (``getMimeFromFilename`` and friends of TS-ref 2.4.3);
* `media_kind_for_mime` routes an outbound file to IMAGE, VIDEO or FILE;
* `safe_filename` turns a hostile inbound ``file_item.file_name`` into a name
  that is safe to create in a directory on any common file system.

Deliberate differences from the reference:

* `extension_from_content_type_or_url` never raises: a URL that JavaScript's
  ``new URL()`` rejects is read as a plain path (the reference throws ``TypeError``).
* `safe_filename` has no counterpart in the reference, which hands the inbound
  name to its host unchanged.
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import urlsplit

from ._proto.media_kind import MediaKind

__all__ = [
    "DEFAULT_MIME",
    "MAX_FILENAME_BYTES",
    "MediaKind",
    "download_name",
    "extension_from_content_type_or_url",
    "extension_from_mime",
    "media_kind_for_mime",
    "mime_from_filename",
    "safe_filename",
]

DEFAULT_MIME: Final = "application/octet-stream"
"""MIME type of an unknown or missing extension."""
DEFAULT_EXTENSION: Final = ".bin"
MAX_FILENAME_BYTES: Final = 200
"""Upper bound of [`safe_filename`][weixin_trio.media.safe_filename] results, in UTF-8 bytes."""

_EXTENSION_TO_MIME: Final[dict[str, str]] = {
    ".pdf": "application/pdf",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".ppt": "application/vnd.ms-powerpoint",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".zip": "application/zip",
    ".tar": "application/x-tar",
    ".gz": "application/gzip",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".wav": "audio/wav",
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".avi": "video/x-msvideo",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
}

_MIME_TO_EXTENSION: Final[dict[str, str]] = {
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/bmp": ".bmp",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "video/x-matroska": ".mkv",
    "video/x-msvideo": ".avi",
    "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg",
    "audio/wav": ".wav",
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "application/x-tar": ".tar",
    "application/gzip": ".gz",
    "text/plain": ".txt",
    "text/csv": ".csv",
}


def _posix_extname(path: str) -> str:
    """Node's ``path.posix.extname``: ``"a/b.c.PNG"`` → ``".PNG"``, ``".pdf"`` → ``""``."""
    path = path.rstrip("/") or path
    base = path[path.rfind("/") + 1 :]
    dot = base.rfind(".")
    if dot <= 0 or base == "..":
        return ""
    return base[dot:]


def _essence(mime: str) -> str:
    return mime.split(";", 1)[0].strip().lower()


def mime_from_filename(name: str) -> str:
    """The MIME type of a file name, from its last extension (§6.8).

    Case-insensitive; Node's ``path.extname`` rules: a name starting with a dot and
    containing no other dot (``.pdf``) has no extension, nor has ``trailingdot.``.
    Only ``/`` separates directories, as in the reference; a Windows path such as
    ``C:\\win\\x.png`` still gives ``image/png`` because the last extension counts.

    Args:
        name: A file name or path.

    Returns:
        The MIME type, or ``application/octet-stream`` for an unknown or missing
        extension.
    """
    return _EXTENSION_TO_MIME.get(_posix_extname(name).lower(), DEFAULT_MIME)


def extension_from_mime(mime: str) -> str:
    """The file extension of a MIME type (§6.8).

    Parameters after ``;`` and surrounding whitespace are ignored; case-insensitive.
    Office formats have no reverse mapping.

    Args:
        mime: A MIME type or ``Content-Type`` value, e.g. ``image/jpeg; q=0.9``.

    Returns:
        The extension with its dot (``.jpg``), or ``.bin`` when unknown.
    """
    return _MIME_TO_EXTENSION.get(_essence(mime), DEFAULT_EXTENSION)


_SINGLE_DOT: Final = frozenset({".", "%2e"})
_DOUBLE_DOT: Final = frozenset({"..", ".%2e", "%2e.", "%2e%2e"})
_SPECIAL_SCHEMES: Final = frozenset({"http", "https", "ftp", "ws", "wss", "file"})


def _remove_dot_segments(path: str) -> str:
    """Resolve ``.`` and ``..`` segments as a WHATWG URL parser does."""
    segments = path.split("/")
    out: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        lowered = segment.lower()
        if lowered in _SINGLE_DOT or lowered in _DOUBLE_DOT:
            if lowered in _DOUBLE_DOT and len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/".join(out)


def _url_path(url: str) -> str:
    """The path of ``url`` as JavaScript's ``new URL(url).pathname`` would see it."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.split("?", 1)[0].split("#", 1)[0]
    path = parts.path
    if parts.scheme.lower() in _SPECIAL_SCHEMES:
        path = path.replace("\\", "/")  # WHATWG: "\" is a separator for these schemes
    return _remove_dot_segments(path)


def extension_from_content_type_or_url(content_type: str | None, url: str) -> str:
    """The extension for a downloaded remote file (§6.8).

    The ``Content-Type`` wins if it maps to a known extension; else the extension of
    the URL's path (query and fragment ignored) if it is in the extension table; else
    ``.bin``.

    Args:
        content_type: The response ``Content-Type``, or ``None``.
        url: The URL the file came from.

    Returns:
        The extension with its dot, lowercase.
    """
    if content_type:
        ext = extension_from_mime(content_type)
        if ext != DEFAULT_EXTENSION:
            return ext
    ext = _posix_extname(_url_path(url))
    if not ext.isascii():  # a URL parser would percent-encode it: never a known extension
        return DEFAULT_EXTENSION
    ext = ext.lower()
    return ext if ext in _EXTENSION_TO_MIME else DEFAULT_EXTENSION


def media_kind_for_mime(mime: str) -> MediaKind:
    """Route an outbound file by its MIME type (§5.4).

    ``video/*`` → VIDEO, ``image/*`` → IMAGE, everything else (audio included) → FILE,
    as in every reference. VOICE is never chosen: no reference sends voice items.

    Args:
        mime: A MIME type (parameters are ignored).

    Returns:
        The media kind.
    """
    essence = _essence(mime)
    if essence.startswith("video/"):
        return MediaKind.VIDEO
    if essence.startswith("image/"):
        return MediaKind.IMAGE
    return MediaKind.FILE


# C0 and C1 controls, DEL, Unicode line/paragraph separators, bidi marks, embeddings,
# overrides and isolates, and lone surrogates (from surrogateescape'd bytes).
_UNSAFE_CHARS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_WINDOWS_INVALID = re.compile(r'[<>:"|?*]')
_SEPARATORS = re.compile(r"[/\\]")
_WINDOWS_RESERVED: Final = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{dev}{n}" for dev in ("COM", "LPT") for n in "123456789¹²³"}
)
_MAX_EXTENSION_BYTES: Final = 32


def _clean(name: str) -> str:
    name = _UNSAFE_CHARS.sub("", name)
    name = _SEPARATORS.split(name)[-1]
    name = _WINDOWS_INVALID.sub("_", name)
    return name.lstrip(". ").rstrip(". ")


def _split_extension(name: str) -> tuple[str, str]:
    dot = name.rfind(".")
    if dot <= 0 or len(name[dot:].encode("utf-8")) > _MAX_EXTENSION_BYTES:
        return name, ""
    return name[:dot], name[dot:]


def _truncate_utf8(text: str, limit: int) -> str:
    return text.encode("utf-8")[: max(limit, 0)].decode("utf-8", "ignore")


def safe_filename(name: str | None, *, mime: str | None = None, default_stem: str = "file") -> str:
    """A file name that is safe to create, derived from a hostile inbound name.

    In order:

    1. control characters (C0, DEL, C1), Unicode line separators, bidi controls
       (U+061C, U+200E/F, U+202A–U+202E, U+2066–U+2069) and lone surrogates are removed;
    2. directories are stripped: only the text after the last ``/`` or ``\\`` is kept;
    3. ``< > : " | ? *`` (invalid on Windows) become ``_``;
    4. leading dots and whitespace and trailing dots and whitespace are removed (no
       hidden files, no ``.``/``..``, no names Windows would silently alter);
    5. an empty result falls back to ``default_stem`` (cleaned the same way, or
       ``file`` if that is empty too);
    6. a Windows device name (``CON``, ``PRN``, ``AUX``, ``NUL``, ``COM1``–``COM9``,
       ``LPT1``–``LPT9``, ``CONIN$``, ``CONOUT$``, case-insensitive, with or without an
       extension) gets a ``_`` prefix;
    7. if the name has no extension and ``mime`` maps to one, it is appended; an
       unknown ``mime`` (``.bin``) appends nothing, since ``.bin`` says nothing;
    8. the name is cut to 200 UTF-8 bytes without splitting a character, keeping the
       extension (when it is at most 32 bytes) and shortening the stem.

    The result is never empty, ``.`` or ``..``, and contains no ``/``, ``\\`` or
    control character. Cleaning an already clean name (with ``mime=None``) returns it
    unchanged.

    Args:
        name: The untrusted name (``file_item.file_name``), or ``None``.
        mime: The file's MIME type, used only to add a missing extension.
        default_stem: Name used when nothing is left of ``name``.

    Returns:
        The safe file name.
    """
    cleaned = _clean(name or "") or _clean(default_stem) or "file"
    stem, ext = _split_extension(cleaned)
    if not ext and mime is not None:
        guessed = extension_from_mime(mime)
        if guessed != DEFAULT_EXTENSION:
            ext = guessed
    if stem.split(".", 1)[0].rstrip(" ").upper() in _WINDOWS_RESERVED:
        stem = f"_{stem}"
    budget = MAX_FILENAME_BYTES - len(ext.encode("utf-8"))
    if len(stem.encode("utf-8")) > budget:
        stem = _truncate_utf8(stem, budget).rstrip(". ")
    return stem + ext


def download_name(media: Any) -> str:
    """A safe local file name for an inbound media reference (``MediaRef``).

    Files keep their (sanitised) name; images, videos and voice get a generic one with
    the extension of their kind.
    """
    kind: MediaKind = media.kind
    if kind is MediaKind.FILE:
        name: str | None = media.file_name
        return safe_filename(name, mime=mime_from_filename(name or ""), default_stem="file")
    return {
        MediaKind.IMAGE: "image.jpg",
        MediaKind.VIDEO: "video.mp4",
        MediaKind.VOICE: "voice.silk",
    }[kind]
