"""Where a request goes: origin (scheme, host, port), request target and ``Host`` value."""

from __future__ import annotations

import urllib.parse
from typing import NamedTuple, final

__all__ = ["Origin", "Target"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin(NamedTuple):
    """The key of a connection pool: ``("https", "host", 443)``."""

    scheme: str
    host: str
    port: int


@final
class Target:
    """One parsed request URL.

    Attributes:
        url: The URL as given (for the httpx adapter; may carry secrets, never logged).
        origin: The connection pool key.
        path: The request target: path and query, as bytes.
        host_header: The ``Host`` header value (port only when not the default).
    """

    __slots__ = ("host_header", "origin", "path", "url")

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError("only http:// and https:// URLs with a host are supported")
        host = parts.hostname
        port = parts.port or _DEFAULT_PORTS[scheme]
        shown = f"[{host}]" if ":" in host else host
        self.url = url
        self.origin = Origin(scheme, host, port)
        self.host_header = (
            shown if parts.port in (None, _DEFAULT_PORTS[scheme]) else f"{shown}:{port}"
        ).encode("ascii")
        path = parts.path or "/"
        self.path = (path + ("?" + parts.query if parts.query else "")).encode("ascii")

    def __repr__(self) -> str:
        # The path can carry secrets (QR codes); show the origin only.
        return f"<Target {self.origin.scheme}://{self.origin.host}:{self.origin.port}>"
