"""The typing indicator: ticket lookup, keep-alive and a guaranteed cancel.

It needs only the endpoint layer and the account's ticket cache, not the client. The
keep-alive runs in a nursery of the caller's block (errors of the block reach the
caller unwrapped, see `weixin_trio._util.unwrap_single_error`).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import trio

from .. import _wire as w
from .._errors import WeixinError
from .._util import unwrap_single_error

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from .._proto.typing_tickets import ConfigCache
    from .endpoints import Endpoints

__all__ = ["KEEPALIVE", "typing_indicator", "typing_ticket"]

log = logging.getLogger("weixin_trio.typing")

#: Seconds between two "typing" signals while the body runs (the reference host's 5 s).
KEEPALIVE = 5.0
#: Deadline of one getconfig / sendtyping call made on the bot's behalf.
CALL_TIMEOUT = 10.0
#: Deadline of the final "cancel typing", sent even when the body is cancelled.
CANCEL_TIMEOUT = 3.0


async def typing_ticket(
    endpoints: Endpoints, cache: ConfigCache, user_id: str, context_token: str | None = None
) -> str | None:
    """The user's typing ticket from the per-user cache, fetching it when due.

    Never raises for a failed ``getconfig``: returns the previous ticket (or ``None``).

    Cancellation:
        Safe.
    """
    now = trio.current_time()
    if cache.needs_fetch(user_id, now):
        try:
            with trio.fail_after(CALL_TIMEOUT):
                resp = await endpoints.get_config(user_id, context_token)
        except (WeixinError, trio.TooSlowError) as exc:
            delay = cache.record_failure(user_id, now)
            log.info("getconfig for %s failed (%s); next try in %.0fs", user_id, exc, delay)
        else:
            cache.record_success(user_id, resp.typing_ticket, now)
    return cache.ticket(user_id) or None


async def _send(endpoints: Endpoints, user_id: str, ticket: str, status: w.TypingStatus) -> None:
    try:
        with trio.fail_after(CALL_TIMEOUT):
            await endpoints.send_typing(user_id, ticket, status)
    except (WeixinError, trio.TooSlowError) as exc:
        log.info("sendtyping(%s) for %s failed: %s", status.name, user_id, exc)


async def _keep_alive(endpoints: Endpoints, user_id: str, ticket: str, every: float) -> None:
    while True:
        await _send(endpoints, user_id, ticket, w.TypingStatus.TYPING)
        await trio.sleep(every)


@asynccontextmanager
async def typing_indicator(
    endpoints: Endpoints,
    tickets: ConfigCache,
    user_id: str,
    *,
    context_token: str | None = None,
    keepalive: float = KEEPALIVE,
) -> AsyncIterator[None]:
    """Show "typing…" to ``user_id`` while the block runs.

    Sends "typing" at once and every ``keepalive`` seconds, and "cancel typing" on exit
    — also when the block raises or is cancelled (shielded, at most 3 s). Without a
    ticket (the server gave none, or ``getconfig`` failed) the block simply runs: typing
    problems never fail the caller.

    Cancellation:
        The block is cancelled normally; the final cancel is still sent.
    """
    ticket = await typing_ticket(endpoints, tickets, user_id, context_token)
    if not ticket:
        yield
        return
    with unwrap_single_error():
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_keep_alive, endpoints, user_id, ticket, keepalive)
                try:
                    yield
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            # After the keep-alive task ended, so "cancel typing" is always the last signal.
            with trio.CancelScope(shield=True), trio.move_on_after(CANCEL_TIMEOUT):
                await _send(endpoints, user_id, ticket, w.TypingStatus.CANCEL)
