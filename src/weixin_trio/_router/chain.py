"""Middleware chains and error handlers around a route's call.

Each router on the way from the root to the route that matched is one layer: its
error handler (if any) around its middleware, outer to inner in registration order,
around the next layer; the route's handler is the innermost call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from .._client.message import Message
    from .signatures import ErrorHandler, Middleware

    Call = Callable[[Message], Awaitable[None]]

__all__ = ["run_layer", "run_middleware"]


async def run_middleware(middleware: Sequence[Middleware], message: Message, inner: Call) -> None:
    """Run ``middleware[0]`` with a ``call_next`` that runs the rest, then ``inner``.

    A middleware may skip ``call_next`` (the message is finished), await it once
    (``call_next()``, or ``call_next(other)`` to go on with another message), or raise;
    a second ``call_next`` raises `RuntimeError`.
    """
    if not middleware:
        await inner(message)
        return
    first, rest = middleware[0], middleware[1:]
    called = False

    async def call_next(passed: Message | None = None, /) -> None:
        nonlocal called
        if called:
            raise RuntimeError(f"call_next() awaited twice by the middleware {first!r}")
        called = True
        await run_middleware(rest, message if passed is None else passed, inner)

    await first(message, call_next)


async def run_layer(
    middleware: Sequence[Middleware],
    on_error: ErrorHandler | None,
    message: Message,
    inner: Call,
) -> None:
    """`run_middleware`, with ``on_error`` deciding about an `Exception` from it.

    ``on_error`` returning ``True`` finishes the message; ``False`` re-raises the
    error unchanged (an error raised by ``on_error`` itself propagates instead).
    ``trio.Cancelled`` and other ``BaseException``\\ s are never caught.
    """
    if on_error is None:
        await run_middleware(middleware, message, inner)
        return
    try:
        await run_middleware(middleware, message, inner)
    except Exception as exc:
        if not await on_error(message, exc):
            raise
