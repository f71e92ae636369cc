"""The typing indicator: ticket lookup, keep-alive and a guaranteed cancel."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import trio

from . import _wire as w
from ._errors import WeixinError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ._api import ILinkClient

__all__ = ["KEEPALIVE", "typing_indicator", "typing_ticket"]

log = logging.getLogger("weixin_trio.typing")

#: Seconds between two "typing" signals while the body runs (the reference host's 5 s).
KEEPALIVE = 5.0
#: Deadline of one getconfig / sendtyping call made on the bot's behalf.
CALL_TIMEOUT = 10.0
#: Deadline of the final "cancel typing", sent even when the body is cancelled.
CANCEL_TIMEOUT = 3.0


async def typing_ticket(
    client: ILinkClient, user_id: str, context_token: str | None = None
) -> str | None:
    """The user's typing ticket from the per-user cache, fetching it when due.

    Never raises for a failed ``getconfig``: returns the previous ticket (or ``None``).

    Cancellation:
        Safe.
    """
    cache = client.config_cache
    now = trio.current_time()
    if cache.needs_fetch(user_id, now):
        try:
            with trio.fail_after(CALL_TIMEOUT):
                resp = await client.get_config(user_id, context_token)
        except (WeixinError, trio.TooSlowError) as exc:
            delay = cache.record_failure(user_id, now)
            log.info("getconfig for %s failed (%s); next try in %.0fs", user_id, exc, delay)
        else:
            cache.record_success(user_id, resp.typing_ticket, now)
    return cache.ticket(user_id) or None


async def _send(client: ILinkClient, user_id: str, ticket: str, status: w.TypingStatus) -> None:
    try:
        with trio.fail_after(CALL_TIMEOUT):
            await client.send_typing(user_id, ticket, status)
    except (WeixinError, trio.TooSlowError) as exc:
        log.info("sendtyping(%s) for %s failed: %s", status.name, user_id, exc)


async def _keep_alive(client: ILinkClient, user_id: str, ticket: str, every: float) -> None:
    while True:
        await _send(client, user_id, ticket, w.TypingStatus.TYPING)
        await trio.sleep(every)


@asynccontextmanager
async def typing_indicator(
    client: ILinkClient,
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
    ticket = await typing_ticket(client, user_id, context_token)
    if not ticket:
        yield
        return
    # The keep-alive runs in the client's background nursery, not in a nursery of our
    # own around the ``yield``: errors of the block then reach the caller unwrapped.
    keepalive_scope = client.start_background(_keep_alive, client, user_id, ticket, keepalive)
    try:
        yield
    finally:
        keepalive_scope.cancel()
        with trio.CancelScope(shield=True), trio.move_on_after(CANCEL_TIMEOUT):
            await _send(client, user_id, ticket, w.TypingStatus.CANCEL)
