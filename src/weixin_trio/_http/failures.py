"""Connection failures of every kind, turned into one `TransportError`.

Messages name the endpoint and the kind of failure only, never a URL (query strings
can carry secrets).
"""

from __future__ import annotations

import ssl

import h11
import trio

from .._errors import TransportError

__all__ = ["CONNECTION_ERRORS", "failure", "kind_of"]

#: What a broken connection raises: socket and TLS errors (``OSError``), trio's stream
#: errors (which wrap them), and h11's parse errors for bytes that are not HTTP.
CONNECTION_ERRORS = (
    OSError,
    ssl.SSLError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    h11.ProtocolError,
)


def kind_of(exc: BaseException) -> str:
    """A short name for a failure: the class of the root cause a trio error wraps.

    ``trio.BrokenResourceError`` from a reset socket names ``ConnectionResetError``;
    from the in-process transport stream, the httpx error (``ReadError``).
    """
    if isinstance(exc, trio.BrokenResourceError) and exc.__cause__ is not None:
        return type(exc.__cause__).__name__
    return type(exc).__name__


def failure(endpoint: str, kind: str) -> TransportError:
    """The `TransportError` for ``endpoint`` (``"ilink/bot/getupdates: ReadError"``)."""
    return TransportError(f"{endpoint}: {kind}", endpoint=endpoint)
