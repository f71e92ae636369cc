"""``HandlerRunner``: one message's handler, with attempts, timeouts and dead letters.

The monitor and the Redis fan-out worker run handlers the same way, through this one
implementation:

- The handler runs at most ``max_attempts`` times (counting the attempts a previous
  run already made); between attempts a per-message [`Backoff`][weixin_trio.Backoff]
  (capped, jittered, exponential by default) waits.
- ``handler_timeout`` bounds one attempt; a timed-out attempt counts as a failure.
- Only real handler failures count: a refusal by the send window
  (`SendWindowClosedError`) is a final outcome (the reply cannot
  be shown, and retrying would not change that), an interrupt finishes the message,
  and a stop that cuts the handler leaves the message pending. Transient send
  failures never get here: sends retry them themselves (``send_retry`` of
  [`open_client`][weixin_trio.open_client]); a send that stayed failed past its retries counts.
- A message given up gets a [`DeadLetter`][weixin_trio.DeadLetter] whose ``error`` starts
  with its cause: ``handler``, ``timeout`` or ``send`` (the monitor also writes
  ``malformed`` ones).
- With an ``error_notice`` ([`ErrorNotices`][weixin_trio.ErrorNotices] or a callable),
  the sender of a message given up gets a short notice, classified download / upload /
  send / internal; never after a permanent send failure, and at most once per message
  (its ``client_id`` derives from the message id).

The host (monitor or worker) decides what a stop means through `RunHost`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, final

import attrs
import trio

from .._client.message import Message
from .._errors import ApiError, CdnError, SendWindowClosedError, TransportError
from .._proto.backoff import Backoff
from .._proto.client_ids import derived_client_ids
from .._proto.error_notices import (
    DEFAULT_NOTICE_TIMEOUT,
    ErrorNotices,
    notice_client_id,
    notice_kind,
    unreachable,
)
from ..store import DeadLetter

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from .._proto.error_notices import NoticeText
    from .values import ErrorHook, Handler

__all__ = [
    "SHARED_RNG",
    "Cause",
    "HandlerCounters",
    "HandlerRunner",
    "Job",
    "Outcome",
    "RunHost",
    "RunnerCounters",
    "default_retry_backoff",
    "failure_cause",
]

Cause = Literal["handler", "timeout", "send", "malformed"]

#: Endpoints whose failures are send failures (the message could not be shown).
_SEND_ENDPOINTS = frozenset({"ilink/bot/sendmessage", "ilink/bot/getuploadurl", "cdn"})


#: The jitter source of the default backoffs (one ``random.Random`` is ~3 KiB; an
#: account would otherwise hold two of them).
SHARED_RNG = random.Random()


def default_retry_backoff(initial: float = 1.0) -> Backoff:
    """The default delays between a failing handler's attempts.

    Exponential from ``initial`` (doubling), capped at 30 s, with 20 % jitter so that
    the handlers failing together (e.g. when a dependency is down) do not retry
    together.
    """
    return Backoff(
        retry_delay=initial,
        backoff_delay=max(30.0, initial),
        growth=2.0,
        jitter=0.2,
        rng=SHARED_RNG,
    )


def failure_cause(exc: Exception) -> Cause:
    """The cause class of an attempt's failure, as dead letters name it."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, CdnError):
        return "send"
    if isinstance(exc, ApiError | TransportError) and exc.endpoint in _SEND_ENDPOINTS:
        return "send"
    return "handler"


class HandlerCounters(Protocol):
    """The counters the runner keeps (the monitor's and the worker's have them)."""

    handled: int
    failed: int
    timed_out: int
    interrupted: int
    dead_lettered: int
    refused: int


@attrs.define
class RunnerCounters:
    """A plain set of `HandlerCounters` (the worker's)."""

    handled: int = 0
    failed: int = 0
    timed_out: int = 0
    interrupted: int = 0
    dead_lettered: int = 0
    refused: int = 0


@attrs.define(eq=False, kw_only=True)
class Job:
    """One message on its way through the runner.

    Attributes:
        message: The message the handler gets.
        raw: Its wire JSON (for the dead letter).
        attempts: Failed attempts so far (a redelivery continues the count).
        interrupted: Set by the host before it cancels `scope`.
        scope: The running attempt's cancel scope (``None`` between attempts).
    """

    message: Message
    raw: Mapping[str, Any]
    attempts: int = 0
    interrupted: bool = False
    scope: trio.CancelScope | None = None


