"""Send hooks: ``before_send`` rewrites or cancels a send, ``after_send`` observes it.

``open_client(before_send=..., after_send=...)`` takes a callable or a sequence of
them; each may be a plain or an ``async`` function. They run once per logical send:
a text split into several messages, a media send with its caption and upload, and
every retry of a message (``send_retry``) are one send. A handler retried by the
monitor sends again, so its sends run the hooks again.

- ``before_send(outgoing) -> Outgoing | None``: the hooks run in order, each getting
  the previous one's result. ``None`` cancels the send: nothing goes out, the user's
  send window is not charged, and the send returns a
  [`SendResult`][weixin_trio.SendResult] with ``cancelled=True`` (and an empty
  ``client_id``). A hook that raises fails the send with
  [`SendHookError`][weixin_trio.SendHookError] (its exception chained); so does one
  that changes the recipient or the kind, or returns something else.
- ``after_send(report)``: a [`SendReport`][weixin_trio.SendReport] for every send that
  finished: sent, failed (``error`` set; the error still reaches the caller) or
  cancelled by a hook. Its exceptions are logged and swallowed. A send cancelled by
  trio (``trio.Cancelled``) runs no ``after_send`` hook.

Raw ``client.send_message(msg)`` calls and agent-run progress items do not run the
hooks (they are not texts or media a hook could rewrite).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, final

import trio

from .._errors import SendHookError
from .._proto.client_ids import SendResult
from .._proto.outgoing import Outgoing, SendReport

if TYPE_CHECKING:
    from collections.abc import Awaitable

__all__ = ["AfterSend", "BeforeSend", "SendHooks", "hook_tuple"]

log = logging.getLogger("weixin_trio.hooks")

#: ``before_send(outgoing) -> outgoing | None``, plain or ``async``.
BeforeSend: TypeAlias = "Callable[[Outgoing], Outgoing | Awaitable[Outgoing | None] | None]"
#: ``after_send(report)``, plain or ``async``.
AfterSend: TypeAlias = "Callable[[SendReport], Awaitable[None] | None]"


def hook_tuple(hooks: Any) -> tuple[Any, ...]:
    """``None``, one callable, or a sequence of callables, as a tuple."""
    if hooks is None:
        return ()
    if callable(hooks):
        return (hooks,)
    if isinstance(hooks, Sequence) and all(callable(h) for h in hooks):
        return tuple(hooks)
    raise TypeError("send hooks must be a callable or a sequence of callables")


def _name(hook: object) -> str:
    return getattr(hook, "__qualname__", None) or type(hook).__name__


@final
class SendHooks:
    """The hooks of one client (see the module docstring)."""

    __slots__ = ("after", "before")

    def __init__(self, before: Any = None, after: Any = None) -> None:
        self.before: tuple[BeforeSend, ...] = hook_tuple(before)
        self.after: tuple[AfterSend, ...] = hook_tuple(after)

    def __bool__(self) -> bool:
        return bool(self.before or self.after)

    async def run(
        self, outgoing: Outgoing, perform: Callable[[Outgoing], Awaitable[SendResult]]
    ) -> SendResult:
        """Run the ``before_send`` hooks, the send (``perform``), then ``after_send``.

        Raises:
            SendHookError: A ``before_send`` hook raised or broke the rules.

        Cancellation:
            Propagates; no ``after_send`` hook runs for a send cancelled by trio.
        """
        start = trio.current_time()
        final = await self._before(outgoing)
        if final is None:
            result = SendResult(client_id="", cancelled=True)
            await self._after(SendReport(outgoing, result, None, trio.current_time() - start))
            return result
        try:
            result = await perform(final)
        except Exception as exc:
            await self._after(SendReport(final, None, exc, trio.current_time() - start))
            raise
        await self._after(SendReport(final, result, None, trio.current_time() - start))
        return result

    async def _before(self, outgoing: Outgoing) -> Outgoing | None:
        current = outgoing
        for hook in self.before:
            try:
                value = hook(current)
                if inspect.isawaitable(value):
                    value = await value
            except Exception as exc:
                raise SendHookError(
                    f"before_send hook {_name(hook)} raised {type(exc).__name__}"
                ) from exc
            if value is None:
                log.debug("before_send hook %s cancelled a send", _name(hook))
                return None
            if not isinstance(value, Outgoing):
                raise SendHookError(
                    f"before_send hook {_name(hook)} returned {type(value).__name__},"
                    " not an Outgoing or None"
                )
            if value.to != outgoing.to or value.kind != outgoing.kind:
                raise SendHookError(
                    f"before_send hook {_name(hook)} changed the recipient or kind of a send"
                )
            current = value
        return current

    async def _after(self, report: SendReport) -> None:
        for hook in self.after:
            try:
                value = hook(report)
                if inspect.isawaitable(value):
                    await value
            except Exception:
                log.exception("after_send hook %s failed", _name(hook))
