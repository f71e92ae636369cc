"""Routes: what each kind matches, and the call it makes when it does.

``match`` returns ``async (msg) -> None`` that runs the route's handler with its
extra argument bound (the `Command`, the ``re.Match``), or ``None``. It takes the
message because middleware may pass on another one (``call_next(msg)``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import attrs

from .._proto.media_kind import MediaKind
from ..filters import Filter, as_filter
from .signatures import CommandHandler, MatchHandler, MessageHandler

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .._client.message import Message
    from .._proto.commands import Command
    from .signatures import Predicate

    Call = Callable[[Message], Awaitable[None]]

__all__ = ["CommandRoute", "HelpEntry", "MediaRoute", "MessageRoute", "TextRoute", "command_name"]

_NAME = re.compile(r"[^\s@/\uff0f]+")


def command_name(name: str) -> str:
    """``name`` as the parser reports it (case-folded, no leading slash).

    Raises:
        ValueError: ``name`` could never be parsed as a command name.
    """
    folded = name.removeprefix("/").removeprefix("\uff0f").casefold()
    if not _NAME.fullmatch(folded):
        raise ValueError(f"{name!r} is not a command name (no spaces, '@' or slashes)")
    return folded


def first_doc_line(handler: object) -> str:
    """The first line of ``handler``'s docstring, or ``""``."""
    doc = getattr(handler, "__doc__", None) or ""
    return doc.strip().split("\n", 1)[0].strip()


@attrs.frozen
class HelpEntry:
    """One line of ``/help``: a command's names and description."""

    names: tuple[str, ...]
    description: str


@attrs.frozen
class CommandRoute:
    """``/name`` (or an alias) runs ``handler(msg, cmd)``."""

    names: tuple[str, ...]
    handler: CommandHandler
    description: str

    def match(self, command: Command) -> Call:
        async def call(message: Message) -> None:
            await self.handler(message, command)

        return call


@attrs.frozen
class TextRoute:
    """Text containing a match of ``pattern`` runs ``handler(msg, match)``."""

    pattern: re.Pattern[str]
    handler: MatchHandler

    def match(self, message: Message) -> Call | None:
        found = self.pattern.search(message.text)
        if found is None:
            return None

        async def call(message: Message) -> None:
            await self.handler(message, found)

        return call


@attrs.frozen
class MediaRoute:
    """A message with a media item of ``kind`` (any if ``None``) runs ``handler(msg)``."""

    kind: MediaKind | None
    handler: MessageHandler

    def match(self, message: Message) -> Call | None:
        if not message.media:
            return None
        if self.kind is not None and not any(ref.kind is self.kind for ref in message.media):
            return None
        return self.handler


@attrs.frozen
class MessageRoute:
    """A message passing ``filter`` runs ``handler(msg)``."""

    filter: Filter
    handler: MessageHandler

    @classmethod
    def of(cls, predicate: Predicate, handler: MessageHandler) -> MessageRoute:
        return cls(as_filter(predicate), handler)

    def match(self, message: Message) -> Call | None:
        if not self.filter(message):
            return None
        return self.handler
