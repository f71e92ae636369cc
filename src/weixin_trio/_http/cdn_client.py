"""The ``httpx.AsyncClient`` for CDN transfers, created on first use (httpx imported then)."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import trio

from .tls import ssl_context

if TYPE_CHECKING:
    import httpx

__all__ = ["LazyCdnClient"]


@final
class LazyCdnClient:
    """The CDN's httpx client, created on first use: a parked account never owns one.

    Given a ``client``, that one is used and never closed; otherwise one is built (with
    ``transport`` when given; 30 s safety-net timeouts, 15 s to connect) and closed by
    `aclose`.
    """

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._given = client
        self._transport = transport
        self._own: httpx.AsyncClient | None = None

    @property
    def created(self) -> bool:
        """Whether this object created a client (that `aclose` will close)."""
        return self._own is not None

    def get(self) -> httpx.AsyncClient:
        """The client, created now if needed."""
        if self._given is not None:
            return self._given
        if self._own is None:
            import httpx

            # Safety nets only; deadlines are trio cancel scopes.
            self._own = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(30.0, connect=15.0),
                limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
                verify=ssl_context(),
            )
        return self._own

    async def aclose(self) -> None:
        """Close the client if this object created it.

        Cancellation:
            The close is shielded (it only closes connections).
        """
        own, self._own = self._own, None
        if own is not None:
            with trio.CancelScope(shield=True):
                await own.aclose()
        else:
            await trio.lowlevel.checkpoint()
