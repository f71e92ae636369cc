"""The production connector: TCP (``TCP_NODELAY``, trio's default) and TLS for https."""

from __future__ import annotations

import trio

from .tls import ssl_context

__all__ = ["open_stream", "start_tls"]


async def open_stream(origin: tuple[str, str, int]) -> trio.abc.Stream:
    """Open a byte stream to ``origin``; for https, with the TLS handshake done.

    Args:
        origin: ``(scheme, host, port)``.

    Returns:
        A `trio.SocketStream`, or a `trio.SSLStream` over one.

    Raises:
        OSError: DNS or connect failed.
        trio.BrokenResourceError: The TLS handshake failed (wrapping ``ssl.SSLError``).

    Cancellation:
        Safe; a half-open stream is closed.
    """
    scheme, host, port = origin
    stream = await trio.open_tcp_stream(host, port)  # sets TCP_NODELAY
    if scheme != "https":
        return stream
    return await start_tls(stream, host)


async def start_tls(stream: trio.abc.Stream, host: str) -> trio.SSLStream[trio.abc.Stream]:
    """Wrap ``stream`` in TLS for ``host`` (SNI and certificate check) and shake hands.

    Raises:
        trio.BrokenResourceError: The handshake failed (wrapping ``ssl.SSLError``).

    Cancellation:
        Safe; ``stream`` is closed unless the handshake finished.
    """
    tls = trio.SSLStream(stream, ssl_context(), server_hostname=host, https_compatible=True)
    done = False
    try:
        await tls.do_handshake()
        done = True
    finally:
        if not done:
            await trio.aclose_forcefully(stream)
    return tls
