"""The in-process connector: any httpx transport behind the same h11 and pool code."""

from __future__ import annotations

import httpx
import pytest
import trio
import trio.testing

import weixin_trio as wx
from weixin_trio._http.pool import Pool
from weixin_trio._http.target import Origin, Target
from weixin_trio._http.transport_stream import TransportStream, transport_connector

TARGET = Target("https://api.test/ilink/bot/getconfig?x=1")


async def _send(pool: Pool, body: bytes = b"{}") -> tuple[int, bytes]:
    return await pool.request(
        b"POST", TARGET, b"Authorization: Bearer t\r\n", body, endpoint="ep", max_seconds=30
    )


async def test_requests_reach_the_transport_as_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"ret": 0}, headers={"X-A": "1"})

    pool = Pool(transport_connector(httpx.MockTransport(handler)))
    assert await _send(pool, b'{"a":1}') == (201, b'{"ret":0}')
    assert await _send(pool) == (201, b'{"ret":0}')
    assert pool.opened == 1  # keep-alive in-process too
    [first, _] = seen
    assert str(first.url) == "https://api.test/ilink/bot/getconfig?x=1"
    assert first.headers["authorization"] == "Bearer t"
    assert first.headers["host"] == "api.test"
    assert first.content == b'{"a":1}'
    await pool.aclose()


@pytest.mark.parametrize("error", [httpx.ReadError, httpx.ConnectError, httpx.RemoteProtocolError])
async def test_an_httpx_error_is_a_transport_error_and_not_retried(
    error: type[httpx.TransportError],
) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise error("boom http://secret.example/?token=1")
        return httpx.Response(200, content=b"{}")

    pool = Pool(transport_connector(httpx.MockTransport(handler)))
    await _send(pool)
    with pytest.raises(wx.TransportError) as info:
        await _send(pool)  # on the reused connection: the server got it, no retry
    assert str(info.value) == f"ep: {error.__name__}"
    assert isinstance(info.value.__cause__, trio.BrokenResourceError)
    assert isinstance(info.value.__cause__.__cause__, error)
    assert calls == 2
    assert await _send(pool) == (200, b"{}")  # on a fresh connection
    assert pool.opened == 2
    await pool.aclose()


async def test_a_closing_response_ends_the_connection() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"{}", headers={"Connection": "close"})

    pool = Pool(transport_connector(httpx.MockTransport(handler)))
    await _send(pool)
    await _send(pool)
    assert pool.opened == 2
    assert pool.idle_count() == 0


async def test_a_streamed_and_compressed_response_is_decoded() -> None:
    import gzip

    class Streaming(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await trio.lowlevel.checkpoint()

            async def parts() -> object:
                yield gzip.compress(b'{"ret":0}')

            return httpx.Response(
                200,
                headers={"Content-Encoding": "gzip"},
                content=parts(),  # type: ignore[arg-type]
            )

    pool = Pool(transport_connector(Streaming()))
    assert await _send(pool) == (200, b'{"ret":0}')


async def test_cancelling_a_request_cancels_the_handler(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cancelled = False

    class Hanging(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal cancelled
            try:
                await trio.sleep_forever()
            finally:
                cancelled = True
            raise AssertionError

    pool = Pool(transport_connector(Hanging()))
    with trio.move_on_after(2):
        await _send(pool)
    assert cancelled
    assert pool.idle_count() == 0
    assert pool.active_count == 0


async def test_closed_stream_refuses_io() -> None:
    stream = TransportStream(
        httpx.MockTransport(lambda r: httpx.Response(200)), Origin("http", "h", 80)
    )
    await stream.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await stream.send_all(b"x")
    with pytest.raises(trio.ClosedResourceError):
        await stream.receive_some(10)
