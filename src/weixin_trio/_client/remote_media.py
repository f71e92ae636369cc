"""Fetching an ``http(s)`` URL given as media, safely (issue 17).

``send_image(user, "https://...")`` downloads the URL into a temporary file, which then
goes through the normal encrypted upload. The download:

- resolves the host, checks every address against the
  [`RemoteMediaPolicy`][weixin_trio.RemoteMediaPolicy] (by default public unicast
  addresses only) and connects to a checked address itself, sending ``Host`` and TLS
  SNI for the name: there is no second DNS lookup a rebinding server could answer
  differently;
- follows redirects by hand (at most ``max_redirects``), checking each hop again;
- streams the body with a size cap (an announced ``Content-Length`` over the cap is
  refused before the body; a chunked body is cut off at the cap);
- sniffs the type from the first bytes (the ``Content-Type`` and the URL's extension
  are hints only) and refuses an image send whose bytes are not an image (a video
  send whose bytes are not a video);
- removes the temporary file when the send finishes, fails or is cancelled.

URLs are logged and put in errors without their query string or user info.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import posixpath
import sys
import tempfile
import urllib.parse
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeAlias, final

import attrs
import h11
import trio

from .._errors import RemoteMediaError
from .._http.connect_tcp import start_tls
from .._proto.address_policy import RemoteMediaPolicy
from .._proto.media_kind import MediaKind
from .._proto.media_sniff import SNIFF_BYTES, sniff_mime
from .._util import run_blocking

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import httpx

    from .cdn_transfer import MediaSource

__all__ = [
    "DEFAULT_REMOTE_POLICY",
    "MediaInput",
    "RemoteFile",
    "fetch_remote",
    "is_remote",
    "redact_url",
]

log = logging.getLogger("weixin_trio.remote_media")

DEFAULT_REMOTE_POLICY: Final = RemoteMediaPolicy()
_READ: Final = 65536
_MAX_HEAD: Final = 64 * 1024
_PORTS: Final = {"http": 80, "https": 443}
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_SAFE: Final = "/?#[]@!$&'()*+,;=:%~-._"

#: What a media send takes: a path, bytes, an async iterable of chunks, or an
#: ``http(s)`` URL (a ``str`` or an ``httpx.URL``).
MediaInput: TypeAlias = "MediaSource | httpx.URL"


def is_remote(source: object) -> bool:
    """Whether a media source is an ``http(s)`` URL (a ``str`` or an ``httpx.URL``)."""
    if isinstance(source, str):
        return source[:8].lower().startswith(("http://", "https://"))
    httpx = sys.modules.get("httpx")  # an httpx.URL implies httpx is imported
    return httpx is not None and isinstance(source, httpx.URL)


def redact_url(url: str) -> str:
    """``scheme://host[:port]/path``: no user info, query or fragment (they may be secret)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable URL>"
    shown = f"[{host}]" if ":" in host else host
    if port is not None:
        shown = f"{shown}:{port}"
    path = parts.path if len(parts.path) <= 200 else parts.path[:200] + "..."
    query = "?..." if parts.query else ""
    return f"{parts.scheme}://{shown}{path}{query}"


@attrs.frozen
class RemoteFile:
    """A fetched URL, in a temporary file that lives as long as the `fetch_remote` block.

    Attributes:
        path: The temporary file.
        size: Its size in bytes.
        mime: The type sniffed from the bytes, else the server's, else the URL's.
        kind: The media kind the type routes to (image, video or file).
        file_name: A name for the file (from the URL's path, with a fitting extension).
    """

    path: Path
    size: int
    mime: str
    kind: MediaKind
    file_name: str


async def open_remote_stream(scheme: str, host: str, ip: str, port: int) -> trio.abc.Stream:
    """TCP to the checked address ``ip``; for https, TLS with ``host`` as SNI.

    Cancellation:
        Safe; a half-open stream is closed.
    """
    family = trio.socket.AF_INET6 if ":" in ip else trio.socket.AF_INET
    sock = trio.socket.socket(family, trio.socket.SOCK_STREAM)
    try:
        await sock.connect((ip, port))
    except BaseException:
        sock.close()
        raise
    stream = trio.SocketStream(sock)
    if scheme == "https":
        return await start_tls(stream, host)
    return stream


