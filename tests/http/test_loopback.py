"""The production connector over real loopback sockets: TCP, and TLS with trustme.

Real time (no mock clock), each bounded by one ``trio.fail_after`` guard.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import pytest
import trio
import trustme

import weixin_trio as wx
from weixin_trio._http import connect_tcp
from weixin_trio._http.pool import Pool
from weixin_trio._http.target import Target

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.slow


async def _http_server(stream: trio.abc.Stream, seen: list[bytes]) -> None:
    """Answer each request (head + Content-Length body) with its body, keep-alive."""
    buffer = b""
    try:
        while True:
            while b"\r\n\r\n" not in buffer:
                data = await stream.receive_some()
                if not data:
                    return
                buffer += data
            head, _, rest = buffer.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            while len(rest) < length:
                rest += await stream.receive_some()
            body, buffer = rest[:length], rest[length:]
            seen.append(head)
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )
    except trio.BrokenResourceError:
        return
    finally:
        await trio.aclose_forcefully(stream)


async def _serve(
    nursery: trio.Nursery, wrap: Callable[[trio.SocketStream], trio.abc.Stream]
) -> tuple[int, list[bytes]]:
    seen: list[bytes] = []
    listeners = await nursery.start(trio.serve_tcp, lambda s: _http_server(wrap(s), seen), 0)
    port = listeners[0].socket.getsockname()[1]
    return port, seen


async def _round_trips(pool: Pool, url: str) -> None:
    target = Target(url)
    for i in range(5):
        body = b'{"n":%d}' % i
        assert await pool.request(b"POST", target, b"", body, endpoint="ep", max_seconds=5) == (
            200,
            body,
        )
    assert pool.opened == 1


async def test_tcp_keep_alive_round_trips() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port, seen = await _serve(nursery, lambda s: s)
            pool = Pool(connect_tcp.open_stream)
            await _round_trips(pool, f"http://127.0.0.1:{port}/ilink/bot/sendmessage")
            assert seen[0].startswith(
                b"POST /ilink/bot/sendmessage HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % port
            )
            await pool.aclose()
            nursery.cancel_scope.cancel()


async def test_connection_refused_is_a_transport_error() -> None:
    with trio.fail_after(10):
        listener = trio.socket.socket()
        await listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        listener.close()  # nothing listens there now
        pool = Pool(connect_tcp.open_stream)
        with pytest.raises(wx.TransportError) as info:
            await pool.request(
                b"POST",
                Target(f"http://127.0.0.1:{port}/x"),
                b"",
                b"",
                endpoint="ep",
                max_seconds=5,
            )
        assert str(info.value).startswith("ep: ")
        assert "127.0.0.1" not in str(info.value)


async def test_tls_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    monkeypatch.setattr(connect_tcp, "ssl_context", lambda: client_ctx)

    def tls(stream: trio.SocketStream) -> trio.abc.Stream:
        return trio.SSLStream(stream, server_ctx, server_side=True)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port, _ = await _serve(nursery, tls)
            pool = Pool(connect_tcp.open_stream)
            await _round_trips(pool, f"https://127.0.0.1:{port}/ilink/bot/sendmessage")
            await pool.aclose()
            # A certificate the client does not trust fails the connect.
            monkeypatch.setattr(connect_tcp, "ssl_context", ssl.create_default_context)
            with pytest.raises(wx.TransportError, match="SSLCertVerificationError"):
                await Pool(connect_tcp.open_stream).request(
                    b"GET",
                    Target(f"https://127.0.0.1:{port}/"),
                    b"",
                    b"",
                    endpoint="ep",
                    max_seconds=5,
                )
            nursery.cancel_scope.cancel()
