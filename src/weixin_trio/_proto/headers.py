"""Request building helpers: URL joining and HTTP headers (PROTOCOL §1.2, §1.4, §1.5).

Sans-IO: every function is pure except `x_wechat_uin` without an argument (and
`post_headers`, which calls it), which draws a fresh random number.

- ``iLink-App-ClientVersion`` is computed like the reference's ``buildClientVersion``:
  each dot-separated part goes through JavaScript's ``parseInt(part, 10)`` (leading
  whitespace, an optional sign, then digits; no digits gives ``NaN``, which the bitwise
  operators turn into 0), is masked with ``& 0xFF``, and the three bytes are packed as
  ``major << 16 | minor << 8 | patch``. Missing parts count as 0, extra parts are
  ignored: ``"1.2.3-beta.4"`` → 66051, ``"v1.2.3"`` → 515.
- ``bot_agent`` goes through exactly the reference's ``sanitizeBotAgent``.
"""

from __future__ import annotations

import base64
import os
import random
import re
import urllib.parse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "BOT_AGENT_MAX_BYTES",
    "client_version_header",
    "client_version_number",
    "common_headers",
    "get_headers",
    "join_url",
    "post_headers",
    "quote_component",
    "sanitize_bot_agent",
    "x_wechat_uin",
]

BOT_AGENT_MAX_BYTES = 256
"""Cap on the sanitised ``bot_agent`` (UTF-8 bytes)."""

# JavaScript's WhiteSpace + LineTerminator: what String.prototype.trim, parseInt and the
# regular expression class \s skip. Python's str.isspace() is a slightly different set.
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff" + "".join(
    chr(c) for c in range(0x2000, 0x200B)
)
_JS_SPACE_CLASS = "[" + re.escape(_JS_SPACE) + "]"
_JS_SPACE_RE = re.compile(_JS_SPACE_CLASS + "+")
_PARSE_INT_RE = re.compile(_JS_SPACE_CLASS + "*([+-]?[0-9]+)")
_PRODUCT_RE = re.compile(r"[A-Za-z0-9_.\-]{1,32}/[A-Za-z0-9_.+\-]{1,32}")
_COMMENT_RE = re.compile(r"[\x20-\x27\x2A-\x7E]{1,64}")
_HEADER_UNSAFE_RE = re.compile(r"[\x00-\x1f\x7f]")

# X-WECHAT-UIN is not a secret: the server gets a fresh random number per request, as
# from the reference's plain random number generator. A Mersenne Twister seeded once from
# os.urandom (``random.Random()``) draws it without a system call per request (``secrets``
# reads urandom every time); a forked child reseeds, so two processes never share one
# sequence.
_UIN_RANDOM = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_UIN_RANDOM.seed)


def _js_parse_int_byte(part: str) -> int:
    """``parseInt(part, 10) & 0xFF`` as JavaScript computes it (``NaN`` → 0)."""
    m = _PARSE_INT_RE.match(part)
    if m is None:
        return 0
    try:
        # parseInt yields a double; the bitwise operator applies ToInt32 to it.
        value = float(int(m.group(1)))
    except OverflowError:  # Infinity: ToInt32 gives 0
        return 0
    return int(value) & 0xFF


def client_version_number(version: str) -> int:
    """Encode a version string as the reference's ``0x00MMNNPP`` integer.

    Args:
        version: The client's own version, normally ``major.minor.patch``.

    Returns:
        ``(major & 0xFF) << 16 | (minor & 0xFF) << 8 | (patch & 0xFF)``, e.g. ``132102``
        for ``"2.4.6"``; parts that are not numbers count as 0.
    """
    parts = [_js_parse_int_byte(p) for p in version.split(".")[:3]]
    parts += [0] * (3 - len(parts))
    major, minor, patch = parts
    return (major << 16) | (minor << 8) | patch


