"""Values of the monitor: its statistics snapshot, its hook signatures, the default filter."""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

from .. import _wire as w
from .._errors import MalformedMessageError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .._client.message import Message

__all__ = [
    "ErrorHook",
    "Handler",
    "MalformedMessageError",
    "MonitorCounters",
    "MonitorStatistics",
    "StaleTokenHook",
    "StaleTokenInfo",
    "check_handler",
    "should_process",
]

Handler: TypeAlias = "Callable[[Message], Awaitable[None]]"
ErrorHook: TypeAlias = "Callable[[Message | None, Exception], Awaitable[None]]"
StaleTokenHook: TypeAlias = "Callable[[StaleTokenInfo], Awaitable[None]]"


@attrs.frozen
class StaleTokenInfo:
    """Passed to ``on_token_stale``: the account's token got ``-14``.

    Attributes:
        account_id: The affected account.
        ret: ``ret`` of the response.
        errcode: ``errcode`` of the response.
        paused_until: ``trio.current_time()`` value until which polling pauses, or
            ``None`` when the monitor first retries once after ``notify_start``.
    """

    account_id: str
    ret: int | None
    errcode: int | None
    paused_until: float | None


@attrs.define
class MonitorCounters:
    """The monitor's running counters (mutable; `MonitorStatistics` snapshots them)."""

    polls: int = 0
    batches: int = 0
    accepted: int = 0
    redelivered: int = 0
    duplicates: int = 0
    filtered: int = 0
    malformed: int = 0
    handled: int = 0
    failed: int = 0
    dead_lettered: int = 0
    interrupted: int = 0
    timed_out: int = 0
    refused: int = 0
    poll_failures: int = 0
    stale_tokens: int = 0
    store_failures: int = 0
    last_poll_at: float | None = None
    last_message_at: float | None = None
    cursor_updated_at: float | None = None


@attrs.frozen
class MonitorStatistics(MonitorCounters):
    """A snapshot of a monitor's counters (times are ``trio.current_time()`` values).

    Attributes:
        polls: ``getupdates`` calls started.
        batches: Responses that carried at least one message.
        accepted: Messages journaled and dispatched (including redeliveries at start).
        redelivered: Unfinished messages redelivered from the store at start.
        duplicates: Messages dropped because their id was seen before.
        filtered: Messages dropped by ``should_process``.
        malformed: Messages that did not parse (reported to ``on_error``).
        handled: Handler runs that returned normally.
        failed: Handler runs that raised (every attempt counts).
        dead_lettered: Messages given up after ``max_attempts``.
        interrupted: Handler runs cancelled through `Monitor.interrupt`.
        timed_out: Handler runs cut by ``handler_timeout`` (also counted in ``failed``).
        refused: Messages whose handler ended with a reply refused by the send window
            ([`SendWindowClosedError`][weixin_trio.SendWindowClosedError]): finished, not retried.
        in_flight: Handlers running now.
        pending: Accepted messages not finished yet (queued + running).
        lanes: Lanes with work.
        poll_failures: Failed polls in total.
        consecutive_failures: Failed polls since the last success.
        stale_tokens: ``-14`` answers seen.
        store_failures: Store writes that failed because the store was unreachable
            (retried; nothing was acknowledged meanwhile).
        paused_until: End of the current stale-token pause, or ``None``.
        last_poll_at: When the last poll started.
        last_message_at: When the last message was accepted.
        cursor_updated_at: When the cursor last moved.
    """

    in_flight: int = 0
    pending: int = 0
    lanes: int = 0
    consecutive_failures: int = 0
    paused_until: float | None = None


def should_process(msg: w.WeixinMessage) -> bool:
    """The default inbound filter: messages from users, not recalled, not still generating.

    Unknown ``message_state`` values pass; a message without ``message_type`` does not
    (PROTOCOL §4.6).
    """
    if msg.message_type != w.MessageType.USER:
        return False
    if msg.delete_time_ms is not None and msg.delete_time_ms > 0:
        return False
    return msg.message_state != w.MessageState.GENERATING


def check_handler(handler: object) -> None:
    """Refuse a handler that cannot be awaited, when it is passed in, not per message.

    Accepted: an ``async def`` function or method, a ``functools.partial`` of one, an
    object whose ``__call__`` is ``async def`` (such as a router), and a ``lambda``
    (which may return an awaitable, e.g. ``lambda msg: trio.sleep(0)``).

    Raises:
        TypeError: ``handler`` is not callable, or is a plain ``def`` function, which
            would fail (and be dead-lettered) on every message.
    """
    if not callable(handler):
        raise TypeError(f"the handler must be an async function, not {type(handler).__name__}")
    target: Any = handler
    while isinstance(target, functools.partial):
        target = target.func
    if inspect.iscoroutinefunction(target) or getattr(target, "__name__", "") == "<lambda>":
        return
    if inspect.isfunction(target) or inspect.ismethod(target) or inspect.isbuiltin(target):
        name = getattr(target, "__qualname__", repr(target))
        raise TypeError(
            f"the handler {name} is a plain function; define it with `async def` "
            f"(it is awaited once per message)"
        )
