"""The per-account outbound queue: a few sender tasks serve every send of an account.

httpx gets dearer per request when many tasks share one connection pool (DESIGN §11),
so handler tasks hand their sends to at most ``senders`` sender tasks instead of
each hitting the pool. Sender tasks start on demand (a send waits and no sender is
free) and exit after `SENDER_IDLE` seconds without work, so a parked account runs
none. The hand-off is a FIFO queue the sender tasks take from: a caller cancelled
before a sender took its message takes it back out, and nothing is sent.

A send that fails for a transient reason (HTTP 5xx, a connection error, no answer,
or ``ret -2`` once the governor's cool-down passed) is sent again with the **same**
``client_id`` after a capped, jittered backoff, for a bounded time
(`SendRetryPolicy`): WeChat shows a ``client_id`` once, so a retry never shows
a message twice (PROTOCOL §7.3). The retries run in the caller's task, so the
caller's cancel scope (a handler's timeout, a monitor's drain deadline) bounds them.
Permanent failures (4xx, other ``ret`` codes) are raised at once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, final

import attrs
import trio

from .._errors import ApiError, RateLimitedError, TransportError, _ClientClosing
from .._proto.backoff import Backoff
from .._proto.client_ids import SendResult
from .._proto.send_metrics import SendMetrics
from .._wire import WeixinMessage

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .pacing import SendGovernor

__all__ = ["SENDER_IDLE", "SEND_DEADLINE", "SendRetryPolicy", "Sender", "is_transient"]

log = logging.getLogger("weixin_trio.api")

#: A send without an answer after this long fails (the sender task moves on).
SEND_DEADLINE = 60.0
#: A sender task without work for this long exits (the next send starts one).
SENDER_IDLE = 5.0


@attrs.frozen
class SendRetryPolicy:
    """How a send retries transient failures, always with the same ``client_id``.

    Transient: HTTP 5xx, connection errors, no answer within 60 s, and ``ret -2``
    (throttled) once the send governor's cool-down passed. ``-2`` also means "the
    user's send window is closed" (PROTOCOL §7.1a), so after ``rate_limited_attempts``
    answers of ``-2`` for one message the send fails for good with the
    [`RateLimitedError`][weixin_trio.RateLimitedError]. Everything else (4xx, other ``ret``
    codes) fails at once.

    Args:
        retry_for: Seconds after the first attempt during which a retry may start
            (default 300: a server outage of several minutes costs no message).
        initial_delay: Delay before the first retry.
        max_delay: Cap of the exponentially growing delay.
        jitter: Relative jitter of each delay, in ``[0, 1)``.
        rate_limited_attempts: ``ret -2`` answers one message may get in total.
    """

    retry_for: float = attrs.field(default=300.0, validator=attrs.validators.ge(0))
    initial_delay: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    max_delay: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))
    jitter: float = attrs.field(
        default=0.2, validator=[attrs.validators.ge(0), attrs.validators.lt(1)]
    )
    rate_limited_attempts: int = attrs.field(default=3, validator=attrs.validators.ge(1))

    def backoff(self) -> Backoff:
        """A fresh delay schedule for one message's retries."""
        return Backoff(
            retry_delay=self.initial_delay,
            backoff_delay=max(self.max_delay, self.initial_delay),
            growth=2.0,
            jitter=self.jitter,
        )


def is_transient(exc: Exception) -> bool:
    """Whether a failed send may succeed if sent again (rate limits excluded)."""
    if isinstance(exc, TransportError):
        return True
    return (
        isinstance(exc, ApiError)
        and not isinstance(exc, RateLimitedError)
        and (exc.status_code >= 500)
    )


@attrs.define(eq=False)
class _Job:
    msg: WeixinMessage
    done: trio.Event = attrs.field(factory=trio.Event)
    taken: bool = False
    result: SendResult | None = None
    error: Exception | None = None


def _closing(what: str) -> _ClientClosing:
    return _ClientClosing(f"send aborted: the client is {what}", endpoint="ilink/bot/sendmessage")


