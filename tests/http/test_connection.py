"""One keep-alive connection: framing, reuse, failures, hostile bytes, size cap."""

from __future__ import annotations

import gzip

import hypothesis
import pytest
import trio
import trio.testing
from hypothesis import strategies as st

import weixin_trio as wx
from weixin_trio._http.connection import Connection

from ._servers import chunked, ok

REQUEST = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}"


class OneShot(trio.abc.Stream):
    """A stream that answers with ``reply`` (then EOF) and records what was sent."""

    def __init__(self, reply: bytes, *later: bytes, piece: int = 7) -> None:
        self._reply = reply
        self._later = list(later)  # one more reply after each later request
        self._piece = piece
        self.sent = b""
        self.closed = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint()
        if self.closed:
            raise trio.ClosedResourceError
        if self.sent and self._later:
            self._reply += self._later.pop(0)
        self.sent += bytes(data)

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        if self.closed:
            raise trio.ClosedResourceError
        chunk, self._reply = self._reply[: self._piece], self._reply[self._piece :]
        return chunk

    async def aclose(self) -> None:
        self.closed = True
        await trio.lowlevel.checkpoint()


async def _request(
    reply: bytes, *, max_body: int = 1 << 20
) -> tuple[Connection, OneShot, int, bytes]:
    stream = OneShot(reply)
    conn = Connection(stream)
    status, body = await conn.request(b"POST", REQUEST, endpoint="ep", max_body=max_body)
    return conn, stream, status, body


async def test_content_length_body_and_one_send() -> None:
    conn, stream, status, body = await _request(ok(b'{"ret":0}'))
    assert (status, body) == (200, b'{"ret":0}')
    assert stream.sent == REQUEST  # head and body in one send_all, as given
    assert conn.reusable
    assert not stream.closed


async def test_chunked_body() -> None:
    conn, _, status, body = await _request(chunked(b'{"a"', b":1}"))
    assert (status, body) == (200, b'{"a":1}')
    assert conn.reusable


async def test_keep_alive_serves_two_requests_in_turn() -> None:
    stream = OneShot(ok(b"1"), ok(b"22"))
    conn = Connection(stream)
    assert await conn.request(b"POST", REQUEST, endpoint="ep", max_body=100) == (200, b"1")
    assert await conn.request(b"POST", REQUEST, endpoint="ep", max_body=100) == (200, b"22")
    assert stream.sent == REQUEST * 2


async def test_server_that_closes_after_the_response_is_not_reused() -> None:
    conn, _, status, _ = await _request(ok(extra=b"Connection: close\r\n"))
    assert status == 200
    assert not conn.reusable


async def test_body_read_until_eof_is_not_reused() -> None:
    conn, _, status, body = await _request(b"HTTP/1.1 200 OK\r\n\r\nuntil eof")
    assert (status, body) == (200, b"until eof")
    assert not conn.reusable


async def test_error_status_is_returned_as_is() -> None:
    reply = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad"
    conn, _, status, body = await _request(reply)
    assert (status, body) == (502, b"bad")
    assert conn.reusable


async def test_gzip_body_is_decoded() -> None:
    packed = gzip.compress(b'{"ret":0}')
    _, _, status, body = await _request(ok(packed, extra=b"Content-Encoding: gzip\r\n"))
    assert (status, body) == (200, b'{"ret":0}')


async def test_eof_before_the_response_is_a_transport_error() -> None:
    stream = OneShot(b"")
    conn = Connection(stream)
    with pytest.raises(wx.TransportError, match=r"^ep: ") as info:
        await conn.request(b"POST", REQUEST, endpoint="ep", max_body=100)
    assert info.value.endpoint == "ep"
    assert stream.closed
    assert not conn.response_started
    assert not conn.reusable


async def test_eof_mid_body_is_a_transport_error_after_response_bytes() -> None:
    stream = OneShot(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    conn = Connection(stream)
    with pytest.raises(wx.TransportError):
        await conn.request(b"POST", REQUEST, endpoint="ep", max_body=100)
    assert conn.response_started
    assert stream.closed


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n" + b"x" * 101,
        chunked(b"x" * 60, b"y" * 60),
    ],
    ids=["huge-content-length", "long-body", "long-chunked-body"],
)
async def test_oversized_body_is_refused(reply: bytes) -> None:
    stream = OneShot(reply)
    conn = Connection(stream)
    with pytest.raises(wx.TransportError, match="over 100 bytes"):
        await conn.request(b"POST", REQUEST, endpoint="ep", max_body=100)
    assert stream.closed


async def test_garbage_is_a_transport_error() -> None:
    stream = OneShot(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    conn = Connection(stream)
    with pytest.raises(wx.TransportError, match=r"^ep: RemoteProtocolError$"):
        await conn.request(b"POST", REQUEST, endpoint="ep", max_body=100)
    assert stream.closed


async def test_cancellation_mid_request_closes_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Silent(OneShot):
        async def receive_some(self, max_bytes: int | None = None) -> bytes:
            await trio.sleep_forever()
            raise AssertionError

    stream = Silent(b"")
    conn = Connection(stream)
    with trio.move_on_after(5) as scope:
        await conn.request(b"POST", REQUEST, endpoint="ep", max_body=100)
    assert scope.cancelled_caught
    assert stream.closed
    assert not conn.reusable


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(
    reply=st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda head, tail: head + tail,
            st.sampled_from(
                [b"HTTP/1.1 200 OK\r\n", b"HTTP/1.0 204 x\r\n", b"HTTP/1.1 100 Continue\r\n\r\n"]
            ),
            st.binary(max_size=200),
        ),
    ),
    piece=st.integers(1, 64),
)
def test_hostile_bytes_give_a_response_or_a_transport_error(reply: bytes, piece: int) -> None:
    async def main() -> None:
        stream = OneShot(reply, piece=piece)
        conn = Connection(stream)
        failed: wx.TransportError | None = None
        try:
            status, body = await conn.request(b"POST", REQUEST, endpoint="ep", max_body=1000)
        except wx.TransportError as exc:
            failed = exc
        if failed is not None:
            assert failed.endpoint == "ep"
            assert str(failed).startswith("ep: ")
            assert stream.closed
        else:
            assert 200 <= status <= 999
            assert len(body) <= 1000

    trio.run(main)
