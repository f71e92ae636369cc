"""The interface the endpoint layer uses to send one request (no httpx here)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import trio

if TYPE_CHECKING:
    from .target import Target

__all__ = ["MAX_RESPONSE_BYTES", "Http", "SplitHttp"]

MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""Largest API response body accepted (a longer one is a TransportError)."""


class Http(Protocol):
    """Performs one HTTP request and returns ``(status, body)``."""

    async def request(
        self,
        method: bytes,
        target: Target,
        headers: bytes,
        body: bytes,
        *,
        endpoint: str,
        max_seconds: float,
        long_poll: bool = False,
    ) -> tuple[int, bytes]:
        """Send one request and read its whole response.

        Args:
            method: ``b"POST"`` or ``b"GET"``.
            target: Where the request goes.
            headers: Encoded header lines (``b"Name: value\\r\\n"`` each), without
                ``Host`` and ``Content-Length``, which are added here.
            body: The request body (``b""`` for none).
            endpoint: Names the request in errors (never the URL).
            max_seconds: Safety-net deadline for the whole request, in seconds.
            long_poll: A parked long poll: it holds its own connection and does not
                count against the limit of connections for normal requests.

        Returns:
            The status code and the complete (decoded) response body.

        Raises:
            TransportError: The request did not complete.

        Cancellation:
            Safe; the connection in use is closed and never reused.
        """
        ...

    async def aclose(self) -> None:
        """Release what this object owns."""
        ...


class SplitHttp:
    """Normal requests through one `Http`, long polls through another."""

    def __init__(self, normal: Http, poll: Http) -> None:
        self._normal = normal
        self._poll = poll

    async def request(
        self,
        method: bytes,
        target: Target,
        headers: bytes,
        body: bytes,
        *,
        endpoint: str,
        max_seconds: float,
        long_poll: bool = False,
    ) -> tuple[int, bytes]:
        """Forward to the poll object for long polls and the normal one otherwise.

        Cancellation:
            As the object it forwards to.
        """
        http = self._poll if long_poll else self._normal
        return await http.request(
            method,
            target,
            headers,
            body,
            endpoint=endpoint,
            max_seconds=max_seconds,
            long_poll=long_poll,
        )

    async def aclose(self) -> None:
        """Nothing to close: the two objects are closed by their owner.

        Cancellation:
            A checkpoint only.
        """
        await trio.lowlevel.checkpoint()
