"""How requests reach ``FakeILinkServer``: an in-process httpx transport, or loopback HTTP."""

from __future__ import annotations

import logging
import socket
import struct
from functools import partial
from typing import TYPE_CHECKING, Protocol

import h11
import httpx
import trio

from ._fake_model import FakeRequest, FakeResponse

if TYPE_CHECKING:
    from ._fake_qr import QrRegistry

__all__ = ["FakeServer", "FakeTransport", "serve_fake"]

log = logging.getLogger("weixin_trio.testing")
_MAX_BODY = 512 * 1024 * 1024


class FakeServer(Protocol):
    """What the transports need of a `FakeILinkServer` (it fits)."""

    base_url: str
    qr: QrRegistry

    async def handle(self, request: FakeRequest) -> FakeResponse:
        """Answer one request."""
        ...


class FakeTransport(httpx.AsyncBaseTransport):
    """An httpx transport that answers from a `FakeILinkServer` in-process.

    No sockets are involved, so it is safe under ``autojump_clock``. A ``reset`` fault
    raises ``httpx.ReadError``, as a dropped connection would.
    """

    def __init__(self, server: FakeServer) -> None:
        self._server = server

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        fake = FakeRequest(
            method=request.method,
            path=request.url.path,
            query=dict(request.url.params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        response = await self._server.handle(fake)
        if response.action == "reset":
            raise httpx.ReadError("connection reset by peer", request=request)
        headers = {**response.headers, "content-length": str(len(response.body))}
        return httpx.Response(
            response.status,
            headers=headers,
            stream=httpx.ByteStream(response.body),
            request=request,
        )


async def serve_fake(
    server: FakeServer,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``server`` over HTTP/1.1 on ``host:port`` until cancelled.

    Reports the base URL (``http://host:port``) through ``task_status``.
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound_port = listeners[0].socket.getsockname()[1]
    base_url = f"http://{host}:{bound_port}"
    server.base_url = base_url
    server.qr.base_url = base_url
    task_status.started(base_url)
    await trio.serve_listeners(partial(_serve_connection, server), listeners)


async def _serve_connection(server: FakeServer, stream: trio.SocketStream) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
    try:
        while True:
            request = await _read_request(conn, stream)
            if request is None:
                return
            response = await _handle_watching_disconnect(server, request, stream, conn)
            if response is None or response.action == "reset":
                _abort(stream)
                return
            headers = [(k.encode(), v.encode()) for k, v in response.headers.items()]
            headers.append((b"content-length", str(len(response.body)).encode()))
            await stream.send_all(
                conn.send(h11.Response(status_code=response.status, headers=headers))
            )
            await stream.send_all(conn.send(h11.Data(data=response.body)))
            await stream.send_all(conn.send(h11.EndOfMessage()))
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
        return
    finally:
        await trio.aclose_forcefully(stream)


async def _read_request(conn: h11.Connection, stream: trio.SocketStream) -> FakeRequest | None:
    request: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            conn.receive_data(data)
            continue
        if isinstance(event, h11.ConnectionClosed):
            return None
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > _MAX_BODY:
                return None
        elif isinstance(event, h11.EndOfMessage):
            assert request is not None
            target = request.target.decode("latin-1")
            path, _, query = target.partition("?")
            url = httpx.URL(target if target.startswith("/") else "/" + target)
            return FakeRequest(
                method=request.method.decode(),
                path=path,
                query=dict(url.params) if query else {},
                headers={k.decode().lower(): v.decode("latin-1") for k, v in request.headers},
                body=bytes(body),
            )


async def _handle_watching_disconnect(
    server: FakeServer, request: FakeRequest, stream: trio.SocketStream, conn: h11.Connection
) -> FakeResponse | None:
    """Run the handler, but give up (without consuming messages) if the client leaves."""
    result: list[FakeResponse] = []
    async with trio.open_nursery() as nursery:

        async def watch() -> None:
            data = await stream.receive_some(65536)
            if not data:
                nursery.cancel_scope.cancel()
            else:
                conn.receive_data(data)  # a pipelined request: keep it for later

        async def run() -> None:
            result.append(await server.handle(request))
            nursery.cancel_scope.cancel()

        nursery.start_soon(watch)
        nursery.start_soon(run)
    return result[0] if result else None


def _abort(stream: trio.SocketStream) -> None:
    """Close with RST, like a peer that vanished."""
    try:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        log.debug("could not set SO_LINGER for an abortive close")