@attrs.frozen
class Outcome:
    """How a run ended.

    Attributes:
        kind: ``handled`` (the handler returned), ``interrupted``, ``refused`` (the
            send window refused a reply), ``cut`` (a stop; the message stays
            pending) or ``dead`` (given up; see `dead_letter`).
        attempts: Failed attempts, including earlier runs'.
        error: The last error, if any.
        dead_letter: The dead letter to keep, for ``dead``.
    """

    kind: Literal["handled", "interrupted", "refused", "cut", "dead"]
    attempts: int
    error: Exception | None = None
    dead_letter: DeadLetter | None = None

    @property
    def finished(self) -> bool:
        """Whether the message is done with (not to be run again)."""
        return self.kind in ("handled", "interrupted", "refused")


class RunHost(Protocol):
    """What the runner needs from the monitor or worker that owns the message."""

    def attempt_scope(self) -> AbstractContextManager[trio.CancelScope]:
        """The scope one attempt of the handler runs in."""
        ...

    def wait_scope(self) -> AbstractContextManager[trio.CancelScope]:
        """The scope of the wait before the next attempt (a stop may end it early)."""
        ...

    def cut(self) -> bool:
        """After the attempt's scope caught a cancellation: whether a stop did it."""
        ...

    def stopping(self) -> bool:
        """Whether no further attempt may start (the message then stays pending)."""
        ...

    def failed(self, job: Job, attempts: int) -> None:
        """An attempt failed and another follows: e.g. record the count durably."""
        ...


def _account_of(message: Message) -> str:
    try:
        return message.client.account_id
    except RuntimeError:  # a message built without a client
        return "?"


