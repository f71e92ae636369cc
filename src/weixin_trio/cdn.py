"""CDN URLs: building, choosing, and checking them (PROTOCOL §1.3, §6.3, §6.6).

This module is sans-IO. It builds the upload and download URLs of the WeChat CDN,
chooses between a server-supplied full URL and a built one, and checks a URL's host
against an allow-list before anything is fetched from it.

The query strings of CDN URLs (``encrypted_query_param``, ``filekey``) are secret
capabilities: anyone holding one can fetch or overwrite the object. No error raised
here contains a query string or a query parameter.

Deliberate differences from the reference (TS-ref 2.4.3):

* trailing slashes of ``cdn_base_url`` are removed before ``/download`` or ``/upload``
  is appended; the reference builds ``…/c2c//download`` from ``…/c2c/``;
* a ``cdn_base_url`` with a query string (a proxy's ``https://proxy/c2c?x=1``) keeps
  it as the query, and ``/download`` goes into the path; the reference's string
  concatenation puts it inside the query;
* a download ``full_url`` is trimmed of surrounding whitespace (the reference uses it
  verbatim; it trims only ``upload_full_url``), and a blank one counts as absent;
* choosing a download URL with neither ``full_url`` nor ``encrypt_query_param`` raises
  [`CdnError`][weixin_trio.CdnError] (the reference's callers skip such items);
* the host allow-list check (`check_cdn_host`) has no counterpart in the
  reference, which fetches any ``full_url`` it is given.

Streaming transfers (async upload/download of ciphertext in constant memory) are not
part of this module yet; they will build on these functions and on the incremental
ciphers of [`weixin_trio.crypto`][weixin_trio.crypto].
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final
from urllib.parse import quote, urlsplit, urlunsplit

from ._errors import CdnError

if TYPE_CHECKING:
    from collections.abc import Collection

__all__ = [
    "DEFAULT_CDN_HOSTS",
    "DEFAULT_MAX_DOWNLOAD",
    "check_cdn_host",
    "choose_download_url",
    "choose_upload_url",
    "download_url",
    "encode_uri_component",
    "upload_url",
]

DEFAULT_CDN_HOSTS: Final = frozenset({"novac2c.cdn.weixin.qq.com"})
"""Host of the default CDN base ``https://novac2c.cdn.weixin.qq.com/c2c``."""
DEFAULT_MAX_DOWNLOAD: Final = 100 * 1024 * 1024
"""Size cap of a media download (100 MiB) when the caller gives no ``max_bytes``."""

# Characters JavaScript's encodeURIComponent leaves alone besides ASCII letters and
# digits. quote() always keeps "_.-~"; the rest must be listed.
_URI_COMPONENT_SAFE: Final = "-_.!~*'()"

# What JavaScript's String.prototype.trim removes: WhiteSpace and LineTerminator.
_JS_TRIM: Final = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)

_NETLOC_CHARS = re.compile(r"[A-Za-z0-9.\-:\[\]]+")
_UNSAFE_URL_CHARS = re.compile(r"[\x00-\x20\x7f]")


def encode_uri_component(value: str) -> str:
    """Percent-encode a query value like JavaScript's ``encodeURIComponent``.

    Every character except ASCII letters, digits and ``-_.!~*'()`` is encoded as its
    UTF-8 bytes, so ``=``, ``&``, ``/``, ``+`` and spaces (``%20``) are all escaped.

    Args:
        value: The text to encode.

    Returns:
        The encoded text.

    Raises:
        CdnError: If the value contains a lone surrogate (not encodable as UTF-8).
    """
    try:
        return quote(value, safe=_URI_COMPONENT_SAFE)
    except UnicodeEncodeError:
        raise CdnError("CDN query parameter is not valid Unicode") from None


def _join(cdn_base_url: str, action: str, query: str) -> str:
    """``{base}/{action}?{query}``; a query of the base itself is kept, before ours."""
    parts = urlsplit(cdn_base_url)
    path = f"{parts.path.rstrip('/')}/{action}"
    query = f"{parts.query}&{query}" if parts.query else query
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def download_url(cdn_base_url: str, encrypted_query_param: str) -> str:
    """Build a CDN download URL (§1.3).

    Args:
        cdn_base_url: The CDN base, e.g. ``https://novac2c.cdn.weixin.qq.com/c2c``.
            Trailing slashes are ignored.
        encrypted_query_param: ``CDNMedia.encrypt_query_param``.

    Returns:
        ``{base}/download?encrypted_query_param={enc(param)}``; a query string of
        the base stays the query (the action goes into the path), before the
        parameter.

    Raises:
        CdnError: If the parameter contains a lone surrogate.
    """
    param = encode_uri_component(encrypted_query_param)
    return _join(cdn_base_url, "download", f"encrypted_query_param={param}")


