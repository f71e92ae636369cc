"""``open_monitor`` and ``run_monitor``: the ways to run a [`Monitor`][weixin_trio.Monitor]."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from .._proto.backoff import Backoff
from .._util import unwrap_single_error
from ..store import MemoryStore
from .current import RUNNING, RunningMonitor
from .handler_runner import SHARED_RNG, default_retry_backoff
from .monitor import Monitor
from .values import check_handler, should_process

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from .. import _wire as w
    from .._client.ilink_client import ILinkClient
    from .._client.message import Message
    from .._proto.error_notices import ErrorNotices, NoticeText
    from ..store import Store
    from .values import ErrorHook, Handler, StaleTokenHook

__all__ = ["open_monitor", "run_monitor"]


def _default_lane_key(message: Message) -> str:
    return message.from_user_id


@asynccontextmanager
async def open_monitor(
    client: ILinkClient,
    handler: Handler,
    *,
    store: Store | None = None,
    max_concurrency: int = 16,
    max_pending: int = 128,
    max_attempts: int = 3,
    drain_timeout: float = 10.0,
    handler_timeout: float | None = None,
    stale_token_pause: float = 3600.0,
    should_process: Callable[[w.WeixinMessage], bool] = should_process,
    lane_key: Callable[[Message], str] = _default_lane_key,
    control: Callable[[Message], bool] | None = None,
    on_error: ErrorHook | None = None,
    on_token_stale: StaleTokenHook | None = None,
    backoff: Backoff | None = None,
    retry_backoff: Backoff | None = None,
    notify: bool = True,
    error_notice: ErrorNotices | NoticeText | None = None,
) -> AsyncIterator[Monitor]:
    """Run a monitor for ``client``'s account while the block runs.

    Yields once the journal is loaded, unfinished messages are queued for redelivery
    and the poll task is running. Leaving the block, [`Monitor.stop`][weixin_trio.Monitor.stop] and
    cancellation all stop it the same way: the parked long poll is aborted at once,
    running handlers get ``drain_timeout`` seconds, the journal is flushed and
    ``notifystop`` is sent (shielded, with a short deadline).

    Args:
        client: The account's client (from [`open_client`][weixin_trio.open_client]).
        handler: ``async def handler(msg: Message) -> None``, called once per message.
        store: Where the cursor and journal live; default a fresh `MemoryStore`
            (nothing survives the process; use [`FileStore`][weixin_trio.FileStore] for real bots).
        max_concurrency: Handlers running at once (one ``trio.CapacityLimiter``
            across all lanes).
        max_pending: The poll loop stops fetching while more accepted messages than
            this are unfinished (backpressure; at most one batch more is held).
        max_attempts: Handler runs per message before it is dead-lettered. Only real
            failures count: the handler raised (including a send that failed for good;
            transient send failures are retried by the send itself, see
            ``send_retry`` of `open_client`) or ran past ``handler_timeout``. A
            reply refused by the send window finishes the message (``refused``).
        drain_timeout: Seconds running handlers get at stop before they are cancelled.
        handler_timeout: Optional deadline of one handler run (counts as a failure).
        stale_token_pause: Seconds polling pauses after a ``-14`` (after one retry).
        should_process: Inbound filter (default: user messages, not recalled, not
            generating).
        lane_key: Key of the FIFO lane of a message (default: the sender).
        control: Messages matching it bypass their lane and run at once, e.g.
            ``lambda m: m.text == "/stop"`` with a handler calling
            [`Monitor.interrupt`][weixin_trio.Monitor.interrupt].
        on_error: ``async (message | None, exc)``, called for each handler failure and
            for each malformed message (``message`` is then ``None``; the error is a
            ``MalformedMessageError`` carrying the raw JSON).
        on_token_stale: ``async (StaleTokenInfo)``, called on every ``-14``.
        backoff: Delay policy for failed polls (default `Backoff`: 2 s, 2 s, 30 s).
        retry_backoff: Delay policy between attempts of a failing handler; each message
            starts a fresh streak (default: 1 s doubling up to 30 s, 20 % jitter).
        notify: Send ``notifystart``/``notifystop``.
        error_notice: Tell the sender when their message is given up (dead-lettered
            after ``max_attempts``): an [`ErrorNotices`][weixin_trio.ErrorNotices]
            with the texts per kind of failure (download, upload, send, internal), or
            ``(kind, error) -> text | None``. At most once per message, never after a
            permanent send failure. Default: no notice.

    Yields:
        The running [`Monitor`][weixin_trio.Monitor].

    Raises:
        TypeError: ``handler`` is a plain (not ``async``) function.
        MonitorCrashed: The store failed; nothing was acknowledged that was not
            journaled.

    Exceptions: one exception (yours from the body, or ``MonitorCrashed``) reaches the
    caller as itself, not wrapped in an ``ExceptionGroup``; several at once arrive as
    one ``ExceptionGroup`` of them.

    Cancellation:
        Cancelling the block stops the monitor as described above; every accepted
        message that did not finish stays in the store and is redelivered next time.
    """
    check_handler(handler)
    if max_concurrency < 1 or max_pending < 1 or max_attempts < 1:
        raise ValueError("max_concurrency, max_pending and max_attempts must be >= 1")
    monitor = Monitor._create(
        client=client,
        handler=handler,
        store=store if store is not None else MemoryStore(),
        max_concurrency=max_concurrency,
        max_pending=max_pending,
        max_attempts=max_attempts,
        drain_timeout=drain_timeout,
        handler_timeout=handler_timeout,
        stale_token_pause=stale_token_pause,
        should_process=should_process,
        lane_key=lane_key,
        control=control,
        on_error=on_error,
        on_token_stale=on_token_stale,
        backoff=backoff if backoff is not None else Backoff(rng=SHARED_RNG),
        retry_backoff=retry_backoff if retry_backoff is not None else default_retry_backoff(),
        notify=notify,
        error_notice=error_notice,
    )
    await monitor._load()
    # Handlers (and the body) find their monitor here: tasks copy the context.
    running = RUNNING.set(RunningMonitor(monitor, monitor._store))
    with unwrap_single_error():
        try:
            async with trio.open_nursery() as nursery:
                monitor._handling.nursery = nursery
                try:
                    await monitor._start(nursery)
                    with trio.CancelScope() as body:
                        monitor._body_scope = body
                        if monitor._stop_requested:
                            body.cancel()
                        yield monitor
                finally:
                    monitor._begin_stop()
        finally:
            RUNNING.reset(running)
            await monitor._shutdown()


async def run_monitor(
    client: ILinkClient,
    handler: Handler,
    *,
    task_status: trio.TaskStatus[Monitor] = trio.TASK_STATUS_IGNORED,
    **options: Any,
) -> None:
    """Run a monitor until cancelled or stopped, for callers that own a nursery.

    ``monitor = await nursery.start(run_monitor, client, handler)`` returns once the
    monitor is running. Options are those of [`open_monitor`][weixin_trio.open_monitor].

    Cancellation:
        As [`open_monitor`][weixin_trio.open_monitor].
    """
    async with open_monitor(client, handler, **options) as monitor:
        task_status.started(monitor)
        await trio.sleep_forever()