def _fail(reason: str, message: str, url: str, status: int | None = None) -> RemoteMediaError:
    return RemoteMediaError(reason, message, url=redact_url(url), status_code=status)


def _split(url: str) -> tuple[str, str, int, str]:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:  # its message may quote the URL: not chained
        raise _fail("bad_url", "not a valid URL", url) from None
    scheme = parts.scheme.lower()
    if scheme not in _PORTS or not parts.hostname:
        raise _fail("bad_url", "only http:// and https:// URLs with a host", url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname
    try:
        if not host.isascii():
            host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise _fail("bad_url", "the host name is not valid", url) from None
    if any(c in host for c in " /\\\r\n\t@"):
        raise _fail("bad_url", "the host name is not valid", url)
    # Non-ASCII and spaces are percent-encoded; what is encoded already stays so.
    return scheme, host, port or _PORTS[scheme], urllib.parse.quote(target, safe=_SAFE)


async def _addresses(url: str, host: str, port: int, policy: RemoteMediaPolicy) -> list[str]:
    """The resolved addresses of ``host`` the policy allows (refusal if there are none)."""
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
    except OSError as exc:
        raise _fail("connection", f"the host cannot be resolved ({exc.errno})", url) from None
    allowed: list[str] = []
    refusals: list[str] = []
    for *_, sockaddr in infos:
        text = str(sockaddr[0]).split("%", 1)[0]
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            continue
        refusal = policy.refusal(host, ip)
        if refusal is None:
            if text not in allowed:
                allowed.append(text)
        else:
            refusals.append(refusal)
    if not allowed:
        why = refusals[0] if refusals else "no usable address"
        raise _fail("forbidden_address", f"the host resolves to a {why}", url)
    return allowed


async def _connect(url: str, scheme: str, host: str, ips: list[str], port: int) -> trio.abc.Stream:
    last: Exception | None = None
    for ip in ips:
        try:
            return await open_remote_stream(scheme, host, ip, port)
        except (OSError, trio.BrokenResourceError) as exc:
            last = exc
    raise _fail("connection", f"cannot connect ({type(last).__name__})", url) from None


@final
class _Response:
    """One response being read from a stream by h11."""

    def __init__(self, stream: trio.abc.Stream, conn: h11.Connection) -> None:
        self.stream = stream
        self.conn = conn

    async def next_event(self) -> Any:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.stream.receive_some(_READ)
            self.conn.receive_data(bytes(data))


async def _request(stream: trio.abc.Stream, host_header: str, target: str) -> _Response:
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD)
    request = h11.Request(
        method="GET",
        target=target.encode("ascii", "strict"),
        headers=[
            ("Host", host_header),
            ("User-Agent", "weixin-trio"),
            ("Accept", "*/*"),
            ("Accept-Encoding", "identity"),
            ("Connection", "close"),
        ],
    )
    await stream.send_all(conn.send(request) + (conn.send(h11.EndOfMessage()) or b""))
    return _Response(stream, conn)


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _name_from_url(url: str) -> str:
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    return posixpath.basename(path)


@asynccontextmanager
async def fetch_remote(
    url: str, *, kind: MediaKind | None, policy: RemoteMediaPolicy = DEFAULT_REMOTE_POLICY
) -> AsyncIterator[RemoteFile]:
    """Download ``url`` under ``policy`` into a temporary file, removed on exit.

    Args:
        url: An ``http://`` or ``https://`` URL.
        kind: The kind the send needs (IMAGE and VIDEO are checked against the bytes),
            or ``None`` to route by the sniffed type.
        policy: Size cap, redirects, timeout and which addresses may be reached.

    Yields:
        The [`RemoteFile`][weixin_trio._client.remote_media.RemoteFile].

    Raises:
        RemoteMediaError: See its ``reason``.

    Cancellation:
        Safe at any point: the connection is closed and the temporary file removed.
    """
    fd, name = tempfile.mkstemp(prefix="weixin-trio-remote-")
    os.close(fd)
    path = Path(name)
    try:
        with trio.move_on_after(policy.timeout) as scope:
            remote = await _download(url, kind, policy, path)
        if scope.cancelled_caught:
            raise _fail("timeout", f"no complete answer within {policy.timeout:g} s", url)
        yield remote
    finally:
        _remove(path)


