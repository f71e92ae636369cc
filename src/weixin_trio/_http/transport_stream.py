"""An in-process byte stream answered by any ``httpx.AsyncBaseTransport``.

`Connection` writes HTTP/1.1 bytes to it; an h11 server connection parses them into an
``httpx.Request``; the transport's ``handle_async_request`` runs inside
``receive_some``, in the caller's task (so cancellation, ``autojump_clock`` and the fake
server's faults behave as with httpx: no extra task, no sockets); the response is
serialised with h11 and read back by the client. So ``FakeILinkServer.transport()`` and
``httpx.MockTransport`` work, and tests run the same h11 and pool code as production.

An httpx error from the transport (the fake's ``reset`` fault raises ``ReadError``)
becomes ``trio.BrokenResourceError`` from it, as a reset socket would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import h11
import httpx
import trio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .target import Origin

__all__ = ["TransportStream", "transport_connector"]

_DROP = frozenset({b"content-length", b"transfer-encoding"})
_DROP_DECODED = _DROP | {b"content-encoding"}


def transport_connector(
    transport: httpx.AsyncBaseTransport,
) -> Callable[[Origin], Awaitable[trio.abc.Stream]]:
    """A pool connector whose streams are answered by ``transport``."""

    async def connect(origin: Origin) -> trio.abc.Stream:
        await trio.lowlevel.checkpoint()
        return TransportStream(transport, origin)

    return connect


@final
class TransportStream(trio.abc.Stream):
    """One "connection" to ``origin`` served by ``transport`` (see the module docstring)."""

    def __init__(self, transport: httpx.AsyncBaseTransport, origin: Origin) -> None:
        scheme, host, port = origin
        shown = f"[{host}]" if ":" in host else host
        self._base = f"{scheme}://{shown}:{port}"
        self._transport = transport
        self._server = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        self._out = bytearray()
        self._eof = False
        self._closed = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Hand request bytes to the in-process server.

        Cancellation:
            A checkpoint first.
        """
        await trio.lowlevel.checkpoint()
        if self._closed:
            raise trio.ClosedResourceError
        if self._eof:
            raise trio.BrokenResourceError("the server closed the connection")
        self._server.receive_data(bytes(data))

    async def wait_send_all_might_not_block(self) -> None:
        """Never blocks.

        Cancellation:
            A checkpoint.
        """
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Response bytes; serves the next complete request first when none are pending.

        Cancellation:
            Cancels the transport's handler like a disconnecting client.
        """
        if self._closed:
            raise trio.ClosedResourceError
        if not self._out and not self._eof:
            await self._serve()
        else:
            await trio.lowlevel.checkpoint()
        if self._closed:
            raise trio.ClosedResourceError
        size = len(self._out) if max_bytes is None else max_bytes
        chunk = bytes(self._out[:size])
        del self._out[:size]
        return chunk

    async def aclose(self) -> None:
        """Close; later sends and receives raise `trio.ClosedResourceError`.

        Cancellation:
            Closes anyway.
        """
        self._closed = True
        await trio.lowlevel.checkpoint()

    async def _serve(self) -> None:
        server = self._server
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = server.next_event()
            if event is h11.NEED_DATA:
                await trio.sleep_forever()  # no complete request: a server would wait
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                self._eof = True
                return
        assert head is not None
        request = httpx.Request(
            head.method.decode("ascii"),
            self._base + head.target.decode("ascii"),
            headers=list(head.headers),
            content=bytes(body),
        )
        try:
            response = await self._transport.handle_async_request(request)
            drop = _DROP
            try:
                if response.is_stream_consumed:  # read already (MockTransport): decoded
                    raw = response.content
                    drop = _DROP_DECODED
                else:
                    raw = b"".join([chunk async for chunk in response.aiter_raw()])
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            self._eof = True
            raise trio.BrokenResourceError(type(exc).__name__) from exc
        headers = [(k, v) for k, v in response.headers.raw if k.lower() not in drop]
        headers.append((b"content-length", str(len(raw)).encode()))
        out = self._out
        out += server.send(h11.Response(status_code=response.status_code, headers=headers))
        out += server.send(h11.Data(data=raw))
        out += server.send(h11.EndOfMessage())
        if server.our_state is h11.DONE and server.their_state is h11.DONE:
            server.start_next_cycle()
        else:
            self._eof = True  # after these bytes: EOF