def client_version_header(version: str) -> str:
    """The ``iLink-App-ClientVersion`` header value for ``version`` (decimal text).

    Args:
        version: The client's own version string, e.g. ``"2.4.6"``.

    Returns:
        The decimal text of `client_version_number`, e.g. ``"132102"``.
    """
    return str(client_version_number(version))


def x_wechat_uin(value: int | None = None) -> str:
    """The ``X-WECHAT-UIN`` header: base64 of the decimal text of a uint32.

    Args:
        value: The uint32 to encode; ``None`` draws a fresh random one (the reference
            sends a new value with every POST).

    Returns:
        E.g. ``"MzAwMDAwMDAwMA=="`` for ``3000000000``.

    Raises:
        ValueError: ``value`` is outside ``0 .. 2**32 - 1``.
    """
    if value is None:
        value = _UIN_RANDOM.getrandbits(32)
    elif not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"X-WECHAT-UIN must be a uint32, got {value}")
    return base64.b64encode(str(value).encode("ascii")).decode("ascii")


def _glue_comments(tokens: list[str]) -> list[str]:
    """Re-join a ``(multi word comment)`` split on whitespace, as the reference does."""
    glued: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("(") and not token.endswith(")"):
            while i + 1 < len(tokens) and not token.endswith(")"):
                i += 1
                token += " " + tokens[i]
        glued.append(token)
        i += 1
    return glued


def sanitize_bot_agent(raw: str | None, default: str = "OpenClaw") -> str:
    """Sanitise a User-Agent-like ``bot_agent`` exactly as the reference does (§1.5).

    Grammar: ``product *( SP product )`` with ``product = name "/" version
    [ SP "(" comment ")" ]``; name is 1–32 of ``[A-Za-z0-9_.-]``, version 1–32 of
    ``[A-Za-z0-9_.+-]``, comment 1–64 printable ASCII characters other than ``(`` and
    ``)``. Invalid tokens and orphan comments are dropped silently; when the result is
    longer than 256 UTF-8 bytes, trailing products are dropped whole.

    Args:
        raw: The configured value; ``None`` or blank gives ``default``.
        default: What to return when nothing valid remains (the reference uses
            ``"OpenClaw"``). It is returned as given, not sanitised.

    Returns:
        The sanitised string, e.g. ``"ValidApp/1.0"`` for ``"My Bot ValidApp/1.0"``.
    """
    if not raw:
        return default
    trimmed = raw.strip(_JS_SPACE)
    if not trimmed:
        return default
    accepted: list[str] = []
    pending: str | None = None
    for token in _glue_comments(_JS_SPACE_RE.split(trimmed)):
        if token.startswith("(") and token.endswith(")"):
            inner = token[1:-1]
            if pending is not None and _COMMENT_RE.fullmatch(inner):
                accepted.append(f"{pending} ({inner})")
            elif pending is not None:
                accepted.append(pending)
            pending = None
            continue
        if pending is not None:
            accepted.append(pending)
            pending = None
        if _PRODUCT_RE.fullmatch(token):
            pending = token
    if pending is not None:
        accepted.append(pending)
    kept: list[str] = []
    size = 0
    for piece in accepted:  # all ASCII: one byte per character
        add = len(piece) + (1 if kept else 0)
        if size + add > BOT_AGENT_MAX_BYTES:
            break
        kept.append(piece)
        size += add
    return " ".join(kept) if kept else default


