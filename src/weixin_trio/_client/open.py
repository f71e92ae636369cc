"""``open_client``: owns the HTTP path and the sender tasks of one bot account.

It builds the client's components (no inheritance): the account's `LiveState`, the
`Endpoints` layer, the `Messenger` and the `Sender` (queue, sender tasks, governor),
and the `ILinkClient` facade that holds them.

HTTP: by default every client of one trio run uses the run's shared connection pool
(``weixin_trio._http``: h11 on trio streams; a parked account holds one connection,
sends share a few). With ``transport=`` the client gets its own pool whose streams are
answered in-process by that httpx transport; a user-supplied ``http_client`` takes the
httpx path. httpx is imported only for those and for CDN transfers.
"""

from __future__ import annotations

from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

import trio

from .._http.api import SplitHttp
from .._http.cdn_client import LazyCdnClient
from .._http.pool import Pool
from .._http.shared import shared_pool
from .._http.tls import ssl_context
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
from .send_hooks import SendHooks
from .sender import Sender, SendRetryPolicy
from .state import LiveState

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncIterator, Collection, Mapping, Sequence

    import httpx

    from .._http.api import Http
    from .._proto.address_policy import RemoteMediaPolicy
    from .send_hooks import AfterSend, BeforeSend

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


def _ssl_context() -> ssl.SSLContext:
    """One TLS context for every client this process creates (loading CAs costs ~1 MiB)."""
    return ssl_context()


async def _open_http(
    stack: AsyncExitStack,
    http_client: httpx.AsyncClient | None,
    poll_http_client: httpx.AsyncClient | None,
    transport: httpx.AsyncBaseTransport | None,
) -> Http:
    """The request path for the given options (see `open_client`)."""
    pool: Pool | None = None
    if http_client is None or (poll_http_client is None and transport is not None):
        if transport is not None:
            from .._http.transport_stream import transport_connector

            pool = Pool(transport_connector(transport))
            stack.push_async_callback(pool.aclose)
        else:
            pool = await stack.enter_async_context(shared_pool())
    if http_client is None and poll_http_client is None:
        assert pool is not None
        return pool
    from .._http.httpx_adapter import HttpxAdapter

    if http_client is None:
        assert pool is not None
        assert poll_http_client is not None
        return SplitHttp(pool, HttpxAdapter(poll_http_client))
    if poll_http_client is not None or pool is None:
        return HttpxAdapter(http_client, poll_http_client)
    return SplitHttp(HttpxAdapter(http_client), pool)


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
    before_send: BeforeSend | Sequence[BeforeSend] | None = None,
    after_send: AfterSend | Sequence[AfterSend] | None = None,
    remote_media: RemoteMediaPolicy | None = None,
) -> AsyncIterator[ILinkClient]:
    """Open a client for one bot account.

    Args:
        token: The ``bot_token`` from QR login. ``None`` only for the QR endpoints.
        base_url: The account's API base (the ``baseurl`` from login).
        cdn_base_url: The CDN base for media.
        account_id: Name of the account in logs, stores and reply ids (default: a
            hash-free label derived from nothing secret, ``"default"``).
        http_client: An ``httpx.AsyncClient`` to use for every request (and CDN
            transfers). This takes the httpx path instead of the lean built-in one;
            the client is honoured as given (its timeouts, proxies, transport) and not
            closed by this function.
        poll_http_client: An ``httpx.AsyncClient`` for the long poll (the httpx path
            too). Default: the built-in path, a connection of its own per parked poll
            with a deadline longer than the server's hold; when only ``http_client``
            is given, that client is used with a per-request long-poll timeout.
        transport: An httpx transport that answers every request of this client
            in-process, e.g. ``FakeILinkServer.transport()`` or
            ``httpx.MockTransport`` in tests. The built-in HTTP/1.1 code still runs
            (with a pool of its own); only the socket is replaced.
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
        before_send: ``(outgoing) -> outgoing | None`` (plain or ``async``), or a
            sequence of them run in order: rewrite a send (an
            [`Outgoing`][weixin_trio.Outgoing]: text, caption, file name, source) or
            cancel it (``None``: nothing is sent, the send window is not charged, and
            the send returns a ``SendResult`` with ``cancelled=True``). Runs once per
            logical send (a split text, a media send with its caption, a send's
            retries). A hook that raises fails the send with
            [`SendHookError`][weixin_trio.SendHookError].
        after_send: ``(report) -> None`` (plain or ``async``), or a sequence: sees a
            [`SendReport`][weixin_trio.SendReport] (outgoing, result or error,
            duration) for every finished send; its exceptions are logged and
            swallowed.
        remote_media: How media sends fetch ``http(s)`` URLs (default
            [`RemoteMediaPolicy()`][weixin_trio.RemoteMediaPolicy]: public addresses
            only, checked after DNS; 20 MiB; 5 redirects).

    Yields:
        The [`ILinkClient`][weixin_trio.ILinkClient].

    Exceptions: one exception from the block (yours, or an internal failure) reaches
    the caller as itself, not wrapped in an ``ExceptionGroup``; several at once arrive
    as one ``ExceptionGroup`` of them.

    Cancellation:
        Leaving the block closes the connections and clients this function created
        (the shared pool's when this was its last client); in-flight sends are
        aborted.
    """
    if account is not None:
        token = token or account.token
        if base_url == DEFAULT_BASE_URL:
            base_url = account.base_url
        account_id = account_id or account.account_id
    with unwrap_single_error():
        async with AsyncExitStack() as stack:
            http = await _open_http(stack, http_client, poll_http_client, transport)
            cdn_http = LazyCdnClient(http_client, transport)
            state = LiveState(
                context_tokens=context_tokens,
                send_windows=None if send_window is None else SendWindows(send_window),
            )
            endpoints = Endpoints(
                token=token.strip() if token else None,
                base_url=base_url,
                cdn_base_url=cdn_base_url,
                account_id=account_id or "default",
                http=http,
                cdn_http=cdn_http,
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
            stack.push_async_callback(endpoints.aclose)
            messenger = Messenger(
                endpoints,
                state,
                markdown=markdown,
                text_limit=text_limit,
                hooks=SendHooks(before_send, after_send),
                remote_media=remote_media,
            )
            client = ILinkClient._create(endpoints, state, messenger)
            governor = None if pacing is None else SendGovernor(pacing)
            sender = Sender(
                endpoints.send_message,
                senders=senders,
                governor=governor,
                retry=send_retry,
                metrics=state.send_metrics,
            )
            async with trio.open_nursery() as nursery:
                await nursery.start(sender.run)
                messenger.sender = sender
                try:
                    yield client
                finally:
                    messenger.sender = None
                    nursery.cancel_scope.cancel()
