"""A small real loopback HTTP(S) server and a fake DNS for the remote media tests."""

from __future__ import annotations

import functools
import socket
from typing import TYPE_CHECKING, Any

import attrs
import h11
import trio

if TYPE_CHECKING:
    import ssl

#: A tiny but real PNG (1x1) followed by padding.
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    + b"\x1f\x15\xc4\x89"
    + bytes(range(256)) * 40
)


@attrs.define
class Route:
    """What the server answers for one path."""

    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = attrs.Factory(list)
    chunked: bool = False
    #: Keep sending ``body`` forever (chunked) after the first chunk, until the client leaves.
    endless: bool = False


@attrs.define
class Server:
    """The routes, and what the server saw."""

    routes: dict[str, Route] = attrs.Factory(dict)
    hosts: list[str] = attrs.Factory(list)
    paths: list[str] = attrs.Factory(list)
    first_chunk_sent: trio.Event = attrs.Factory(trio.Event)
    port: int = 0

    async def handle(self, stream: trio.abc.Stream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            request = None
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(65536)
                    conn.receive_data(bytes(data))
                    if not data:
                        return
                elif isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.EndOfMessage):
                    break
            assert request is not None
            host = dict(request.headers).get(b"host", b"").decode()
            path = request.target.decode()
            self.hosts.append(host)
            self.paths.append(path)
            route = self.routes.get(path.split("?", 1)[0], Route(status=404, body=b"no"))
            headers = list(route.headers)
            if not route.chunked:
                headers.append(("Content-Length", str(len(route.body))))
            await stream.send_all(
                conn.send(h11.Response(status_code=route.status, headers=headers))
            )
            if route.endless:
                while True:
                    await stream.send_all(conn.send(h11.Data(data=route.body)))
                    self.first_chunk_sent.set()
            if route.body:
                await stream.send_all(conn.send(h11.Data(data=route.body)))
            await stream.send_all(conn.send(h11.EndOfMessage()))
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            return
        finally:
            await trio.aclose_forcefully(stream)

    async def start(self, nursery: trio.Nursery, tls: ssl.SSLContext | None = None) -> Server:
        def wrap(s: trio.SocketStream) -> trio.abc.Stream:
            return s if tls is None else trio.SSLStream(s, tls, server_side=True)

        async def serve(s: trio.SocketStream) -> None:
            await self.handle(wrap(s))

        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, serve, 0, host="127.0.0.1")
        )
        self.port = listeners[0].socket.getsockname()[1]
        return self


@attrs.define
class FakeDns(trio.abc.HostnameResolver):
    """Answers names from a table; records the questions."""

    table: dict[str, list[str]]
    asked: list[str] = attrs.Factory(list)

    async def getaddrinfo(
        self,
        host: bytes | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> Any:
        await trio.lowlevel.checkpoint()
        name = (host or b"").decode()
        self.asked.append(name)
        if name not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "unknown name")
        answers: list[Any] = []
        port_number = int(port or 0)
        for ip in self.table[name]:
            if ":" in ip:
                answers.append(
                    (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port_number, 0, 0))
                )
            else:
                answers.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port_number)))
        return answers

    async def getnameinfo(
        self, sockaddr: tuple[str, int] | tuple[str, int, int, int], flags: int
    ) -> tuple[str, str]:
        raise NotImplementedError


def install_dns(table: dict[str, list[str]]) -> FakeDns:
    """Use a `FakeDns` for this trio run."""
    dns = FakeDns(table)
    trio.socket.set_custom_hostname_resolver(dns)
    return dns