def _remove(path: Path) -> None:
    """Remove the temporary file (a quick local call, also while cancelled)."""
    path.unlink(missing_ok=True)


async def _download(
    url: str, kind: MediaKind | None, policy: RemoteMediaPolicy, path: Path
) -> RemoteFile:
    current = url
    for _hop in range(policy.max_redirects + 1):
        scheme, host, port, target = _split(current)
        if scheme == "http" and not policy.allow_http:
            raise _fail("bad_url", "plain http:// URLs are not allowed", current)
        ips = await _addresses(current, host, port, policy)
        stream = await _connect(current, scheme, host, ips, port)
        try:
            shown = f"[{host}]" if ":" in host else host
            host_header = shown if port == _PORTS[scheme] else f"{shown}:{port}"
            try:
                response = await _request(stream, host_header, target)
                event = await response.next_event()
                while isinstance(event, h11.InformationalResponse):
                    event = await response.next_event()
                if not isinstance(event, h11.Response):
                    raise _fail("connection", "the connection closed before an answer", current)
                headers = list(event.headers)
                if event.status_code in _REDIRECTS:
                    location = _header(headers, b"location")
                    if not location:
                        raise _fail("http_status", "a redirect without Location", current)
                    current = urllib.parse.urljoin(current, location)
                    log.debug("redirected to %s", redact_url(current))
                    continue
                if not 200 <= event.status_code < 300:
                    raise _fail(
                        "http_status", f"HTTP {event.status_code}", current, event.status_code
                    )
                return await _save(response, headers, current, kind, policy, path)
            except (h11.ProtocolError, trio.BrokenResourceError, OSError) as exc:
                raise _fail(
                    "connection", f"broken answer ({type(exc).__name__})", current
                ) from None
        finally:
            await trio.aclose_forcefully(stream)
    raise _fail("too_many_redirects", f"more than {policy.max_redirects} redirects", url)


async def _save(
    response: _Response,
    headers: list[tuple[bytes, bytes]],
    url: str,
    kind: MediaKind | None,
    policy: RemoteMediaPolicy,
    path: Path,
) -> RemoteFile:
    cap = policy.max_bytes
    length = _header(headers, b"content-length")
    if length is not None and length.strip().isdigit() and int(length) > cap:
        raise _fail("too_large", f"Content-Length {int(length)} is over {cap} bytes", url)
    size = 0
    head = b""
    f = await run_blocking(open, path, "wb")
    try:
        while True:
            event = await response.next_event()
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > cap:
                    raise _fail("too_large", f"the body is over {cap} bytes", url)
                if len(head) < SNIFF_BYTES:
                    head += bytes(event.data[: SNIFF_BYTES - len(head)])
                await run_blocking(f.write, event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise _fail("connection", "the body was cut short", url)
    finally:
        f.close()
    mime = _content_type(head, headers, url, kind)
    from ..media import media_kind_for_mime, safe_filename  # loaded by media sends anyway

    return RemoteFile(
        path=path,
        size=size,
        mime=mime,
        kind=kind or media_kind_for_mime(mime),
        file_name=safe_filename(_name_from_url(url) or None, mime=mime),
    )


def _content_type(
    head: bytes, headers: list[tuple[bytes, bytes]], url: str, kind: MediaKind | None
) -> str:
    """The file's type: sniffed, else the server's, else the URL's; checked against ``kind``."""
    from ..media import mime_from_filename

    sniffed = sniff_mime(head)
    declared = (_header(headers, b"content-type") or "").split(";", 1)[0].strip().lower()
    by_name = mime_from_filename(_name_from_url(url))
    mime = sniffed or declared or by_name or "application/octet-stream"
    if kind is MediaKind.IMAGE or kind is MediaKind.VIDEO:
        wanted = "image/" if kind is MediaKind.IMAGE else "video/"
        if not (sniffed or "").startswith(wanted):
            what = sniffed or "unrecognised bytes"
            raise _fail("bad_content_type", f"a {kind.name.lower()} send got {what}", url)
    return mime
