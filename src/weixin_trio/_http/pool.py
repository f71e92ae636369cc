"""Keep-alive connections per origin, shared by every request of one or more clients.

- A normal request takes one of ``max_active`` slots per origin (32), waiting fairly
  when all are taken; a long poll does not (each parked poll holds one connection).
- An idle connection is reused, most recently used first; at most ``max_idle`` (256)
  are kept per origin, and one unused for ``idle_expiry`` (60 s) is closed.
- No readability check when a connection is taken: a REUSED connection that fails
  the way a connection closed by the server while idle fails (EOF, reset or a broken
  pipe, before any byte of the response arrived) is retried once on a fresh
  connection. This is safe for this
  protocol: sends carry idempotent ``client_id``s, and the other requests are reads or
  idempotent notifications. A failure after response bytes arrived is not retried.
- One cancel scope per request (the safety-net deadline); the connect has its own
  15 s deadline.
"""

from __future__ import annotations

import collections
import logging
from typing import TYPE_CHECKING, Final, final

import trio

from .._errors import TransportError
from .api import MAX_RESPONSE_BYTES
from .connection import Connection
from .failures import CONNECTION_ERRORS, failure, kind_of

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .target import Origin, Target

    Connector = Callable[[Origin], Awaitable[trio.abc.Stream]]

__all__ = ["CONNECT_TIMEOUT", "Pool"]

log = logging.getLogger("weixin_trio.http")

CONNECT_TIMEOUT: Final = 15.0


@final
class _OriginPool:
    __slots__ = ("idle", "slots")

    def __init__(self, max_active: int) -> None:
        self.idle: collections.deque[Connection] = collections.deque()
        # FIFO: trio.Semaphore hands a released slot to the longest waiter.
        self.slots = trio.Semaphore(max_active)


@final
class Pool:
    """Connections by origin; see the module docstring for the rules.

    Args:
        connect: Opens a byte stream to an origin (`connect_tcp.open_stream`, or an
            in-process stream in tests).
        max_active: Connections in use per origin by normal requests.
        max_idle: Idle connections kept per origin.
        idle_expiry: Seconds an idle connection is kept.
    """

    def __init__(
        self,
        connect: Connector,
        *,
        max_active: int = 32,
        max_idle: int = 256,
        idle_expiry: float = 60.0,
    ) -> None:
        self._connect = connect
        self._max_active = max_active
        self._max_idle = max_idle
        self._idle_expiry = idle_expiry
        self._origins: dict[Origin, _OriginPool] = {}
        self._active: set[Connection] = set()
        self._closed = False
        self.opened = 0
        """Connections opened so far (for tests and benchmarks)."""

    def idle_count(self, origin: Origin | None = None) -> int:
        """Idle connections (of one origin, or all)."""
        if origin is not None:
            found = self._origins.get(origin)
            return len(found.idle) if found else 0
        return sum(len(p.idle) for p in self._origins.values())

    @property
    def active_count(self) -> int:
        """Connections serving a request right now."""
        return len(self._active)

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
        """Send one request over a pooled connection (see `Http.request`).

        Cancellation:
            Safe; the connection in use is closed and never reused.
        """
        if self._closed:
            raise failure(endpoint, "client closed")
        origin = target.origin
        per_origin = self._origins.get(origin)
        if per_origin is None:
            per_origin = self._origins[origin] = _OriginPool(self._max_active)
        if body or method == b"POST":
            length = b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
        else:
            length = b"\r\n"
        data = b"".join(
            (
                method,
                b" ",
                target.path,
                b" HTTP/1.1\r\nHost: ",
                target.host_header,
                length,
                headers,
                b"\r\n",
                body,
            )
        )
        with trio.CancelScope(deadline=trio.current_time() + max_seconds) as scope:
            if long_poll:
                return await self._exchange(per_origin, origin, method, data, endpoint)
            slots = per_origin.slots
            try:
                slots.acquire_nowait()  # a free slot costs no task switch
            except trio.WouldBlock:
                await slots.acquire()
            try:
                return await self._exchange(per_origin, origin, method, data, endpoint)
            finally:
                slots.release()
        assert scope.cancelled_caught
        raise failure(endpoint, f"no complete response within {max_seconds:g} s")

    async def _exchange(
        self, per_origin: _OriginPool, origin: Origin, method: bytes, data: bytes, endpoint: str
    ) -> tuple[int, bytes]:
        conn = await self._checkout(per_origin)
        if conn is None:
            conn = await self._open(origin, endpoint)
        active = self._active
        active.add(conn)
        try:
            try:
                result = await conn.request(
                    method, data, endpoint=endpoint, max_body=MAX_RESPONSE_BYTES
                )
            except TransportError:
                if not (conn.reused and conn.stale):
                    raise
                # A stale keep-alive connection: the server closed it while idle.
                log.debug("%s: reused connection failed before the response; retrying", endpoint)
                active.discard(conn)
                conn = await self._open(origin, endpoint)
                active.add(conn)
                result = await conn.request(
                    method, data, endpoint=endpoint, max_body=MAX_RESPONSE_BYTES
                )
        finally:
            active.discard(conn)
        if conn.reusable and not self._closed and len(per_origin.idle) < self._max_idle:
            conn.reused = True
            conn.idle_since = trio.current_time()
            per_origin.idle.append(conn)
        elif conn.reusable:
            await conn.aclose()
        return result

    async def _checkout(self, per_origin: _OriginPool) -> Connection | None:
        idle = per_origin.idle
        if not idle:
            return None
        conn = idle.pop()
        if conn.idle_since + self._idle_expiry >= trio.current_time():
            return conn
        # The most recent one expired, so did every older one.
        idle.append(conn)
        while idle:
            await idle.popleft().aclose()
        return None

    async def _open(self, origin: Origin, endpoint: str) -> Connection:
        try:
            with trio.move_on_after(CONNECT_TIMEOUT):
                stream = await self._connect(origin)
                self.opened += 1
                return Connection(stream)
        except CONNECTION_ERRORS as exc:
            raise failure(endpoint, kind_of(exc)) from exc
        raise failure(endpoint, f"no connection within {CONNECT_TIMEOUT:g} s")

    async def aclose(self) -> None:
        """Close every connection, idle or in use; later requests fail.

        Cancellation:
            Closes anyway (forceful closes).
        """
        self._closed = True
        conns = [c for p in self._origins.values() for c in p.idle]
        conns += self._active
        self._origins.clear()
        self._active.clear()
        for conn in conns:
            await conn.aclose()

    async def close_idle(self) -> None:
        """Close the idle connections (the pool stays usable).

        Cancellation:
            Closes anyway (forceful closes).
        """
        for per_origin in self._origins.values():
            while per_origin.idle:
                await per_origin.idle.popleft().aclose()