@final
class Sender:
    """The send queue of one account: up to ``senders`` tasks, started by `run`'s nursery.

    It owns the queue, the sender tasks and the send governor (pacing, cool-down), and
    counts into ``metrics`` every attempt's latency and every ``ret -2``.
    """

    def __init__(
        self,
        send: Callable[[WeixinMessage], Awaitable[SendResult]],
        *,
        senders: int = 4,
        governor: SendGovernor | None = None,
        retry: SendRetryPolicy | None = None,
        metrics: SendMetrics | None = None,
    ) -> None:
        if senders < 1:
            raise ValueError("senders must be at least 1")
        self._send = send
        self._senders = senders
        self.governor = governor
        self.retry = retry
        self.metrics = metrics if metrics is not None else SendMetrics()
        self._closed = False
        self._jobs: dict[_Job, None] = {}  # FIFO; a cancelled caller takes its job out
        self._idle = trio.lowlevel.ParkingLot()  # sender tasks waiting for a job
        self._workers = 0
        self._nursery: trio.Nursery | None = None

    @property
    def workers(self) -> int:
        """Sender tasks running now (0 while the account sends nothing)."""
        return self._workers

    async def submit(self, msg: WeixinMessage) -> SendResult:
        """Send ``msg`` through a sender task, retrying transient failures.

        Every attempt carries ``msg``'s ``client_id``, so the message is shown once.

        Raises:
            RateLimitedError: ``-2`` for the ``rate_limited_attempts``-th time.
            TransportError: No success within ``retry_for`` (or retries are off).
            ApiError: A permanent failure, or a 5xx past ``retry_for``.

        Cancellation:
            Before a sender took the message: nothing is sent. After: the send completes
            in the sender task and its result is dropped. A cancelled wait between
            attempts sends nothing more.
        """
        retry = self.retry
        started = trio.current_time()
        backoff: Backoff | None = None
        rate_limited = 0
        while True:
            try:
                return await self._attempt(msg)
            except _ClientClosing:
                raise
            except RateLimitedError as exc:
                rate_limited += 1
                if retry is None or rate_limited >= retry.rate_limited_attempts:
                    raise
                # With a governor, the next attempt waits for its cool-down.
                wait = retry.initial_delay if self.governor is None else 0.0
                error: Exception = exc
            except (TransportError, ApiError) as exc:
                if retry is None or not is_transient(exc):
                    raise
                backoff = backoff or retry.backoff()
                wait = backoff.next_delay()
                error = exc
            if trio.current_time() + wait > started + retry.retry_for:
                raise error
            log.info(
                "sendmessage %s failed (%s); retrying in %.1fs with the same client_id",
                msg.client_id,
                error,
                wait,
            )
            await trio.sleep(wait)

    async def _attempt(self, msg: WeixinMessage) -> SendResult:
        if self._closed:
            raise _closing("closed")
        job = _Job(msg)
        self._jobs[job] = None
        self._wake()
        try:
            await job.done.wait()
        finally:
            if not job.taken:  # cancelled before a sender took it: nothing is sent
                del self._jobs[job]
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _wake(self) -> None:
        """A job waits: wake an idle sender task, or start one if fewer than ``senders``."""
        if self._idle:
            self._idle.unpark()
        elif self._nursery is not None and self._workers < self._senders:
            self._workers += 1
            self._nursery.start_soon(self._worker)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the sender tasks until cancelled; queued sends then fail as closing.

        Cancellation:
            The way to stop it: sends in flight are aborted.
        """
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for _ in range(min(len(self._jobs), self._senders)):
                    self._wake()  # sends queued before the start
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._closed = True
            self._nursery = None
            jobs, self._jobs = self._jobs, {}
            for job in jobs:
                job.taken = True
                job.error = _closing("closing")
                job.done.set()

    async def _worker(self) -> None:
        try:
            while True:
                while self._jobs:
                    job = next(iter(self._jobs))
                    del self._jobs[job]
                    job.taken = True
                    await self._serve(job)
                with trio.CancelScope(deadline=trio.current_time() + SENDER_IDLE) as idle:
                    await self._idle.park()
                if idle.cancelled_caught and not self._jobs:
                    return
        finally:
            self._workers -= 1

    async def _serve(self, job: _Job) -> None:
        try:
            if self.governor is not None:
                await self.governor.acquire()
            started = trio.current_time()
            try:
                with trio.CancelScope(deadline=started + SEND_DEADLINE) as deadline:
                    job.result = await self._send(job.msg)
            except Exception:  # an answer or a failure; a cancelled send is not timed
                self.metrics.observe(trio.current_time() - started)
                raise
            self.metrics.observe(trio.current_time() - started)
            if deadline.cancelled_caught:
                job.error = TransportError(
                    f"sendmessage: no answer within {SEND_DEADLINE:g} s",
                    endpoint="ilink/bot/sendmessage",
                )
        except RateLimitedError as exc:
            self.metrics.throttled += 1
            if self.governor is not None:
                self.governor.throttled()
            job.error = exc
        except Exception as exc:
            job.error = exc
        finally:
            if job.result is None and job.error is None:  # cancelled mid-send
                job.error = _closing("closing")
            job.done.set()
