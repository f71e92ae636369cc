"""``open_client``: owns the HTTP clients and the sender tasks of one bot account.

It builds the client's components (no inheritance): the account's `LiveState`, the
`Endpoints` layer, the `Messenger` and the `Sender` (queue, sender tasks, governor),
and the `ILinkClient` facade that holds them.
"""

from __future__ import annotations

import functools
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

import httpx
import trio

from .._proto.headers import sanitize_bot_agent
from .._proto.log_redaction import install_httpx_log_redaction
from .._proto.send_windows import SendWindowPolicy, SendWindows
from .._util import unwrap_single_error
from .._version import __version__
from ..cdn import DEFAULT_CDN_HOSTS
from .endpoints import Endpoints
from .ilink_client import DEFAULT_BASE_URL, DEFAULT_CDN_BASE_URL, ILinkClient
from .messenger import Messenger
from .pacing import Pacing, SendGovernor
from .sender import Sender, SendRetryPolicy
from .state import LiveState

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncIterator, Collection, Mapping

__all__ = ["DEFAULT_BOT_AGENT", "AccountLike", "open_client"]


class AccountLike(Protocol):
    """What a client and the account runner need of an account (`login.Account` fits)."""

    @property
    def account_id(self) -> str: ...

    @property
    def token(self) -> str: ...

    @property
    def base_url(self) -> str: ...


install_httpx_log_redaction()

DEFAULT_BOT_AGENT = f"weixin-trio/{__version__}"
DEFAULT_PACING = Pacing()
DEFAULT_SEND_RETRY = SendRetryPolicy()
DEFAULT_SEND_WINDOW = SendWindowPolicy()

# Safety nets only; deadlines are trio cancel scopes. sendmessage/getuploadurl use 15 s
# in the references and getconfig 10 s; 30 s leaves room for a slow but live server.
_API_TIMEOUT = httpx.Timeout(30.0, connect=15.0)
_LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=16)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context for every client this process creates (loading CAs costs ~1 MiB)."""
    return httpx.create_ssl_context()


@asynccontextmanager
async def open_client(
    *,
    token: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    cdn_base_url: str = DEFAULT_CDN_BASE_URL,
    account_id: str | None = None,
    http_client: httpx.AsyncClient | None = None,
    poll_http_client: httpx.AsyncClient | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    bot_agent: str | None = None,
    route_tag: str | int | None = None,
    app_id: str = "bot",
    context_tokens: Mapping[str, str] | None = None,
    senders: int = 4,
    pacing: Pacing | None = DEFAULT_PACING,
    send_retry: SendRetryPolicy | None = DEFAULT_SEND_RETRY,
    send_window: SendWindowPolicy | None = DEFAULT_SEND_WINDOW,
    markdown: bool = True,
    text_limit: int = 4000,
    cdn_hosts: Collection[str] | None = None,
    account: AccountLike | None = None,
) -> AsyncIterator[ILinkClient]:
    """Open a client for one bot account.

    Args:
        token: The ``bot_token`` from QR login. ``None`` only for the QR endpoints.
        base_url: The account's API base (the ``baseurl`` from login).
        cdn_base_url: The CDN base for media.
        account_id: Name of the account in logs, stores and reply ids (default: a
            hash-free label derived from nothing secret, ``"default"``).
        http_client: An ``httpx.AsyncClient`` to use for every request but the long
            poll. It is honoured as given (its timeouts, proxies, transport) and not
            closed by this function.
        poll_http_client: A client for the long poll. Default: a dedicated client (own
            connection pool) with a read timeout longer than the server's hold; when
            only ``http_client`` is given, that client is used with a per-request
            long-poll timeout.
        transport: An httpx transport for both clients created here, e.g.
            ``FakeILinkServer.transport()`` in tests.
        bot_agent: ``base_info.bot_agent``; sanitised per PROTOCOL §1.5.
        route_tag: ``SKRouteTag`` header value, when your deployment needs one.
        app_id: ``iLink-App-Id``.
        context_tokens: Known context tokens per user (restored from a store).
        senders: Number of sender tasks serving this account's sends.
        pacing: The send governor's token bucket (default: conservative limits under
            the live throttle); ``None`` switches pacing off.
        send_retry: How sends retry transient failures (5xx, connection errors, no
            answer, ``-2`` after the cool-down) with the same ``client_id``, so the
            message is shown once. Default: capped, jittered backoff from 1 s to 30 s
            for up to 5 minutes, at most 3 answers of ``-2`` per message. ``None``
            raises the first failure.
        send_window: Per-user send window limits (24 h / 10 sends per inbound message
            by default); ``None`` switches the check off.
        markdown: Filter outbound text through `weixin_trio.markdown.filter_markdown`.
        text_limit: Longest text message; longer texts are split.
        account: A stored account (e.g. `weixin_trio.login.Account`): its token,
            base URL and id are used unless given explicitly.
        cdn_hosts: Hosts media may be fetched from or uploaded to. Default: the host
            of ``cdn_base_url`` and the WeChat CDN; server-supplied full URLs pointing
            anywhere else are refused.

    Yields:
        The [`ILinkClient`][weixin_trio.ILinkClient].

    Exceptions: one exception from the block (yours, or an internal failure) reaches
    the caller as itself, not wrapped in an ``ExceptionGroup``; several at once arrive
    as one ``ExceptionGroup`` of them.

    Cancellation:
        Leaving the block closes the HTTP clients this function created; in-flight
        sends are aborted.
    """
    if account is not None:
        token = token or account.token
        if base_url == DEFAULT_BASE_URL:
            base_url = account.base_url
        account_id = account_id or account.account_id
    injected = http_client is not None
    with unwrap_single_error():
        async with AsyncExitStack() as stack:
            if http_client is None:
                http_client = await stack.enter_async_context(
                    httpx.AsyncClient(
                        transport=transport,
                        timeout=_API_TIMEOUT,
                        limits=_LIMITS,
                        verify=_ssl_context(),
                    )
                )
            if poll_http_client is None:
                if transport is not None or not injected:
                    poll_http_client = await stack.enter_async_context(
                        httpx.AsyncClient(
                            transport=transport, timeout=_API_TIMEOUT, verify=_ssl_context()
                        )
                    )
                else:
                    poll_http_client = http_client
            state = LiveState(
                context_tokens=context_tokens,
                send_windows=None if send_window is None else SendWindows(send_window),
            )
            endpoints = Endpoints(
                token=token.strip() if token else None,
                base_url=base_url,
                cdn_base_url=cdn_base_url,
                account_id=account_id or "default",
                http=http_client,
                poll_http=poll_http_client,
                app_id=app_id,
                version=__version__,
                bot_agent=sanitize_bot_agent(bot_agent, default=DEFAULT_BOT_AGENT)
                if bot_agent
                else DEFAULT_BOT_AGENT,
                route_tag=None if route_tag is None else str(route_tag),
                state=state,
                cdn_hosts=frozenset(cdn_hosts)
                if cdn_hosts is not None
                else DEFAULT_CDN_HOSTS | {urlsplit(cdn_base_url).hostname or ""} - {""},
            )
            messenger = Messenger(endpoints, state, markdown=markdown, text_limit=text_limit)
            client = ILinkClient._create(endpoints, state, messenger)
            governor = None if pacing is None else SendGovernor(pacing)
            sender = Sender(
                endpoints.send_message, senders=senders, governor=governor, retry=send_retry
            )
            async with trio.open_nursery() as nursery:
                await nursery.start(sender.run)
                messenger.sender = sender
                try:
                    yield client
                finally:
                    messenger.sender = None
                    nursery.cancel_scope.cancel()
