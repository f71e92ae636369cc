"""`Router`: a handler that dispatches messages to commands, patterns, filters, a fallback."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, final

import attrs

from .._monitor.values import check_handler
from .._proto.commands import Command, parse_command
from ..filters import as_filter, media_kind
from . import delivery as _delivery
from .builtins import Builtins
from .chain import run_layer
from .routes import (
    CommandRoute,
    HelpEntry,
    MediaRoute,
    MessageRoute,
    TextRoute,
    command_name,
    first_doc_line,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from .._client.message import Message
    from .._proto.media_kind import MediaKind
    from ..filters import Filter
    from .signatures import (
        CommandT,
        ErrorHandler,
        ErrorT,
        MatchT,
        MessageHandler,
        MessageT,
        Middleware,
        MiddlewareT,
        Predicate,
    )

    Call = Callable[[Message], Awaitable[None]]

__all__ = ["Router"]


async def _nothing(message: Message) -> None:
    """The route of a message no route matched: nothing to do."""


@attrs.frozen
class _Found:
    """The route that matched: the routers from the root to its owner, and its call."""

    path: tuple[Router, ...]
    call: Call


@final
class Router:
    """A message handler that routes each message to the first route that matches.

    ```python
    router = weixin_trio.Router(builtins=True)

    @router.command("ping", "p")
    async def ping(msg: weixin_trio.Message, cmd: Command) -> None:
        \"\"\"Answer pong.\"\"\"
        await msg.reply("pong")
    ```

    Routes are tried in registration order, commands first (``/name`` routes of
    this router and of the included ones, in place), then text, media and message
    routes; if none matches, the fallbacks (an included router's before its
    parent's). A message that matches nothing is finished. The middleware of the
    router given to the monitor sees every message; an included router's middleware
    wraps only the routes it (and the routers it includes) own.

    Args:
        builtins: Also answer ``/echo``, ``/help``, ``/status`` and ``/toggle-debug``
            (a command of the same name registered on the router wins).
        filter: Only messages passing it reach this router's routes (for an included
            router: the others go on to the next route).
        access: Who may talk to the bot, e.g.
            [`AccessControl("pairing")`][weixin_trio.AccessControl]: installed as the
            outermost middleware, so a refused message reaches no route, built-in or
            fallback (it is acknowledged and counted).
    """

    def __init__(
        self,
        *,
        builtins: bool = False,
        filter: Predicate | None = None,
        access: Middleware | None = None,
    ) -> None:
        self._filter: Filter | None = None if filter is None else as_filter(filter)
        self._entries: list[CommandRoute | TextRoute | MediaRoute | MessageRoute | Router] = []
        self._middleware: list[Middleware] = []
        self._on_error: ErrorHandler | None = None
        self._fallback: MessageHandler | None = None
        self._parent: Router | None = None
        self._builtins = Builtins(self.help_entries) if builtins else None
        if access is not None:
            self.use(access)

    def __repr__(self) -> str:
        return f"<Router with {len(self._entries)} routes>"

    # --- registration -------------------------------------------------------------------

    def command(
        self, name: str, *aliases: str, description: str | None = None
    ) -> Callable[[CommandT], CommandT]:
        """Register ``async def handler(msg, cmd: Command)`` for ``/name`` and its aliases.

        Names are case-insensitive, with or without the leading slash.
        ``description`` (default: the first line of the handler's docstring) is
        what ``/help`` shows.

        Raises:
            ValueError: A name contains spaces, ``@`` or a slash.
        """
        names = tuple(command_name(n) for n in (name, *aliases))

        def register(handler: CommandT) -> CommandT:
            check_handler(handler)
            text = first_doc_line(handler) if description is None else description
            self._entries.append(CommandRoute(names, handler, text))
            return handler

        return register

    def text(self, pattern: str | re.Pattern[str]) -> Callable[[MatchT], MatchT]:
        """Register ``async def handler(msg, match: re.Match[str])`` for texts ``pattern`` finds.

        ``pattern`` (a string or a compiled pattern) is searched (``re.search``).
        """
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern

        def register(handler: MatchT) -> MatchT:
            check_handler(handler)
            self._entries.append(TextRoute(regex, handler))
            return handler

        return register

    def media(self, kind: MediaKind | str | None = None) -> Callable[[MessageT], MessageT]:
        """Register ``async def handler(msg)`` for messages with media of ``kind``.

        ``kind`` is a [`MediaKind`][weixin_trio.media.MediaKind] or its name
        (``"image"``); ``None`` matches any media.

        Raises:
            ValueError: ``kind`` names no media kind.
        """
        wanted = None if kind is None else media_kind(kind)

        def register(handler: MessageT) -> MessageT:
            check_handler(handler)
            self._entries.append(MediaRoute(wanted, handler))
            return handler

        return register

    def message(self, filter: Predicate) -> Callable[[MessageT], MessageT]:
        """Register ``async def handler(msg)`` for messages passing ``filter``."""

        def register(handler: MessageT) -> MessageT:
            check_handler(handler)
            self._entries.append(MessageRoute.of(filter, handler))
            return handler

        return register

    def fallback(self, handler: MessageT) -> MessageT:
        """Register ``async def handler(msg)`` for messages no route matched (one per router).

        Raises:
            ValueError: This router has a fallback already.
        """
        check_handler(handler)
        if self._fallback is not None:
            raise ValueError("this router has a fallback already")
        self._fallback = handler
        return handler

    def use(self, middleware: MiddlewareT) -> MiddlewareT:
        """Add ``async def mw(msg, call_next) -> None`` around this router's routes.

        Middleware runs outer to inner in registration order. It may skip
        ``await call_next()`` (the message is then finished), await it once
        (``call_next(other)`` goes on with another message), or raise. The router
        given to the monitor runs its middleware for every message that passes its
        filter, even one no route matches; an included router's middleware wraps its
        own routes only.
        """
        check_handler(middleware)
        self._middleware.append(middleware)
        return middleware

    def error(self, handler: ErrorT) -> ErrorT:
        """Set ``async def on_error(msg, exc) -> bool`` for errors of this router's routes.

        It sees every `Exception` from this router's middleware and routes (and from
        the routers it includes, when theirs did not handle it). ``True``: handled,
        the message is finished. ``False`` (or raising): the error goes on, in the
        end to the monitor (retries, dead letter).
        """
        check_handler(handler)
        self._on_error = handler
        return handler

    def include(self, child: Router) -> Router:
        """Try ``child``'s routes here, in place, after the routes registered so far.

        Returns:
            ``child``.

        Raises:
            ValueError: ``child`` is included elsewhere already, or is this router or
                one of its parents.
        """
        if child._parent is not None:
            raise ValueError("this router is included elsewhere already")
        ancestor: Router | None = self
        while ancestor is not None:
            if ancestor is child:
                raise ValueError("a router cannot include itself or one of its parents")
            ancestor = ancestor._parent
        child._parent = self
        self._entries.append(child)
        return child

    # --- handling -----------------------------------------------------------------------

    async def __call__(self, message: Message) -> None:
        """Handle ``message``: run the first route that matches, inside the middleware.

        Exceptions of routes and middleware propagate unchanged unless an error
        handler says they were handled.

        Cancellation:
            Cancellation propagates through the route, middleware and error handlers
            untouched.
        """
        if not self._passes(message):
            return
        delivery = _delivery.Delivery.begin(message)
        token = _delivery.CURRENT.set(delivery)
        try:
            if self._builtins is not None:
                message = await self._builtins.prepare(message, delivery)
            found = self._find(message, parse_command(message.text))
            if found is None:  # the root's middleware still sees the message
                found = _Found((self,), _nothing)
            await self._run(found.path, 0, message, found.call)
        finally:
            _delivery.CURRENT.reset(token)

    async def _run(
        self, path: tuple[Router, ...], depth: int, message: Message, call: Call
    ) -> None:
        router = path[depth]
        if depth + 1 == len(path):
            inner = call
        else:

            async def inner(passed: Message) -> None:
                await self._run(path, depth + 1, passed, call)

        await run_layer(router._middleware, router._on_error, message, inner)

    def _find(self, message: Message, command: Command | None) -> _Found | None:
        if command is not None:
            found = self._find_command(message, command, (), builtins=False)
            found = found or self._find_command(message, command, (), builtins=True)
            if found is not None:
                return found
        return self._find_route(message, ()) or self._find_fallback(message, ())

    def _find_command(
        self, message: Message, command: Command, above: tuple[Router, ...], *, builtins: bool
    ) -> _Found | None:
        """The command route for ``command``: user routes first, built-ins in a second pass."""
        path = (*above, self)
        for entry in self._entries:
            if isinstance(entry, Router):
                if entry._passes(message):
                    found = entry._find_command(message, command, path, builtins=builtins)
                    if found is not None:
                        return found
            elif not builtins and isinstance(entry, CommandRoute) and command.name in entry.names:
                return _Found(path, entry.match(command))
        if builtins and self._builtins is not None:
            call = self._builtins.match(command)
            if call is not None:
                return _Found(path, call)
        return None

    def _find_route(self, message: Message, above: tuple[Router, ...]) -> _Found | None:
        path = (*above, self)
        for entry in self._entries:
            if isinstance(entry, Router):
                found = entry._find_route(message, path) if entry._passes(message) else None
            elif isinstance(entry, CommandRoute):
                continue
            else:
                call = entry.match(message)
                found = None if call is None else _Found(path, call)
            if found is not None:
                return found
        return None

    def _find_fallback(self, message: Message, above: tuple[Router, ...]) -> _Found | None:
        path = (*above, self)
        for entry in self._entries:
            if isinstance(entry, Router) and entry._passes(message):
                found = entry._find_fallback(message, path)
                if found is not None:
                    return found
        if self._fallback is None:
            return None
        return _Found(path, self._fallback)

    def _passes(self, message: Message) -> bool:
        return self._filter is None or self._filter(message)

    # --- introspection ------------------------------------------------------------------

    def help_entries(self) -> list[HelpEntry]:
        """Every command this router answers (included routers' and built-ins too).

        A name answered by an earlier route is left out of a later one (a built-in
        shadowed by a command of the same name is not listed).
        """
        seen: set[str] = set()
        entries = []
        for route in [*self._command_routes(builtins=False), *self._command_routes(builtins=True)]:
            names = tuple(n for n in route.names if n not in seen)
            if names:
                seen.update(names)
                entries.append(HelpEntry(names, route.description))
        return entries

    def _command_routes(self, *, builtins: bool) -> Iterator[CommandRoute]:
        for entry in self._entries:
            if isinstance(entry, Router):
                yield from entry._command_routes(builtins=builtins)
            elif not builtins and isinstance(entry, CommandRoute):
                yield entry
        if builtins and self._builtins is not None:
            yield from self._builtins.routes
