"""The endpoint layer: one async method per endpoint, one error choke point.

`ILinkClient` holds an `Endpoints` and forwards its endpoint methods to it; the
helpers that only talk to the server or the CDN (media transfer, typing) take it
instead of the whole client. It knows nothing of high-level sends. Every request goes
through `Endpoints._call`, which builds headers, encodes the body, performs the request
and translates every failure into the tree of ``weixin_trio._errors``. Nothing here has
a ``timeout=`` argument: callers scope with trio (``trio.move_on_after``); the HTTP
layer's deadlines are only a safety net.

Request heads are cheap: the static headers of the account (PROTOCOL §1.4: content
type, ``AuthorizationType``, the bearer token, app id, client version, route tag) are
encoded once, as bytes, when the object is built; per request only ``X-WECHAT-UIN``
(fresh for every POST), ``Host`` and ``Content-Length`` are added. httpx is not
imported here (the HTTP layer is ``weixin_trio._http``).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Final, TypeVar, final

import attrs

from .. import _wire as w
from .._errors import (
    RATE_LIMITED,
    STALE_TOKEN,
    ApiError,
    ProtocolError,
    RateLimitedError,
    StaleTokenError,
    TransportError,
)
from .._http.target import Target
from .._proto.client_ids import SendResult
from .._proto.headers import common_headers, get_headers, join_url, post_headers, x_wechat_uin
from .._proto.redact import Secret, redact_body
from .state import DEFAULT_LONG_POLL_MS

if TYPE_CHECKING:
    from collections.abc import Mapping

    import httpx

    from .._http.api import Http
    from .._http.cdn_client import LazyCdnClient
    from .state import LiveState

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_CDN_BASE_URL", "DEFAULT_LONG_POLL_MS", "Endpoints"]

log = logging.getLogger("weixin_trio.api")

DEFAULT_BASE_URL: Final = "https://ilinkai.weixin.qq.com"
DEFAULT_CDN_BASE_URL: Final = "https://novac2c.cdn.weixin.qq.com/c2c"

EP_GETUPDATES: Final = "ilink/bot/getupdates"
EP_SENDMESSAGE: Final = "ilink/bot/sendmessage"
EP_GETUPLOADURL: Final = "ilink/bot/getuploadurl"
EP_GETCONFIG: Final = "ilink/bot/getconfig"
EP_SENDTYPING: Final = "ilink/bot/sendtyping"
EP_NOTIFYSTART: Final = "ilink/bot/msg/notifystart"
EP_NOTIFYSTOP: Final = "ilink/bot/msg/notifystop"
EP_GET_BOT_QRCODE: Final = "ilink/bot/get_bot_qrcode"
EP_GET_QRCODE_STATUS: Final = "ilink/bot/get_qrcode_status"

_DECIMAL_RE: Final = re.compile(r"-?[0-9]+")
_UIN: Final = "X-WECHAT-UIN"
# Safety nets only: the real deadlines are the callers' trio scopes. sendmessage and
# getuploadurl use 15 s in the references and getconfig 10 s; 30 s leaves room for a
# slow but live server.
_REQUEST_DEADLINE: Final = 30.0


def _encode_headers(headers: Mapping[str, str]) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode("utf-8")


def _split_at_uin(headers: Mapping[str, str]) -> tuple[bytes, bytes]:
    """The encoded header lines before and after ``X-WECHAT-UIN`` (order kept)."""
    names = list(headers)
    at = names.index(_UIN)
    before = {k: headers[k] for k in names[:at]}
    after = {k: headers[k] for k in names[at + 1 :]}
    return _encode_headers(before), _encode_headers(after)


T = TypeVar("T")


@final
class Endpoints:
    """One method per endpoint of one account, and the error choke point (`_call`).

    Attributes:
        base_url: The account's API base.
        cdn_base_url: The CDN base for media.
        account_id: The account's name in logs.
        cdn_hosts: Hosts media may be fetched from or uploaded to.
    """

    def __init__(
        self,
        *,
        token: str | None,
        base_url: str,
        cdn_base_url: str,
        account_id: str,
        http: Http,
        cdn_http: LazyCdnClient,
        app_id: str,
        version: str,
        bot_agent: str,
        route_tag: str | None,
        state: LiveState,
        cdn_hosts: frozenset[str] = frozenset(),
    ) -> None:
        self._token = Secret(token) if token else None
        self.cdn_hosts = cdn_hosts
        self.base_url = base_url
        self.cdn_base_url = cdn_base_url
        self.account_id = account_id
        self._http = http
        self._cdn_http = cdn_http
        self._base_info = w.BaseInfo(channel_version=version, bot_agent=bot_agent)
        self._common = common_headers(app_id=app_id, client_version=version, route_tag=route_tag)
        self._state = state
        # The static part of every request head, encoded once (validated by post_headers).
        self._post_auth = _split_at_uin(
            post_headers(
                token=self._token.get() if self._token else None, common=self._common, uin=""
            )
        )
        self._post_anon = _split_at_uin(post_headers(token=None, common=self._common, uin=""))
        self._get_head = _encode_headers(get_headers(self._common))
        self._targets: dict[tuple[str, str], Target] = {}

    def __repr__(self) -> str:
        return f"<Endpoints account={self.account_id!r} base_url={self.base_url!r}>"

    @property
    def cdn_http(self) -> httpx.AsyncClient:
        """The httpx client used for CDN transfers (no iLink headers are sent there).

        Created on first use: an account that never transfers media owns none.
        """
        return self._cdn_http.get()

    async def aclose(self) -> None:
        """Close the CDN client if one was created here.

        Cancellation:
            The close is shielded (it only closes connections).
        """
        await self._cdn_http.aclose()

    @property
    def base_info(self) -> w.BaseInfo:
        """The ``base_info`` object sent in every authenticated body."""
        return self._base_info

    # --- the choke point ----------------------------------------------------------

    async def _call(
        self,
        endpoint: str,
        body: object | None,
        resp_cls: type[T],
        *,
        method: str = "POST",
        params: Mapping[str, str] | None = None,
        base_url: str | None = None,
        authenticated: bool = True,
        allow_empty: bool = False,
        require_ret_zero: bool = False,
        long_poll: bool = False,
    ) -> tuple[T, dict[str, Any]]:
        base = base_url or self.base_url
        try:
            if params:
                target = Target(join_url(base, endpoint, params))
            else:
                target = self._targets.get((base, endpoint)) or self._target(base, endpoint)
        except ValueError as exc:
            raise TransportError(f"{endpoint}: unsupported URL", endpoint=endpoint) from exc
        if method == "POST":
            before, after = self._post_auth if authenticated else self._post_anon
            head = b"".join((before, b"X-WECHAT-UIN: ", x_wechat_uin().encode(), b"\r\n", after))
            content = w.dumps(body)
            verb = b"POST"
        else:
            head, content, verb = self._get_head, b"", b"GET"
        status, raw = await self._http.request(
            verb,
            target,
            head,
            content,
            endpoint=endpoint,
            max_seconds=self._long_poll_timeout() if long_poll else _REQUEST_DEADLINE,
            long_poll=long_poll,
        )
        if not 200 <= status < 300:
            text = raw.decode("utf-8", "replace")
            text = self._scrub(redact_body(text))
            log.debug("%s: HTTP %d body=%s", endpoint, status, text)
            raise ApiError(endpoint=endpoint, status_code=status, errmsg=text)
        obj = w.loads_object(raw, endpoint=endpoint, allow_empty=allow_empty)
        try:
            _check_status(endpoint, obj, require_ret_zero=require_ret_zero)
        except ApiError as exc:
            if exc.errmsg:
                exc.errmsg = self._scrub(exc.errmsg)
                exc.args = (exc._describe(),)
            raise
        if resp_cls is w.GetUpdatesResp:
            return w.parse_updates(obj, endpoint=endpoint), obj  # type: ignore[return-value]
        return w.structure_or_raise(obj, resp_cls, endpoint=endpoint), obj

    def _scrub(self, text: str) -> str:
        """Hide this client's own token if a server echoes it in plain text."""
        secret = self._token.get() if self._token else ""
        if secret and secret in text:
            return text.replace(secret, "<redacted>")
        return text

    def _target(self, base: str, endpoint: str) -> Target:
        target = self._targets[base, endpoint] = Target(join_url(base, endpoint))
        return target

    def _long_poll_timeout(self) -> float:
        # Safety net only: the real deadline is the caller's trio scope. It must exceed
        # the server's hold, or the HTTP layer would abort every idle poll.
        hold = self._state.long_poll_hint_ms / 1000
        return max(hold + 30.0, 60.0)

    # --- endpoints ----------------------------------------------------------------

    async def get_updates(self, cursor: str = "") -> w.GetUpdatesResp:
        """Long-poll for new messages (``ilink/bot/getupdates``)."""
        body = w.GetUpdatesReq(get_updates_buf=cursor, base_info=self._base_info)
        resp, obj = await self._call(EP_GETUPDATES, body, w.GetUpdatesResp, long_poll=True)
        self._state.record_poll_hint(resp.longpolling_timeout_ms)
        del obj
        return resp

    async def send_message(self, msg: w.WeixinMessage) -> SendResult:
        """Send one message as built (``ilink/bot/sendmessage``), one attempt, no retries."""
        body = w.SendMessageReq(msg=msg, base_info=self._base_info)
        resp, _ = await self._call(EP_SENDMESSAGE, body, w.SendMessageResp, allow_empty=True)
        return SendResult(client_id=msg.client_id or "", message_id=resp.message_id)

    async def get_upload_url(self, req: w.GetUploadUrlReq) -> w.GetUploadUrlResp:
        """Ask for CDN upload parameters (``ilink/bot/getuploadurl``)."""
        body = attrs.evolve(req, base_info=self._base_info)
        resp, _ = await self._call(EP_GETUPLOADURL, body, w.GetUploadUrlResp)
        return resp

    async def get_config(self, user_id: str, context_token: str | None = None) -> w.GetConfigResp:
        """Fetch the per-user bot config, i.e. the typing ticket (``ilink/bot/getconfig``)."""
        body = w.GetConfigReq(
            ilink_user_id=user_id,
            base_info=self._base_info,
            context_token=context_token or self._state.context_tokens.get(user_id),
        )
        resp, _ = await self._call(EP_GETCONFIG, body, w.GetConfigResp, require_ret_zero=True)
        return resp

    async def send_typing(
        self, user_id: str, typing_ticket: str, status: w.TypingStatus | int
    ) -> None:
        """Start (``TypingStatus.TYPING``) or cancel the typing indicator."""
        body = w.SendTypingReq(
            ilink_user_id=user_id,
            typing_ticket=typing_ticket,
            status=status,
            base_info=self._base_info,
        )
        await self._call(EP_SENDTYPING, body, w.StatusResp, allow_empty=True)

    async def notify_start(self) -> None:
        """Tell the server this account is online (``ilink/bot/msg/notifystart``)."""
        await self._call(EP_NOTIFYSTART, w.NotifyReq(base_info=self._base_info), w.StatusResp)

    async def notify_stop(self) -> None:
        """Tell the server this account goes offline (``ilink/bot/msg/notifystop``)."""
        await self._call(EP_NOTIFYSTOP, w.NotifyReq(base_info=self._base_info), w.StatusResp)

    async def get_bot_qrcode(
        self,
        local_tokens: tuple[str, ...] = (),
        *,
        bot_type: str = "3",
        base_url: str | None = None,
    ) -> w.GetBotQrcodeResp:
        """Start a QR login (``ilink/bot/get_bot_qrcode``, unauthenticated POST)."""
        body = w.GetBotQrcodeReq(local_token_list=tuple(local_tokens[:10]))
        resp, _ = await self._call(
            EP_GET_BOT_QRCODE,
            body,
            w.GetBotQrcodeResp,
            params={"bot_type": bot_type},
            base_url=base_url,
            authenticated=False,
        )
        return resp

    async def get_qrcode_status(
        self, qrcode: str, *, verify_code: str | None = None, base_url: str | None = None
    ) -> w.QrcodeStatusResp:
        """Poll a QR login (``ilink/bot/get_qrcode_status``, GET, long poll)."""
        params = {"qrcode": qrcode}
        if verify_code:
            params["verify_code"] = verify_code
        resp, _ = await self._call(
            EP_GET_QRCODE_STATUS,
            None,
            w.QrcodeStatusResp,
            method="GET",
            params=params,
            base_url=base_url,
            authenticated=False,
            long_poll=True,
        )
        return resp


