"""Scripted HTTP servers on in-memory streams (no sockets: safe under autojump_clock)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio
import trio.testing

from weixin_trio._http.target import Target

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from weixin_trio._http.target import Origin

    #: ``respond(request bytes, connection number, request number on it)`` returns
    #: the raw response bytes, or ``None`` to close the connection without answering.
    Respond = Callable[[bytes, int, int], Awaitable[bytes | None]]

TARGET = Target("http://api.test/ilink/bot/sendmessage")
HEADERS = b"Content-Type: application/json\r\n"


def ok(body: bytes = b"{}", *, extra: bytes = b"") -> bytes:
    """A 200 response with a Content-Length body."""
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def chunked(*parts: bytes) -> bytes:
    """A 200 response with a chunked body."""
    out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    for part in parts:
        out += b"%x\r\n%s\r\n" % (len(part), part)
    return out + b"0\r\n\r\n"


class ScriptServer:
    """A connector whose connections are memory streams answered by ``respond``.

    Attributes:
        requests: Every complete request received, as ``(connection, bytes)``.
        connections: How many connections were opened.
        closed: Connection numbers the client closed (EOF seen by the server).
    """

    def __init__(self, nursery: trio.Nursery, respond: Respond) -> None:
        self._nursery = nursery
        self._respond = respond
        self.requests: list[tuple[int, bytes]] = []
        self.connections = 0
        self.closed: list[int] = []

    async def connect(self, origin: Origin) -> trio.abc.Stream:
        await trio.lowlevel.checkpoint()
        client, server = trio.testing.memory_stream_pair()
        self.connections += 1
        self._nursery.start_soon(self._serve, server, self.connections)
        return client

    async def _serve(self, stream: trio.abc.Stream, number: int) -> None:
        buffer = b""
        count = 0
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = await stream.receive_some()
                    if not data:
                        self.closed.append(number)
                        return
                    buffer += data
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(rest) < length:
                    data = await stream.receive_some()
                    if not data:
                        self.closed.append(number)
                        return
                    rest += data
                request, buffer = head + b"\r\n\r\n" + rest[:length], rest[length:]
                self.requests.append((number, request))
                count += 1
                reply = await self._respond(request, number, count)
                if reply is None:
                    await stream.aclose()
                    return
                await stream.send_all(reply)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.closed.append(number)
