"""Tests of weixin_trio.media: MIME tables, routing and safe file names."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import example, given, strategies as st

from tests._vectors import load_vectors, vector_id
from weixin_trio.media import (
    MAX_FILENAME_BYTES,
    MediaKind,
    extension_from_content_type_or_url,
    extension_from_mime,
    media_kind_for_mime,
    mime_from_filename,
    safe_filename,
)

# PROTOCOL §6.8, written out independently of the module under test.
EXTENSION_TABLE = {
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
MIME_TABLE = {
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


@pytest.mark.parametrize("vector", load_vectors("mime"), ids=vector_id)
def test_mime_vector(vector: dict[str, Any]) -> None:
    inp, expected = vector["input"], vector["expected"]
    fn = inp["fn"]
    if fn == "getMimeFromFilename":
        assert mime_from_filename(inp["filename"]) == expected["mime"]
    elif fn == "getExtensionFromMime":
        assert extension_from_mime(inp["mime"]) == expected["ext"]
    elif fn == "getExtensionFromContentTypeOrUrl":
        ext = extension_from_content_type_or_url(inp["content_type"], inp["url"])
        # Where the reference throws (new URL() of an invalid URL) we return ".bin".
        assert ext == expected.get("ext", ".bin")
    else:
        pytest.fail(f"unknown fn {fn!r}")


@pytest.mark.parametrize(("ext", "mime"), EXTENSION_TABLE.items())
def test_extension_table(ext: str, mime: str) -> None:
    assert mime_from_filename(f"name{ext}") == mime
    assert mime_from_filename(f"dir/NAME{ext.upper()}") == mime


@pytest.mark.parametrize(("mime", "ext"), MIME_TABLE.items())
def test_mime_table(mime: str, ext: str) -> None:
    assert extension_from_mime(mime) == ext
    assert extension_from_mime(f" {mime.upper()} ; charset=utf-8") == ext


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("", "application/octet-stream"),
        ("noext", "application/octet-stream"),
        (".pdf", "application/octet-stream"),  # dotfile: no extension
        ("dir/.pdf", "application/octet-stream"),
        ("..", "application/octet-stream"),
        ("..png", "image/png"),  # Node: extname("..png") == ".png"
        ("trailingdot.", "application/octet-stream"),
        ("archive.tar.gz", "application/gzip"),
        ("photo.png/", "image/png"),  # Node ignores trailing slashes
        ("C:\\win\\x.png", "image/png"),
        ("a.b/c", "application/octet-stream"),
        ("x.docx.exe", "application/octet-stream"),
    ],
)
def test_mime_from_filename_edges(name: str, mime: str) -> None:
    assert mime_from_filename(name) == mime


@pytest.mark.parametrize(
    ("content_type", "url", "ext"),
    [
        ("image/png", "https://example.com/file.jpg", ".png"),
        ("application/unknown", "https://example.com/file.jpg", ".jpg"),
        (None, "https://example.com/file.MP4", ".mp4"),
        (None, "https://example.com/file", ".bin"),
        (None, "https://example.com/a.png#frag.gif", ".png"),
        (None, "https://example.com/a.docx", ".docx"),
        (None, "https://example.com/a.png/.", ".png"),  # WHATWG resolves "." segments
        (None, "https://example.com/a.png/x/..", ".png"),
        (None, "https://example.com/x.png\\y", ".bin"),  # "\" is "/" in http URLs
        (None, "not a url.gif", ".gif"),  # the reference throws here
        (None, "https://[broken/x.gif", ".gif"),
        (None, "https://example.com/a.pn\u212a", ".bin"),  # Kelvin sign is not "k"
    ],
)
def test_extension_from_content_type_or_url_edges(
    content_type: str | None, url: str, ext: str
) -> None:
    assert extension_from_content_type_or_url(content_type, url) == ext


@pytest.mark.parametrize(
    ("mime", "kind"),
    [
        ("image/gif", MediaKind.IMAGE),
        ("IMAGE/PNG; q=1", MediaKind.IMAGE),
        ("video/webm", MediaKind.VIDEO),
        (" Video/MP4 ", MediaKind.VIDEO),
        ("audio/mpeg", MediaKind.FILE),
        ("application/pdf", MediaKind.FILE),
        ("application/octet-stream", MediaKind.FILE),
        ("", MediaKind.FILE),
        ("imagefoo/png", MediaKind.FILE),
    ],
)
def test_routing(mime: str, kind: MediaKind) -> None:
    assert media_kind_for_mime(mime) is kind


def test_routing_by_file_name() -> None:
    assert media_kind_for_mime(mime_from_filename("anim.gif")) is MediaKind.IMAGE
    assert media_kind_for_mime(mime_from_filename("clip.webm")) is MediaKind.VIDEO
    assert media_kind_for_mime(mime_from_filename("song.mp3")) is MediaKind.FILE


def test_media_kind_values_are_upload_media_types() -> None:
    assert [(k.name, k.value) for k in MediaKind] == [
        ("IMAGE", 1),
        ("VIDEO", 2),
        ("FILE", 3),
        ("VOICE", 4),
    ]


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("/abs/path/x.png", "x.png"),
        ("C:\\win\\x.png", "x.png"),
        ("a\x00b.txt", "ab.txt"),
        ("a\x1b[31mred\x7f\x85.txt", "a[31mred.txt"),
        ("evil\u202egpj.exe", "evilgpj.exe"),
        ("\u2066x\u2069y\u200f.txt", "xy.txt"),
        ("bad\ud800name.txt", "badname.txt"),
        ("line\u2028break.txt", "linebreak.txt"),
        ('a<b>c:d"e|f?g*h.txt', "a_b_c_d_e_f_g_h.txt"),
        ("CON.txt", "_CON.txt"),
        ("con", "_con"),
        ("Lpt9.tar.gz", "_Lpt9.tar.gz"),
        ("nul .txt", "_nul .txt"),
        ("COM1", "_COM1"),
        ("COM0", "COM0"),
        ("CONSOLE.txt", "CONSOLE.txt"),
        ("", "file"),
        (".", "file"),
        ("..", "file"),
        ("...", "file"),
        ("....../", "file"),
        (". . .", "file"),
        (".bashrc", "bashrc"),
        ("name. . ", "name"),
        ("  spaced  .txt  ", "spaced  .txt"),
        ("dir/", "file"),
        ("中文 文件名.docx", "中文 文件名.docx"),
    ],
)
def test_safe_filename_hostile(name: str, safe: str) -> None:
    assert safe_filename(name) == safe


def test_safe_filename_none_and_default_stem() -> None:
    assert safe_filename(None) == "file"
    assert safe_filename(None, default_stem="voice") == "voice"
    assert safe_filename("..", default_stem="../img") == "img"
    assert safe_filename("", default_stem="..") == "file"


def test_safe_filename_mime_extension() -> None:
    assert safe_filename("photo", mime="image/jpeg") == "photo.jpg"
    assert safe_filename(None, mime="video/mp4; codecs=avc1") == "file.mp4"
    assert safe_filename("photo.png", mime="image/jpeg") == "photo.png"  # keeps its own
    assert safe_filename("blob", mime="application/x-unknown") == "blob"  # no ".bin"
    assert safe_filename("con", mime="text/plain") == "_con.txt"


def test_safe_filename_long_cjk_name_keeps_extension() -> None:
    name = "报告" * 500 + ".pdf"
    safe = safe_filename(name)
    assert safe.endswith(".pdf")
    assert len(safe.encode("utf-8")) <= MAX_FILENAME_BYTES
    assert set(safe[: -len(".pdf")]) == {"报", "告"}
    # 3-byte characters: 196 bytes of stem hold 65 whole characters.
    assert len(safe) == 65 + 4


def test_safe_filename_long_names() -> None:
    assert safe_filename("x" * 1000) == "x" * 200
    assert safe_filename("x" * 1000 + ".png") == "x" * 196 + ".png"
    long_ext = "a." + "e" * 100
    assert safe_filename(long_ext) == long_ext  # under the cap
    capped = safe_filename("s" * 150 + "." + "e" * 100)  # extension too long to keep
    assert capped == ("s" * 150 + "." + "e" * 100)[:200]
    assert safe_filename("😀" * 100 + ".txt") == "😀" * 49 + ".txt"
    # The stem is cut to 196 bytes ("a" * 195 + "."), then its trailing dot goes.
    assert safe_filename("a" * 195 + "....txt") == "a" * 195 + ".txt"
    dotted = safe_filename("a" + "." * 300 + "b")
    assert not dotted.endswith(".")
    assert len(dotted.encode()) <= MAX_FILENAME_BYTES


_FORBIDDEN = re.compile("[/\\\\\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_RESERVED = re.compile(r"(CON|PRN|AUX|NUL|COM[1-9]|LPT[1-9])( *)(\..*)?", re.IGNORECASE)

names = st.one_of(
    st.text(),
    st.text(
        alphabet=st.characters(categories=("Cc", "Cf", "Cs", "Zl", "Zp", "Zs", "Lo", "Po")),
        max_size=300,
    ),
    st.text(alphabet=st.sampled_from("./\\ \x00\u202e中😀Aa:<*"), max_size=300),
    st.sampled_from(["CON", "con.txt", "LPT1 .x", ".", "..", "....", "/", "\\"]),
)
mimes = st.one_of(st.none(), st.sampled_from([*MIME_TABLE, "text/html", "application/pdf"]))


@given(names, mimes)
@example("a" * 199 + ".", None)
@example("\u202e" * 100, "image/png")
def test_safe_filename_properties(name: str, mime: str | None) -> None:
    safe = safe_filename(name, mime=mime)
    assert safe
    assert safe not in (".", "..")
    assert not _FORBIDDEN.search(safe)
    assert len(safe.encode("utf-8")) <= MAX_FILENAME_BYTES
    assert not safe.startswith((".", " "))
    assert not safe.endswith((".", " "))
    assert not re.search(r'[<>:"|?*]', safe)
    assert not _RESERVED.fullmatch(safe)
    assert safe_filename(safe) == safe  # idempotent
