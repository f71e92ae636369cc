"""The built-ins of ``Router(builtins=True)``: ``/echo``, ``/help``, ``/status``, ``/toggle-debug``.

They run like user commands (inside the router's middleware) but only when no
user command has the name. ``/status`` finds the running monitor through
`weixin_trio._monitor.current`; ``/toggle-debug`` uses the message's store, else that
monitor's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from .._monitor.current import running_monitor
from . import delivery as _delivery
from .debug import DebugModes, traced
from .routes import CommandRoute

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .._client.message import Message
    from .._proto.commands import Command
    from .routes import HelpEntry

    Call = Callable[[Message], Awaitable[None]]

__all__ = ["Builtins", "render_help"]


class Builtins:
    """The built-in command routes of one router, and its debug switches."""

    def __init__(self, help_entries: Callable[[], list[HelpEntry]]) -> None:
        self._help_entries = help_entries
        self.debug = DebugModes()
        self.routes = (
            CommandRoute(("echo",), self.echo, "Reply with TEXT, plus latency statistics."),
            CommandRoute(("help",), self.help, "List the commands."),
            CommandRoute(("status",), self.status, "Show the monitor's statistics."),
            CommandRoute(
                ("toggle-debug",),
                self.toggle_debug,
                "Turn the timing trace on replies on or off (per account).",
            ),
        )

    def match(self, command: Command) -> Call | None:
        """The built-in answering ``command``, if any."""
        for route in self.routes:
            if command.name in route.names:
                return route.match(command)
        return None

    async def prepare(self, message: Message, delivery: _delivery.Delivery) -> Message:
        """``message``, traced while debug mode is on for its account.

        Cancellation:
            Propagates (a store read may be under way).
        """
        try:
            account = message.client.account_id
        except RuntimeError:  # a message built without a client
            return message
        if not await self.debug.enabled(account, _store(message)):
            return message
        return traced(message, delivery)

    async def echo(self, message: Message, command: Command) -> None:
        """``/echo TEXT``: TEXT, then "⏱ inbound→handler … · send …"."""
        delivery = _delivery.CURRENT.get()
        inbound = None if delivery is None else delivery.inbound_latency
        stats = f"⏱ inbound→handler {_delivery.format_latency(inbound)}"
        if command.raw_args:
            start = trio.current_time()
            await message.reply(command.raw_args)
            stats += f" · send {_delivery.format_duration(trio.current_time() - start)}"
        await message.reply(stats)

    async def help(self, message: Message, command: Command) -> None:
        """``/help``: every command of the router with its description."""
        del command
        await message.reply(render_help(self._help_entries()))

    async def status(self, message: Message, command: Command) -> None:
        """``/status``: the running monitor's counters."""
        del command
        running = running_monitor()
        if running is None:
            await message.reply("No monitor statistics here (the router runs outside a monitor).")
            return
        s = running.monitor.statistics()
        await message.reply(
            f"Account {running.monitor.account_id}\n"
            f"handled {s.handled} · failed {s.failed} · dead-lettered {s.dead_lettered}"
            f" · refused {s.refused} · interrupted {s.interrupted}\n"
            f"in flight {s.in_flight} · pending {s.pending} · lanes {s.lanes}\n"
            f"accepted {s.accepted} · redelivered {s.redelivered}"
            f" · duplicates {s.duplicates} · filtered {s.filtered} · malformed {s.malformed}\n"
            f"polls {s.polls} · poll failures {s.poll_failures}"
            f" · stale tokens {s.stale_tokens} · store failures {s.store_failures}"
        )

    async def toggle_debug(self, message: Message, command: Command) -> None:
        """``/toggle-debug``: flip this account's debug mode (kept in the store)."""
        del command
        on = await self.debug.toggle(message.client.account_id, _store(message))
        await message.reply(
            "Debug mode on: replies carry a timing trace." if on else "Debug mode off."
        )


def _store(message: Message) -> object | None:
    """The message's store (``msg.store``, where messages carry one), else the monitor's."""
    store: object | None = getattr(message, "store", None)
    if store is not None:
        return store
    running = running_monitor()
    return None if running is None else running.store


def render_help(entries: list[HelpEntry]) -> str:
    """The ``/help`` text: one line per command, ``/name (/alias) — description``."""
    if not entries:
        return "No commands."
    lines = ["Commands:"]
    for entry in entries:
        names = f"/{entry.names[0]}"
        if entry.names[1:]:
            names += " (" + ", ".join(f"/{n}" for n in entry.names[1:]) + ")"
        lines.append(f"{names} — {entry.description}" if entry.description else names)
    return "\n".join(lines)
