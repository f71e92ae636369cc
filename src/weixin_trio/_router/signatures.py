"""What a [`Router`][weixin_trio.Router] calls, typed precisely (for mypy --strict users)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeAlias, TypeVar

if TYPE_CHECKING:
    import re
    from collections.abc import Awaitable, Callable

    from .._client.message import Message
    from .._proto.commands import Command

__all__ = [
    "CallNext",
    "CommandHandler",
    "ErrorHandler",
    "MatchHandler",
    "MessageHandler",
    "Middleware",
    "Predicate",
]

#: ``async def handler(msg, cmd: Command) -> None``: a command route.
CommandHandler: TypeAlias = "Callable[[Message, Command], Awaitable[None]]"
#: ``async def handler(msg, match: re.Match[str]) -> None``: a text route.
MatchHandler: TypeAlias = "Callable[[Message, re.Match[str]], Awaitable[None]]"
#: ``async def handler(msg) -> None``: media, message and fallback routes.
MessageHandler: TypeAlias = "Callable[[Message], Awaitable[None]]"


class CallNext(Protocol):
    """``await call_next()`` runs the rest of the chain (at most once).

    ``await call_next(other)`` runs it with another message (e.g. one made with
    ``attrs.evolve``). A middleware may annotate it as this, as
    ``Callable[[], Awaitable[None]]`` or as ``Callable[[Message], Awaitable[None]]``.
    """

    def __call__(self, message: Message | None = None, /) -> Awaitable[None]: ...


#: ``async def mw(msg, call_next) -> None``.
Middleware: TypeAlias = "Callable[[Message, CallNext], Awaitable[None]]"
#: ``async def on_error(msg, exc) -> bool``: ``True`` means handled.
ErrorHandler: TypeAlias = "Callable[[Message, Exception], Awaitable[bool]]"
#: A filter: any ``(Message) -> bool`` (such as a `weixin_trio.filters.Filter`).
Predicate: TypeAlias = "Callable[[Message], object]"

CommandT = TypeVar("CommandT", bound="CommandHandler")
MatchT = TypeVar("MatchT", bound="MatchHandler")
MessageT = TypeVar("MessageT", bound="MessageHandler")
MiddlewareT = TypeVar("MiddlewareT", bound="Middleware")
ErrorT = TypeVar("ErrorT", bound="ErrorHandler")