def _as_code(endpoint: str, obj: Mapping[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        # ASCII digits only: str.isdigit() also accepts "²" and "--5", which int() rejects.
        if isinstance(value, str) and _DECIMAL_RE.fullmatch(value.strip()):
            return int(value)
        raise ProtocolError(
            f"{endpoint}: {key} is a {type(value).__name__}, not an integer",
            endpoint=endpoint,
            field=f"$.{key}",
        )
    return value


def _check_status(endpoint: str, obj: Mapping[str, Any], *, require_ret_zero: bool) -> None:
    """Raise the right [`ApiError`][weixin_trio.ApiError] for a failed body (PROTOCOL §2.1)."""
    ret = _as_code(endpoint, obj, "ret")
    errcode = _as_code(endpoint, obj, "errcode")
    failed = bool(ret) or bool(errcode) or (require_ret_zero and ret != 0)
    if not failed:
        return
    errmsg = obj.get("errmsg")
    text = None if errmsg is None else redact_body(str(errmsg))
    cls: type[ApiError] = ApiError
    if STALE_TOKEN in (ret, errcode):
        cls = StaleTokenError
    elif RATE_LIMITED in (ret, errcode):
        cls = RateLimitedError
    raise cls(endpoint=endpoint, ret=ret, errcode=errcode, errmsg=text)