def upload_url(cdn_base_url: str, upload_param: str, filekey: str) -> str:
    """Build a CDN upload URL (§1.3).

    Args:
        cdn_base_url: The CDN base. Trailing slashes are ignored.
        upload_param: getuploadurl ``upload_param``.
        filekey: The ``filekey`` sent to getuploadurl.

    Returns:
        ``{base}/upload?encrypted_query_param={enc(upload_param)}&filekey={enc(filekey)}``.

    Raises:
        CdnError: If a parameter contains a lone surrogate.
    """
    param = encode_uri_component(upload_param)
    key = encode_uri_component(filekey)
    return _join(cdn_base_url, "upload", f"encrypted_query_param={param}&filekey={key}")


def _trimmed(value: str | None) -> str:
    return value.strip(_JS_TRIM) if value else ""


def choose_download_url(
    cdn_base_url: str, *, encrypt_query_param: str | None, full_url: str | None
) -> str:
    """The URL to download a ``CDNMedia`` object from (§6.6).

    ``full_url`` wins when it is non-empty after trimming surrounding whitespace (the
    reference uses it untrimmed); otherwise the URL is built from
    ``encrypt_query_param``.

    Args:
        cdn_base_url: The CDN base.
        encrypt_query_param: ``CDNMedia.encrypt_query_param``, or ``None``.
        full_url: ``CDNMedia.full_url``, or ``None``.

    Returns:
        The download URL. Check it with `check_cdn_host` before fetching.

    Raises:
        CdnError: If neither value is given (empty strings count as absent).
    """
    full = _trimmed(full_url)
    if full:
        return full
    if encrypt_query_param:
        return download_url(cdn_base_url, encrypt_query_param)
    raise CdnError("no CDN download URL: media has neither full_url nor encrypt_query_param")


def choose_upload_url(
    cdn_base_url: str, *, upload_full_url: str | None, upload_param: str | None, filekey: str
) -> str:
    """The URL to upload ciphertext to (§6.3 step 4).

    ``upload_full_url`` wins when it is non-empty after trimming; otherwise the URL is
    built from ``upload_param`` and ``filekey``.

    Args:
        cdn_base_url: The CDN base.
        upload_full_url: getuploadurl ``upload_full_url``, or ``None``.
        upload_param: getuploadurl ``upload_param``, or ``None``.
        filekey: The ``filekey`` sent to getuploadurl.

    Returns:
        The upload URL. Check it with `check_cdn_host` before posting.

    Raises:
        CdnError: If neither ``upload_full_url`` nor ``upload_param`` is given (empty
            strings count as absent).
    """
    full = _trimmed(upload_full_url)
    if full:
        return full
    if upload_param:
        return upload_url(cdn_base_url, upload_param, filekey)
    raise CdnError("no CDN upload URL: need upload_full_url or upload_param")


def _normalise_host(host: str) -> str:
    return host.strip().lower().rstrip(".")


def _host_allowed(host: str, allowed_hosts: Collection[str]) -> bool:
    for entry in allowed_hosts:
        pattern = _normalise_host(entry)
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif pattern and host == pattern:
            return True
    return False


def check_cdn_host(url: str, allowed_hosts: Collection[str]) -> None:
    """Refuse a CDN URL whose scheme is not http(s) or whose host is not allowed.

    Server-supplied ``full_url``/``upload_full_url`` values are fetched without any
    other check, so an allow-list keeps a forged message from pointing the client at an
    internal service. Hosts compare case-insensitively, ignoring a trailing dot; an
    entry ``*.example.com`` allows every subdomain of ``example.com`` (not the domain
    itself). The port is not checked. URLs with user info, whitespace or control
    characters are refused.

    Args:
        url: The URL about to be fetched.
        allowed_hosts: Allowed host names, e.g. `DEFAULT_CDN_HOSTS`.

    Raises:
        CdnError: If the URL is refused. The message names the host at most, never the
            path or query.
        TypeError: If ``allowed_hosts`` is a single string rather than a collection.
    """
    if isinstance(allowed_hosts, str):
        raise TypeError("allowed_hosts must be a collection of host names, not a str")
    if _UNSAFE_URL_CHARS.search(url):
        raise CdnError("CDN URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError for a malformed port
    except ValueError:
        raise CdnError("CDN URL is malformed") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise CdnError("CDN URL must use http or https")
    if "@" in parts.netloc:
        raise CdnError("CDN URL must not contain user info")
    if not host or not _NETLOC_CHARS.fullmatch(parts.netloc):
        raise CdnError("CDN URL has no valid host")
    host = _normalise_host(host)
    if not _host_allowed(host, allowed_hosts):
        raise CdnError(f"CDN host {host!r} is not in the allowed hosts")
