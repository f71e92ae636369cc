"""The httpx path: a user-supplied ``httpx.AsyncClient`` behind the `Http` interface."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import httpx
import trio

from .failures import failure

if TYPE_CHECKING:
    from .target import Target

__all__ = ["HttpxAdapter"]


def _parse_headers(headers: bytes) -> list[tuple[bytes, bytes]]:
    pairs = []
    for line in headers.split(b"\r\n"):
        if line:
            name, _, value = line.partition(b":")
            pairs.append((name, value.strip()))
    return pairs


@final
class HttpxAdapter:
    """Sends requests with an ``httpx.AsyncClient``, honoured as given (never closed here).

    Args:
        client: The client for every request, and for long polls unless ``poll_client``.
        poll_client: A client for long polls.
    """

    def __init__(
        self, client: httpx.AsyncClient, poll_client: httpx.AsyncClient | None = None
    ) -> None:
        self._client = client
        self._poll_client = poll_client or client

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
        """Send one request with the client (see `Http.request`).

        A long poll gets a per-request timeout of ``max_seconds`` (read) and 15 s (connect,
        write, pool); other requests use the client's own timeouts.

        Cancellation:
            As httpx: the request is aborted.
        """
        client = self._poll_client if long_poll else self._client
        request = client.build_request(
            method.decode("ascii"),
            target.url,
            content=body if body or method == b"POST" else None,
            headers=_parse_headers(headers),
        )
        if long_poll:
            limit = httpx.Timeout(connect=15.0, read=max_seconds, write=15.0, pool=15.0)
            request.extensions["timeout"] = limit.as_dict()
        try:
            response = await client.send(request)
            raw = response.content
        except httpx.HTTPError as exc:
            # httpx messages can embed the URL; name only the failure class.
            raise failure(endpoint, type(exc).__name__) from exc
        return response.status_code, raw

    async def aclose(self) -> None:
        """Nothing to close: the clients belong to the caller.

        Cancellation:
            A checkpoint only.
        """
        await trio.lowlevel.checkpoint()