@final
class HandlerRunner:
    """Runs handlers under one retry, timeout and dead-letter policy."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_attempts: int,
        handler_timeout: float | None,
        retry_backoff: Backoff,
        counters: HandlerCounters,
        on_error: ErrorHook | None = None,
        error_notice: ErrorNotices | NoticeText | None = None,
        name: str = "",
    ) -> None:
        """``name`` prefixes the log lines (the account); empty: each message's account."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.handler = handler
        self.max_attempts = max_attempts
        self.handler_timeout = handler_timeout
        self.retry_backoff = retry_backoff
        self.counters = counters
        self.on_error = on_error
        self.error_notice = error_notice
        self.name = name
        self._log = logging.getLogger("weixin_trio.handler")

    def _who(self, message: Message) -> str:
        return self.name or _account_of(message)

    async def run(self, job: Job, host: RunHost) -> Outcome:
        """Run ``job``'s handler until it succeeds, is given up, or a stop cuts it.

        With INFO enabled on ``weixin_trio.handler`` (``weixin-trio run -v``), logs one
        line per message: account, user, message id, outcome and duration (never the
        text).

        Cancellation:
            Cancellation from outside the host's scopes propagates (the message stays
            pending); a stop the host signals through its scopes gives ``cut``.
        """
        if not self._log.isEnabledFor(logging.INFO):  # nothing to log: no clock reads
            return await self._run(job, host)
        start = trio.current_time()
        outcome = await self._run(job, host)
        message = job.message
        duration = trio.current_time() - start
        who = self._who(message)
        self._log.info(
            "%s: message %d from %s: %s in %.3f s (%d failed attempts)",
            who,
            message.message_id,
            message.from_user_id,
            outcome.kind,
            duration,
            outcome.attempts,
            extra={
                "event": f"message_{outcome.kind}",
                "account_id": who,
                "message_id": message.message_id,
                "duration": round(duration, 6),
            },
        )
        return outcome

    async def _run(self, job: Job, host: RunHost) -> Outcome:
        backoff: Backoff | None = None  # a fresh streak per message, made on a failure
        attempts = job.attempts
        while True:
            result = await self._attempt(job, host)
            if result == "handled":
                self.counters.handled += 1
                return Outcome("handled", attempts)
            if result == "interrupted":
                self.counters.interrupted += 1
                return Outcome("interrupted", attempts)
            if result == "cut":
                return Outcome("cut", attempts)
            if isinstance(result, SendWindowClosedError):
                self.counters.refused += 1
                return Outcome("refused", attempts, result)
            attempts += 1
            if attempts >= self.max_attempts:
                outcome = self._give_up(job, attempts, result)
                await self.send_notice(job.message, result)
                return outcome
            host.failed(job, attempts)
            if backoff is None:
                backoff = attrs.evolve(self.retry_backoff)
            with host.wait_scope():
                await trio.sleep(backoff.next_delay())
            if host.stopping():
                return Outcome("cut", attempts, result)

    def _give_up(self, job: Job, attempts: int, error: Exception) -> Outcome:
        self.counters.dead_lettered += 1
        cause = failure_cause(error)
        letter = DeadLetter(
            job.message.message_id, job.raw, attempts, f"{cause}: {error!r}", time.time()
        )
        who = self._who(job.message)
        self._log.error(
            "%s: message %d dead-lettered after %d attempts (%s)",
            who,
            job.message.message_id,
            attempts,
            cause,
            extra={
                "event": "message_dead_lettered",
                "account_id": who,
                "message_id": job.message.message_id,
            },
        )
        return Outcome("dead", attempts, error, letter)

    async def _attempt(
        self, job: Job, host: RunHost
    ) -> Literal["handled", "interrupted", "cut"] | Exception:
        """Run the handler once."""
        outcome: Literal["handled"] | Exception = "handled"
        job.message.restart_replies()  # a retry reuses the failed attempt's client_ids
        with host.attempt_scope() as scope:
            job.scope = scope
            if self.handler_timeout is not None:
                scope.deadline = min(scope.deadline, trio.current_time() + self.handler_timeout)
            try:
                await self.handler(job.message)
            except SendWindowClosedError as exc:
                outcome = exc
                self._log.warning(
                    "%s: message %d: the send window refused a reply: %s",
                    self._who(job.message),
                    job.message.message_id,
                    exc,
                )
                await self.report(job.message, exc)
            except Exception as exc:
                outcome = exc
                self.counters.failed += 1
                self._log.warning(
                    "%s: handler failed for message %d: %s: %s",
                    self._who(job.message),
                    job.message.message_id,
                    type(exc).__name__,
                    exc,
                )
                await self.report(job.message, exc)
        job.scope = None
        if not scope.cancelled_caught:
            return outcome
        if job.interrupted:
            return "interrupted"
        if host.cut():
            return "cut"
        self.counters.failed += 1
        self.counters.timed_out += 1
        timeout = TimeoutError(f"handler exceeded handler_timeout={self.handler_timeout}s")
        self._log.warning(
            "%s: handler timed out for message %d", self._who(job.message), job.message.message_id
        )
        await self.report(job.message, timeout)
        return timeout

    async def send_notice(self, message: Message, error: Exception) -> None:
        """Tell the sender their message failed for good (if ``error_notice`` says so).

        Skipped when the failure says the user cannot be reached. The notice's own
        failure (or its ``timeout``) is logged, never raised.

        Cancellation:
            Propagates; the notice may or may not have been shown.
        """
        notice = self.error_notice
        if notice is None or unreachable(error):
            return
        kind = notice_kind(error)
        if isinstance(notice, ErrorNotices):
            text, timeout = notice.text_for(kind, error), notice.timeout
        else:
            text, timeout = notice(kind, error), DEFAULT_NOTICE_TIMEOUT
        if not text:
            return
        try:
            messenger = message.client._messenger
        except RuntimeError:  # a message without a client
            return
        ids = derived_client_ids(notice_client_id(_account_of(message), message.message_id))
        with trio.move_on_after(timeout) as scope:
            try:
                await messenger.send_text(
                    message.from_user_id,
                    text,
                    context_token=message.context_token,
                    client_ids=lambda: next(ids),
                )
            except Exception as exc:
                self._log.warning(
                    "%s: message %d: the %s error notice failed: %s",
                    self._who(message),
                    message.message_id,
                    kind,
                    type(exc).__name__,
                )
                return
        if scope.cancelled_caught:
            self._log.warning(
                "%s: message %d: the %s error notice timed out",
                self._who(message),
                message.message_id,
                kind,
            )
        else:
            self._log.info(
                "%s: message %d: sent the %s error notice",
                self._who(message),
                message.message_id,
                kind,
            )

    async def report(self, message: Message | None, exc: Exception) -> None:
        """Call the ``on_error`` hook; its own failures are logged, never raised.

        Cancellation:
            Propagates out of the hook.
        """
        if self.on_error is None:
            return
        try:
            await self.on_error(message, exc)
        except Exception:
            self._log.exception(
                "%s: on_error hook failed", self.name if message is None else self._who(message)
            )
