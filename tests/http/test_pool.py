"""The pool: keep-alive reuse, the stale-connection retry, limits, long polls, closing."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import weixin_trio as wx
from weixin_trio._http.pool import Pool
from weixin_trio._http.target import Target

from ._servers import HEADERS, TARGET, ScriptServer, ok


async def _send(
    pool: Pool, body: bytes = b"{}", *, max_seconds: float = 30.0, long_poll: bool = False
) -> tuple[int, bytes]:
    return await pool.request(
        b"POST", TARGET, HEADERS, body, endpoint="ep", max_seconds=max_seconds, long_poll=long_poll
    )


async def test_one_connection_serves_many_requests() -> None:
    async def respond(request: bytes, conn: int, n: int) -> bytes:
        await trio.lowlevel.checkpoint()
        return ok(b"%d" % n)

    async with trio.open_nursery() as nursery:
        server = ScriptServer(nursery, respond)
        pool = Pool(server.connect)
        for i in range(1, 21):
            assert await _send(pool) == (200, b"%d" % i)
        assert server.connections == 1
        assert pool.idle_count() == 1
        await pool.aclose()
        nursery.cancel_scope.cancel()


async def test_request_bytes_on_the_wire() -> None:
    async def respond(request: bytes, conn: int, n: int) -> bytes:
        await trio.lowlevel.checkpoint()
        return ok()

    async with trio.open_nursery() as nursery:
        server = ScriptServer(nursery, respond)
        pool = Pool(server.connect)
        await _send(pool, b'{"a":1}')
        await pool.request(
            b"GET",
            Target("http://api.test:8080/q?x=1"),
            b"A: b\r\n",
            b"",
            endpoint="ep",
            max_seconds=5,
        )
        assert [r for _, r in server.requests] == [
            b"POST /ilink/bot/sendmessage HTTP/1.1\r\nHost: api.test\r\nContent-Length: 7\r\n"
            b'Content-Type: application/json\r\n\r\n{"a":1}',
            b"GET /q?x=1 HTTP/1.1\r\nHost: api.test:8080\r\nA: b\r\n\r\n",
        ]
        await pool.aclose()
        nursery.cancel_scope.cancel()


async def test_a_stale_reused_connection_is_retried_once_on_a_fresh_one() -> None:
    async def respond(request: bytes, conn: int, n: int) -> bytes | None:
        await trio.lowlevel.checkpoint()
        # The first connection answers once, then the server drops it while idle.
        return None if conn == 1 and n == 2 else ok(b"c%d" % conn)

    async with trio.open_nursery() as nursery:
        server = ScriptServer(nursery, respond)
        pool = Pool(server.connect)
        assert await _send(pool) == (200, b"c1")
        assert await _send(pool) == (200, b"c2")
        assert server.connections == 2
        assert await _send(pool) == (200, b"c2")  # the fresh one is kept
        await pool.aclose()
        nursery.cancel_scope.cancel()


async def test_no_retry_once_response_bytes_arrived() -> None:
    async def respond(request: bytes, conn: int, n: int) -> bytes | None:
        await trio.lowlevel.checkpoint()
        if n == 2:
            return b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"  # then hangs up
        return ok()

    async with trio.open_nursery() as nursery:
        server = ScriptServer(nursery, respond)
        pool = Pool(server.connect)
        await _send(pool)
        with trio.move_on_after(1):  # the truncated body is followed by nothing
            with pytest.raises(wx.TransportError):
                await _send(pool, max_seconds=0.5)
        assert len(server.requests) == 2
        assert server.connections == 1
        await pool.aclose()
        nursery.cancel_scope.cancel()


async def test_no_retry_on_a_fresh_connection() -> None:
    async def respond(request: bytes, conn: int, n: int) -> bytes | None:
        await trio.lowlevel.checkpoint()
        return None  # hang up without answering

    async with trio.open_nursery() as nursery:
        server = ScriptServer(nursery, respond)
        pool = Pool(server.connect)
        with pytest.raises(wx.TransportError, match=r"^ep: connection closed before the response$"):
            await _send(pool)
        assert server.connections == 1
        nursery.cancel_scope.cancel()


async def test_cancelled_request_closes_its_connection_and_nothing_is_reused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hang = trio.Event()

    async def respond(request: bytes, conn: int, n: int) -> bytes:
        if conn == 1 and n == 2:
            await hang.wait()
        return ok(b"c%d" % conn)

    async with trio.open_nursery() as nursery:
        server = ScriptServer(nursery, respond)
        pool = Pool(server.connect)
        await _send(pool)
        with trio.move_on_after(3):
            await _send(pool)
        assert pool.idle_count() == 0
        assert pool.active_count == 0
        hang.set()  # the server answers late and finds the connection closed
        await trio.testing.wait_all_tasks_blocked()
        assert server.closed == [1]
        assert await _send(pool) == (200, b"c2")
        nursery.cancel_scope.cancel()


async def test_safety_deadline_is_a_transport_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def respond(request: bytes, conn: int, n: int) -> bytes:
        await trio.sleep_forever()
        raise AssertionError

    async with trio.open_nursery() as nursery:
        server = ScriptServer(nursery, respond)
        pool = Pool(server.connect)
        with pytest.raises(wx.TransportError, match=r"^ep: no complete response within 30 s$"):
            await _send(pool)
        assert trio.current_time() == pytest.approx(30)
        nursery.cancel_scope.cancel()


async def test_connect_deadline(autojump_clock: trio.testing.MockClock) -> None:
    async def never(origin: object) -> trio.abc.Stream:
        await trio.sleep_forever()
        raise AssertionError

    pool = Pool(never)
    with pytest.raises(wx.TransportError, match=r"^ep: no connection within 15 s$"):
        await _send(pool)
    assert trio.current_time() == pytest.approx(15)


async def test_connect_failure_names_the_error() -> None:
    async def refuse(origin: object) -> trio.abc.Stream:
        await trio.lowlevel.checkpoint()
        raise ConnectionRefusedError(111, "refused http://api.test/?secret=1")

    with pytest.raises(wx.TransportError) as info:
        await _send(Pool(refuse))
    assert str(info.value) == "ep: ConnectionRefusedError"


async def test_the_limit_waits_fairly_and_long_polls_do_not_count(
    autojump_clock: trio.testing.MockClock,
) -> None:
    release = trio.Event()
    order: list[bytes] = []

    async def respond(request: bytes, conn: int, n: int) -> bytes:
        body = request.rpartition(b"\r\n\r\n")[2]
        if body.startswith(b"hold"):
            await release.wait()
        return ok(body)

    async def send(body: bytes) -> None:
        await _send(pool, body)
        order.append(body)

    async with trio.open_nursery() as nursery:
        server = ScriptServer(nursery, respond)
        pool = Pool(server.connect, max_active=1)
        async with trio.open_nursery() as senders:
            senders.start_soon(send, b"hold")
            await trio.testing.wait_all_tasks_blocked()
            for i in range(3):  # queued in this order
                senders.start_soon(send, b"w%d" % i)
                await trio.testing.wait_all_tasks_blocked()
            # The slot is taken; a long poll still gets a connection of its own.
            assert await _send(pool, b"poll", long_poll=True) == (200, b"poll")
            assert order == []
            assert server.connections == 2
            release.set()
        assert order == [b"hold", b"w0", b"w1", b"w2"]
        assert [r.rpartition(b"\r\n\r\n")[2] for _, r in server.requests] == [
            b"hold",
            b"poll",
            b"w0",
            b"w1",
            b"w2",
        ]
        assert server.connections == 2
        await pool.aclose()
        nursery.cancel_scope.cancel()


async def test_idle_connections_expire_and_are_capped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = trio.Event()

    async def respond(request: bytes, conn: int, n: int) -> bytes:
        if request.endswith(b"wait"):
            await gate.wait()
        return ok()

    async with trio.open_nursery() as nursery:
        server = ScriptServer(nursery, respond)
        pool = Pool(server.connect, max_idle=2, idle_expiry=60)
        async with trio.open_nursery() as senders:
            for _ in range(3):
                senders.start_soon(_send, pool, b"wait")
            await trio.testing.wait_all_tasks_blocked()
            gate.set()
        assert server.connections == 3
        assert pool.idle_count() == 2  # the third was closed
        await trio.sleep(61)
        await _send(pool)
        assert server.connections == 4  # the idle ones had expired
        assert pool.idle_count() == 1
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(server.closed) == [1, 2, 3]
        await pool.aclose()
        nursery.cancel_scope.cancel()


async def test_aclose_closes_every_connection_and_refuses_requests() -> None:
    async def respond(request: bytes, conn: int, n: int) -> bytes:
        await trio.lowlevel.checkpoint()
        return ok()

    async with trio.open_nursery() as nursery:
        server = ScriptServer(nursery, respond)
        pool = Pool(server.connect)
        await _send(pool)
        await pool.aclose()
        await trio.testing.wait_all_tasks_blocked()
        assert server.closed == [1]
        with pytest.raises(wx.TransportError, match="closed"):
            await _send(pool)
        nursery.cancel_scope.cancel()
