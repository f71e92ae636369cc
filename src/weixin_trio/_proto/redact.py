"""Redaction of secrets in log lines and exception messages (PROTOCOL §8).

The four helpers reproduce the reference client's ``truncate``, ``redactToken``,
``redactBody`` and ``redactUrl`` (TS-ref 2.4.3, ``src/util/redact.ts``); the recorded
vectors in ``tests/data/redact.json`` pin their output. Lengths and cut points are
counted in UTF-16 code units, as JavaScript's ``String.length`` and ``slice`` do, so
``len=N`` matches the reference for emoji and other non-BMP characters too.

`Secret` wraps a secret string (bot token, context token) so that ``repr()``,
``str()`` and f-strings never show it.

Deliberate differences from the reference:

- ``redact_body`` masks more keys. The reference masks only ``context_token``,
  ``bot_token``, ``token``, ``authorization`` and ``Authorization``; we also mask
  ``typing_ticket``, ``aes_key``, ``aeskey``, ``encrypt_query_param``, ``full_url``,
  ``upload_param``, ``thumb_upload_param``, ``upload_full_url``, ``qrcode``,
  ``qrcode_img_content``, ``qrcode_url``, ``get_updates_buf``, ``sync_buf``,
  ``local_token_list``, ``verify_code`` and ``x-encrypted-param`` (vector
  ``redact-redactBody-25`` shows the reference leaving ``typing_ticket``/``aes_key``/
  ``aeskey`` in clear).
- ``redact_body`` reads JSON strings properly: an escaped quote inside a secret does
  not end it (the reference's ``"[^"]*"`` leaks the rest of such a value), a string cut
  off by truncation is masked up to the end, and every string inside an array or object
  held by a sensitive key is masked (``local_token_list`` is a list of tokens). Numbers,
  booleans and ``null`` stay as they are, like the reference (``{"token":123}``). The
  reference's own regular expression still runs afterwards, so text that is not JSON at
  all (or has stray quotes) is masked at least as well as by the reference. Everything
  else in the body is kept byte for byte.
- ``redact_url`` also hides the query of relative or otherwise unparsable URLs: the
  reference falls back to ``truncate(url, 80)`` and logs ``/relative/path?q=1`` in
  clear (vector ``redact-redactUrl-41``); we give ``/relative/path?<redacted>``. URLs
  with a scheme other than http(s)/ws(s)/ftp get the same treatment instead of the
  reference's ``"null"`` origin.
- Truncation never splits a surrogate pair: where the reference would cut an emoji in
  half (leaving a lone surrogate, which cannot be encoded to UTF-8) the cut moves one
  code unit earlier. The ``len=N`` figure is unchanged.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
from typing import final

import attrs

__all__ = [
    "REDACTED",
    "SENSITIVE_KEYS",
    "Secret",
    "redact_body",
    "redact_token",
    "redact_url",
    "truncate",
]

REDACTED = "<redacted>"

_REFERENCE_KEYS = frozenset(
    {"context_token", "bot_token", "token", "authorization", "Authorization"}
)
_EXTRA_KEYS = frozenset(
    {
        "typing_ticket",
        "aes_key",
        "aeskey",
        "encrypt_query_param",
        "full_url",
        "upload_param",
        "thumb_upload_param",
        "upload_full_url",
        "qrcode",
        "qrcode_img_content",
        "qrcode_url",
        "get_updates_buf",
        "sync_buf",
        "local_token_list",
        "verify_code",
        "x-encrypted-param",
    }
)
SENSITIVE_KEYS = _REFERENCE_KEYS | _EXTRA_KEYS
"""JSON keys whose values `redact_body` masks."""

# --- UTF-16 lengths (JavaScript String semantics) ---------------------------------

_ASTRAL_RE = re.compile("[\U00010000-\U0010ffff]")


def _js_len(s: str) -> int:
    """``s.length`` in JavaScript: UTF-16 code units."""
    return len(s) + len(_ASTRAL_RE.findall(s))


def _js_head(s: str, units: int) -> str:
    """``s.slice(0, units)`` in JavaScript, but never ending inside a surrogate pair."""
    if units < 0:
        units = max(0, _js_len(s) + units)
    head = s[:units]
    if not _ASTRAL_RE.search(head):
        return head
    used = count = 0
    for ch in s:
        width = 2 if ord(ch) > 0xFFFF else 1
        if used + width > units:
            break
        used += width
        count += 1
    return s[:count]


def truncate(s: str | None, max_len: int) -> str:
    """Cut ``s`` to ``max_len`` characters, noting the full length when it was cut.

    Args:
        s: The text; ``None`` or empty gives ``""``.
        max_len: Maximum length kept, in UTF-16 code units (a negative value counts from
            the end, as in JavaScript's ``slice``).

    Returns:
        ``s`` unchanged when short enough, else e.g. ``"abcde…(len=6)"``.
    """
    if not s:
        return ""
    length = _js_len(s)
    if length <= max_len:
        return s
    return f"{_js_head(s, max_len)}…(len={length})"


def redact_token(token: str | None, prefix_len: int = 6) -> str:
    """Show only the start of a token and its length.

    Args:
        token: The secret; ``None`` or empty gives ``"(none)"``.
        prefix_len: How many leading characters (UTF-16 code units) to keep.

    Returns:
        ``"****(len=N)"`` when the token is no longer than ``prefix_len``, else e.g.
        ``"tok…(len=16)"``.
    """
    if not token:
        return "(none)"
    length = _js_len(token)
    if length <= prefix_len:
        return f"****(len={length})"
    return f"{_js_head(token, prefix_len)}…(len={length})"


# --- JSON bodies -------------------------------------------------------------------

_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)'  # a JSON string, or one cut off at the end
_STRING_RE = re.compile(_STRING, re.DOTALL)
_TOKEN_RE = re.compile(_STRING + r"|[\[\]{},]", re.DOTALL)
_COLON_RE = re.compile(r"\s*:\s*")
_KEY_ALT = "|".join(re.escape(k) for k in sorted(SENSITIVE_KEYS))
# The reference's regular expression (with our key list), and its twin for arrays.
_FALLBACK_STRING_RE = re.compile(rf'"({_KEY_ALT})"\s*:\s*"[^"]*"')
_FALLBACK_ARRAY_RE = re.compile(rf'"({_KEY_ALT})"\s*:\s*\[[^\]]*\]?')
_QUOTED_RE = re.compile(r'"[^"]*"?')
_MASKED = f'"{REDACTED}"'


def _key_name(token: str) -> str:
    try:
        name = json.loads(token)
    except ValueError:
        return token[1:-1]
    return name if isinstance(name, str) else token[1:-1]


def _mask_json_text(text: str) -> str:
    """Mask sensitive values in JSON-like text, keeping everything else byte for byte."""
    out: list[str] = []
    stack: list[bool] = []  # per open container: is it (inside) a sensitive value?
    pending = False  # the next container is the value of a sensitive key
    pos = 0
    while (m := _TOKEN_RE.search(text, pos)) is not None:
        between = text[pos : m.start()]
        out.append(between)
        if between.strip():
            pending = False
        token = m.group()
        inside = stack[-1] if stack else False
        pos = m.end()
        if token[0] == '"':
            colon = _COLON_RE.match(text, pos) if token.endswith('"') and len(token) > 1 else None
            if colon is None:  # a value
                out.append(_MASKED if inside or pending else token)
                pending = False
                continue
            sensitive = inside or _key_name(token) in SENSITIVE_KEYS
            value = _STRING_RE.match(text, colon.end()) if sensitive else None
            if value is not None:
                out.append(f"{token}:{_MASKED}")
                pos = value.end()
                pending = False
            else:
                out.append(token + colon.group())
                pos = colon.end()
                pending = sensitive
        elif token in "{[":
            stack.append(inside or pending)
            pending = False
            out.append(token)
        else:
            if token in "}]" and stack:
                stack.pop()
            pending = False
            out.append(token)
    out.append(text[pos:])
    return "".join(out)


def _mask_array(m: re.Match[str]) -> str:
    head, _, rest = m.group().partition("[")
    return f"{head}[{_QUOTED_RE.sub(_MASKED, rest)}"


def redact_body(body: str | None, max_len: int = 200) -> str:
    """Mask secrets in a (JSON) request or response body and cut it for logging.

    Values of the keys in `SENSITIVE_KEYS`, at any depth, become
    ``"<redacted>"``; then the text is cut to ``max_len`` characters. Bodies that are not
    JSON, or JSON cut short, are masked as far as they can be read.

    Args:
        body: The body text; ``None`` or empty gives ``"(empty)"``.
        max_len: Maximum length kept, in UTF-16 code units.

    Returns:
        The redacted text, e.g. ``'{"context_token":"<redacted>","x":1}'``, with
        ``"…(truncated, totalLen=N)"`` appended when it was cut.
    """
    if not body:
        return "(empty)"
    redacted = _mask_json_text(body)
    redacted = _FALLBACK_STRING_RE.sub(rf'"\1":{_MASKED}', redacted)
    redacted = _FALLBACK_ARRAY_RE.sub(_mask_array, redacted)
    length = _js_len(redacted)
    if length <= max_len:
        return redacted
    return f"{_js_head(redacted, max_len)}…(truncated, totalLen={length})"


# --- URLs --------------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_C0_OR_SPACE = "".join(chr(c) for c in range(0x21))
_FORBIDDEN_HOST = frozenset(" #%/:<>?@[\\]^|\x7f") | frozenset(_C0_OR_SPACE)
_PATH_KEEP = frozenset(chr(c) for c in range(0x21, 0x7F)) - frozenset('"<>`{}')
_DOT_SEGMENTS = {".": 1, "%2e": 1, "..": 2, ".%2e": 2, "%2e.": 2, "%2e%2e": 2}


def _host(raw: str) -> str | None:
    """The WHATWG-serialised host, or ``None`` when the URL parser would reject it."""
    if raw.startswith("["):
        if not raw.endswith("]"):
            return None
        try:
            return f"[{ipaddress.IPv6Address(raw[1:-1]).compressed}]"
        except ValueError:
            return None
    if not raw or any(ch in _FORBIDDEN_HOST for ch in raw):
        return None
    if raw.isascii():
        return raw.lower()
    try:
        return raw.encode("idna").decode("ascii").lower() or None
    except UnicodeError:
        return None


def _encode_path_char(ch: str) -> str:
    if ch in _PATH_KEEP:
        return ch
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))


def _path(raw: str) -> str:
    """The WHATWG-serialised path of a special URL (dot segments resolved, encoded)."""
    segments: list[str] = []
    parts = raw.replace("\\", "/").split("/")[1:] if raw else [""]
    for i, seg in enumerate(parts):
        kind = _DOT_SEGMENTS.get(seg.lower(), 0)
        if kind == 2 and segments:
            segments.pop()
        if kind:
            if i == len(parts) - 1:
                segments.append("")
            continue
        segments.append("".join(map(_encode_path_char, seg)))
    return "/" + "/".join(segments)


def _parse_special(scheme: str, rest: str) -> str | None:
    """``origin + pathname`` of an http(s)/ws(s)/ftp URL, or ``None`` if unparsable."""
    rest = rest.lstrip("/\\")
    end = len(rest)
    for sep in "/\\?#":
        idx = rest.find(sep)
        if idx != -1:
            end = min(end, idx)
    authority, path = rest[:end], rest[end:]
    authority = authority.rpartition("@")[2]
    host_raw, port_raw = authority, ""
    if authority.startswith("["):
        close = authority.find("]")
        host_raw, port_part = authority[: close + 1], authority[close + 1 :]
        if port_part and not port_part.startswith(":"):
            return None
        port_raw = port_part[1:]
    elif ":" in authority:
        host_raw, _, port_raw = authority.partition(":")
    host = _host(host_raw)
    if host is None or (port_raw and not port_raw.isdigit()):
        return None
    origin = f"{scheme}://{host}"
    if port_raw:
        port = int(port_raw)
        if port > 0xFFFF:
            return None
        if port != _DEFAULT_PORTS[scheme]:
            origin += f":{port}"
    for sep in "?#":
        path = path.partition(sep)[0]
    return origin + _path(path)


def _strip_query(url: str) -> str:
    """The reference's ``truncate(url, 80)``, but with anything after ``?`` hidden."""
    base, sep, query = url.partition("?")
    return f"{truncate(base, 80)}?{REDACTED}" if sep and query else truncate(url, 80)


def redact_url(url: str) -> str:
    """Keep only the origin and path of a URL: query strings carry CDN capabilities.

    Args:
        url: Any text meant as a URL.

    Returns:
        ``origin + path``, plus ``?<redacted>`` when there was a query; the fragment is
        dropped. Text that is not an absolute http(s)/ws(s)/ftp URL is cut at the
        first ``?`` or ``#`` (the query becoming ``?<redacted>``) and truncated to 80
        characters.
    """
    text = url.strip(_C0_OR_SPACE).replace("\t", "").replace("\n", "").replace("\r", "")
    m = _SCHEME_RE.match(text)
    scheme = m.group(1).lower() if m else ""
    if m is None or scheme not in _DEFAULT_PORTS:
        return _strip_query(url)
    rest = text[m.end() :]
    base = _parse_special(scheme, rest)
    if base is None:
        return _strip_query(url)
    query = rest.partition("#")[0].partition("?")[2]
    return f"{base}?{REDACTED}" if query else base


# --- Secret ------------------------------------------------------------------------


@final
@attrs.frozen(repr=False, eq=False)
class Secret:
    """A secret string that does not show itself in ``repr()``, ``str()`` or logs.

    ``repr(Secret("token-1234567890"))`` is ``Secret('tok…(len=16)')``: the first three
    characters (enough to tell two tokens apart in a log) and the length; a secret of
    three characters or fewer shows as ``****(len=N)``. Read the value with
    `get`. Two secrets are equal when their values are (compared in constant
    time); a secret never equals a plain string.

    Args:
        value: The secret text.

    Raises:
        TypeError: ``value`` is not a ``str``.
    """

    _value: str = attrs.field(validator=attrs.validators.instance_of(str), alias="value")

    def get(self) -> str:
        """Return the secret value itself."""
        return self._value

    def __str__(self) -> str:
        return redact_token(self._value, 3)

    def __repr__(self) -> str:
        return f"Secret({redact_token(self._value, 3)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(
            self._value.encode("utf-8", "surrogatepass"),
            other._value.encode("utf-8", "surrogatepass"),
        )

    def __hash__(self) -> int:
        return hash((Secret, self._value))
