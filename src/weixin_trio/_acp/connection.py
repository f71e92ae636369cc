"""A JSON-RPC peer on a pair of trio byte streams (the agent's stdout and stdin).

`Connection.serve` reads messages until the stream ends: responses complete the
waiting `Connection.request`, incoming requests run their handler in a task of their
own and are always answered (an error answer when the handler failed or was cancelled),
notifications go to a synchronous callback in arrival order. When the stream ends every
waiting request fails with [`AgentExitedError`][weixin_trio._errors.AgentExitedError].
"""

from __future__ import annotations

import itertools
import logging
from typing import TYPE_CHECKING, Any, Protocol

import trio

from .._errors import AcpError, AgentExitedError
from .jsonrpc import (
    INTERNAL_ERROR,
    METHOD_NOT_FOUND,
    ErrorResponse,
    Garbage,
    LineDecoder,
    Message,
    Notification,
    Request,
    Response,
    encode,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Connection", "RequestHandler", "method_not_found"]

log = logging.getLogger("weixin_trio.acp")

#: How long an answer to a cancelled incoming request may take to go out.
ANSWER_ON_CANCEL_TIMEOUT = 1.0


def method_not_found(method: str) -> AcpError:
    """The error a request handler raises for a method it does not serve (-32601)."""
    return AcpError(f"no method {method}", code=METHOD_NOT_FOUND)


class RequestHandler(Protocol):
    """``async (method, params) -> result`` for the peer's requests."""

    async def __call__(self, method: str, params: Any) -> Any: ...


class _Waiter:
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result: Any = None
        self.error: AcpError | None = None


class Connection:
    """One JSON-RPC peer; run `serve` in a task, then call `request` and `notify`."""

    def __init__(
        self,
        send: trio.abc.SendStream,
        receive: trio.abc.ReceiveStream,
        *,
        on_request: RequestHandler,
        on_notification: Callable[[str, Any], None],
        name: str = "agent",
    ) -> None:
        self._send = send
        self._receive = receive
        self._on_request = on_request
        self._on_notification = on_notification
        self._name = name
        self._ids = itertools.count(1)
        self._waiting: dict[int | str, _Waiter] = {}
        self._write_lock = trio.StrictFIFOLock()
        self._closed = False
        self.garbage = 0

    @property
    def closed(self) -> bool:
        """Whether the peer's output ended."""
        return self._closed

    async def request(self, method: str, params: Any = None) -> Any:
        """Send a request and wait for its result.

        Raises:
            AcpError: The peer answered with an error.
            AgentExitedError: The peer's output ended first (or had ended).

        Cancellation:
            Stops waiting; a late answer is dropped.
        """
        if self._closed:
            raise AgentExitedError(f"{self._name} exited")
        request_id = next(self._ids)
        waiter = self._waiting[request_id] = _Waiter()
        try:
            await self._write(Request(request_id, method, params))
            await waiter.done.wait()
        finally:
            self._waiting.pop(request_id, None)
        if waiter.error is not None:
            raise waiter.error
        return waiter.result

    async def notify(self, method: str, params: Any = None) -> None:
        """Send a notification.

        Raises:
            AgentExitedError: The peer's input is closed.

        Cancellation:
            The line may be half written; the peer then sees garbage.
        """
        await self._write(Notification(method, params))

    async def _write(self, message: Message) -> None:
        async with self._write_lock:
            try:
                await self._send.send_all(encode(message))
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise AgentExitedError(f"{self._name} closed its input") from exc

    async def serve(self) -> None:
        """Read and dispatch until the peer's output ends; then fail waiting requests.

        Cancellation:
            Stops reading; running request handlers are cancelled (and answered).
        """
        decoder = LineDecoder()
        try:
            async with trio.open_nursery() as nursery:
                while True:
                    try:
                        data = await self._receive.receive_some(65536)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        data = b""
                    items = decoder.feed(bytes(data)) if data else decoder.close()
                    for item in items:
                        self._dispatch(item, nursery)
                    if not data:
                        break
                self._fail_waiting()
        finally:
            self._fail_waiting()

    def _fail_waiting(self) -> None:
        self._closed = True
        for waiter in self._waiting.values():
            if not waiter.done.is_set():
                waiter.error = AgentExitedError(f"{self._name} exited")
                waiter.done.set()

    def _dispatch(self, item: Message | Garbage, nursery: trio.Nursery) -> None:
        if isinstance(item, Garbage):
            self.garbage += 1
            log.warning(
                "%s wrote a line that is not JSON-RPC (%s); skipped", self._name, item.reason
            )
        elif isinstance(item, Notification):
            try:
                self._on_notification(item.method, item.params)
            except Exception:
                log.exception("%s: handling the notification %s failed", self._name, item.method)
        elif isinstance(item, Request):
            nursery.start_soon(self._answer, item)
        else:
            waiter = self._waiting.get(item.id) if item.id is not None else None
            if waiter is None:
                log.debug("%s: an answer nobody waits for (id %r)", self._name, item.id)
                return
            if isinstance(item, Response):
                waiter.result = item.result
            else:
                waiter.error = AcpError(item.message, code=item.code, data=item.data)
            waiter.done.set()

    async def _answer(self, request: Request) -> None:
        answer: Message = ErrorResponse(request.id, INTERNAL_ERROR, "client stopping")
        try:
            result = await self._on_request(request.method, request.params)
            answer = Response(request.id, result)
        except AcpError as exc:
            answer = ErrorResponse(request.id, exc.code, str(exc))
        except Exception as exc:
            log.warning("%s: answering %s failed: %r", self._name, request.method, exc)
            answer = ErrorResponse(request.id, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
        finally:
            # Every request is answered, even when this task is cancelled.
            with trio.CancelScope(shield=True), trio.move_on_after(ANSWER_ON_CANCEL_TIMEOUT):
                await self._try_write(answer)

    async def _try_write(self, message: Message) -> None:
        try:
            await self._write(message)
        except AgentExitedError:
            log.debug("%s: could not answer (its input is closed)", self._name)