def join_url(base: str, endpoint: str, params: Mapping[str, str] | None = None) -> str:
    """Join an API base URL, a relative endpoint path and query parameters (§1.2).

    The endpoint always goes into the path, after the base's path prefix, even when
    the base carries a query string of its own (a proxy's ``https://proxy/p?x=1``): the
    base's query is kept and the parameters follow it. A fragment is dropped.

    Args:
        base: The base URL, with or without a trailing ``/``; a path prefix is kept.
        endpoint: The endpoint path, e.g. ``"ilink/bot/getupdates"``; leading ``/`` are
            ignored so the base's path prefix is never replaced.
        params: Query parameters, percent-encoded like ``encodeURIComponent``.

    Returns:
        E.g. ``"https://host/p/ilink/bot/getupdates"`` for ``"https://host/p"``, and
        ``"https://proxy/p/ilink/bot/get_bot_qrcode?x=1&bot_type=3"`` for
        ``"https://proxy/p?x=1"`` with ``{"bot_type": "3"}``.
    """
    parts = urllib.parse.urlsplit(base)
    path, _, endpoint_query = endpoint.lstrip("/").partition("?")
    prefix = parts.path if parts.path.endswith("/") else parts.path + "/"
    queries = [parts.query, endpoint_query]
    if params:
        queries.append("&".join(f"{k}={quote_component(v)}" for k, v in params.items()))
    query = "&".join(q for q in queries if q)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, prefix + path, query, ""))


def quote_component(value: str) -> str:
    """Percent-encode a query value like JavaScript's ``encodeURIComponent``.

    Args:
        value: The text to encode (as UTF-8).

    Returns:
        ``value`` with everything but ``A-Z a-z 0-9 - _ . ! ~ * ' ( )`` encoded.

    Raises:
        UnicodeEncodeError: ``value`` contains a lone surrogate (``encodeURIComponent``
            throws too).
    """
    return urllib.parse.quote(value, safe="-_.!~*'()")


def _check_header_value(name: str, value: str) -> str:
    if _HEADER_UNSAFE_RE.search(value):
        raise ValueError(f"{name} header value contains control characters")
    return value


def common_headers(*, app_id: str, client_version: str, route_tag: str | None) -> dict[str, str]:
    """Headers sent on every API request, GET and POST (§1.4).

    Args:
        app_id: ``iLink-App-Id`` (``"bot"``).
        client_version: The client's own version string (e.g. ``"2.4.6"``); the header
            carries its encoded number (`client_version_header`).
        route_tag: ``SKRouteTag``; surrounding whitespace is trimmed (as the
            reference's ``String(value).trim()`` would; HTTP forbids it in a value),
            and the header is omitted when nothing is left.

    Returns:
        A new dict of header name to value.

    Raises:
        ValueError: A value contains control characters (CR, LF, ...).
    """
    headers = {
        "iLink-App-Id": _check_header_value("iLink-App-Id", app_id),
        "iLink-App-ClientVersion": client_version_header(client_version),
    }
    tag = route_tag.strip(_JS_SPACE) if route_tag else ""
    if tag:
        headers["SKRouteTag"] = _check_header_value("SKRouteTag", tag)
    return headers


def get_headers(common: Mapping[str, str]) -> dict[str, str]:
    """Headers of a GET request: the common headers only (§1.4).

    Args:
        common: The result of `common_headers`.

    Returns:
        A copy of ``common``.
    """
    return dict(common)


def post_headers(
    *, token: str | None, common: Mapping[str, str], uin: str | None = None
) -> dict[str, str]:
    """Headers of a POST request (§1.4), in the reference's order.

    Args:
        token: The bot token; ``Authorization: Bearer <token>`` is sent only when the
            token is non-empty after stripping whitespace (never for the QR fetch).
        common: The result of `common_headers`.
        uin: The ``X-WECHAT-UIN`` value; ``None`` draws a fresh one (the normal case).

    Returns:
        ``Content-Type``, ``AuthorizationType``, ``X-WECHAT-UIN``, the common headers
        and, with a token, ``Authorization``.

    Raises:
        ValueError: The token contains control characters (CR, LF, ...).
    """
    headers = {
        "Content-Type": "application/json",
        "AuthorizationType": "ilink_bot_token",
        "X-WECHAT-UIN": x_wechat_uin() if uin is None else uin,
        **common,
    }
    stripped = token.strip(_JS_SPACE) if token else ""
    if stripped:
        headers["Authorization"] = "Bearer " + _check_header_value("Authorization", stripped)
    return headers
