"""QR login: obtain a bot account by letting a WeChat user scan a QR code.

`login` runs the whole flow of PROTOCOL §2.8 against an `ILinkClient`
opened without a token, and returns the new [`Account`][weixin_trio.login.Account]::

    async with wx.open_client() as client:
        result = await login(client, on_qrcode=show, ask_verify_code=ask)
    if result.account is not None:
        save(result.account.to_json())

The protocol itself lives in a sans-IO state machine, `QrLoginMachine`, which
can drive any other I/O layer (and is unit-tested without an event loop).

Errors::

    WeixinError
    └── QrLoginError             the login failed
        ├── QrLoginExpired       every QR code expired (3 in total)
        ├── VerifyCodeBlocked    too many wrong verify codes on the last QR code
        ├── QrLoginTimeout       the overall deadline passed (default 480 s)
        └── QrLoginCancelled     ``ask_verify_code`` gave no code

A wrong verify code is not an error: the server answers ``need_verifycode`` again and
the user is asked again (``wrong=True``); after three wrong codes the server blocks the
QR code, which costs one refresh. API and network errors of the client surface as they
are ([`ApiError`][weixin_trio.ApiError], [`TransportError`][weixin_trio.TransportError], ...).

Secrets: the bot token, the QR session id (``qrcode``) and verify codes never reach a
log record (logger ``weixin_trio.login``) or a ``repr()``.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Final, TypeVar, cast

import attrs
import trio

from ._errors import ApiError, ProtocolError, TransportError
from ._proto.login_machine import (
    DEFAULT_REDIRECT_HOSTS,
    MAX_POLL_FAILURES,
    MAX_QR_CODES,
    Account,
    Action,
    AskVerifyCode,
    Done,
    Poll,
    QrCode,
    QrLoginCancelled,
    QrLoginError,
    QrLoginExpired,
    QrLoginMachine,
    QrLoginTimeout,
    Refresh,
    VerifyCodeBlocked,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Collection, Sequence

    from ._client.ilink_client import ILinkClient

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_REDIRECT_HOSTS",
    "MAX_LOCAL_TOKENS",
    "MAX_POLL_FAILURES",
    "MAX_QR_CODES",
    "STATUS_POLL_TIMEOUT",
    "Account",
    "Action",
    "AskVerifyCode",
    "Done",
    "LoginResult",
    "Poll",
    "QrCode",
    "QrLoginCancelled",
    "QrLoginError",
    "QrLoginExpired",
    "QrLoginMachine",
    "QrLoginTimeout",
    "Refresh",
    "VerifyCodeBlocked",
    "login",
]

log = logging.getLogger("weixin_trio.login")

T = TypeVar("T")

#: Overall login deadline in seconds (PROTOCOL §8.4).
DEFAULT_DEADLINE: Final = 480.0
#: Client-side bound of one status long poll (the server holds it about 35 s).
STATUS_POLL_TIMEOUT: Final = 40.0
#: Most bot tokens sent in ``local_token_list`` (PROTOCOL §2.8.1).
MAX_LOCAL_TOKENS: Final = 10


@attrs.frozen
class LoginResult:
    """The outcome of a successful [`login`][weixin_trio.login].

    Attributes:
        account: The new account; ``None`` when the bot was already bound.
        already_bound: The server answered ``binded_redirect``: the scanned bot is
            already bound to one of the ``local_tokens`` given; keep that account.
    """

    account: Account | None
    already_bound: bool = False


async def login(
    client: ILinkClient,
    *,
    on_qrcode: Callable[[QrCode], Awaitable[None] | None],
    ask_verify_code: Callable[[bool], Awaitable[str | None] | str | None] | None = None,
    on_status: Callable[[str], Awaitable[None] | None] | None = None,
    local_tokens: Sequence[str] = (),
    deadline: float = DEFAULT_DEADLINE,
    qr_base_url: str | None = None,
    bot_type: str = "3",
    allowed_redirect_hosts: Collection[str] = DEFAULT_REDIRECT_HOSTS,
) -> LoginResult:
    """Log a bot in by QR code.

    Fetches a QR code, hands it to ``on_qrcode`` and long-polls its status until the
    user confirms on the phone. An expired code (or one blocked after wrong verify
    codes) is replaced, up to 3 codes in total. ``scaned_but_redirect`` moves the
    polling to the named host, if it is allowed; the polling host stays there across
    refreshes, as in the reference client.

    Status polls that fail with a network error, an HTTP 5xx/429 or a malformed body
    count as ``wait`` (like the reference client), but
    `MAX_POLL_FAILURES` failures in a row raise the last one. Other API errors
    (e.g. ``ret`` non-zero) and any failure to fetch a QR code are raised at once.

    Args:
        client: A client, usually opened without a token.
        on_qrcode: Called with each QR code to show (sync or async). Its ``repr()`` is
            safe to log; the login session id is not part of it.
        ask_verify_code: Awaited with ``wrong`` (``True`` when the previous code was
            rejected) when the phone shows a pairing code; returns the digits. It may
            also be a plain function.
        on_status: Called with each new wire status (``"wait"``, ``"scaned"``, ...,
            unknown ones as sent) whenever it changes.
        local_tokens: Bot tokens this client already holds, newest first (at most 10
            are sent), so the server can answer "already bound" instead. Blank ones
            are skipped (before the 10 are chosen) and the others trimmed.
        deadline: Seconds the whole login may take, callbacks included.
        qr_base_url: Where QR codes are fetched; default: ``client.base_url``.
        bot_type: The ``bot_type`` query parameter.
        allowed_redirect_hosts: Host patterns a redirect may go to
            (``"*.weixin.qq.com"`` style or exact); the QR base's host is always allowed.

    Returns:
        The new account, or ``already_bound=True`` and no account.

    Raises:
        QrLoginExpired: Every QR code expired.
        VerifyCodeBlocked: Too many wrong verify codes on the last QR code.
        QrLoginTimeout: ``deadline`` passed.
        QrLoginCancelled: ``ask_verify_code`` returned ``None`` or an empty string.
        QrLoginError: A verify code is needed and there is no ``ask_verify_code``; a
            disallowed or malformed redirect host; a response without the fields
            the login needs.
        ApiError: ``get_bot_qrcode`` failed, or a status poll failed for good.
        TransportError: The network failed (fetching a QR code, or 10 polls in a row).
        ProtocolError: Malformed responses (fetching a QR code, or 10 polls in a row).
        ValueError: ``deadline`` is not a positive number, or the QR base is not an
            absolute http(s) URL.
        TypeError: ``local_tokens`` is a single string.

    Cancellation:
        Safe at any point. Nothing is stored by this function (save the returned
        account yourself); the half-done QR session on the server expires by itself.
    """
    if not deadline > 0:  # also rejects NaN
        raise ValueError("deadline must be a positive number of seconds")
    if isinstance(local_tokens, str):
        raise TypeError("local_tokens must be a sequence of tokens, not one string")
    tokens = tuple(t.strip() for t in local_tokens if t and t.strip())  # blanks skipped
    qr_base = qr_base_url or client.base_url
    machine = QrLoginMachine(qr_base_url=qr_base, allowed_redirect_hosts=allowed_redirect_hosts)
    session = _LoginSession(
        client=client,
        machine=machine,
        on_qrcode=on_qrcode,
        ask_verify_code=ask_verify_code,
        on_status=on_status,
        local_tokens=tokens[:MAX_LOCAL_TOKENS],
        bot_type=bot_type,
    )
    with trio.move_on_after(deadline) as scope:
        return await session.run()
    assert scope.cancelled_caught
    log.warning("QR login: no confirmation within %g s", deadline)
    raise QrLoginTimeout(f"QR login did not complete within {deadline:g} s")


class _LoginSession:
    """One run of [`login`][weixin_trio.login]: carries out the machine's actions."""

    def __init__(
        self,
        *,
        client: ILinkClient,
        machine: QrLoginMachine,
        on_qrcode: Callable[[QrCode], Awaitable[None] | None],
        ask_verify_code: Callable[[bool], Awaitable[str | None] | str | None] | None,
        on_status: Callable[[str], Awaitable[None] | None] | None,
        local_tokens: tuple[str, ...],
        bot_type: str,
    ) -> None:
        self.client = client
        self.machine = machine
        self.on_qrcode = on_qrcode
        self.ask_verify_code = ask_verify_code
        self.on_status = on_status
        self.local_tokens = local_tokens
        self.bot_type = bot_type
        self.reported: str | None = None

    async def run(self) -> LoginResult:
        action: Action = await self._new_qrcode()
        while not isinstance(action, Done):
            if isinstance(action, Poll):
                action = await self._poll(action)
            elif isinstance(action, AskVerifyCode):
                action = await self._ask(action.wrong)
            else:
                log.info("QR login: QR code %s, fetching a new one", action.reason)
                action = await self._new_qrcode()
        if action.account is not None:
            log.info("QR login: confirmed for bot %s", action.account.account_id)
        else:
            log.info("QR login: this bot is already bound here; no new token")
        return LoginResult(action.account, already_bound=action.already_bound)

    async def _new_qrcode(self) -> Poll:
        resp = await self.client.get_bot_qrcode(
            self.local_tokens, bot_type=self.bot_type, base_url=self.machine.qr_base_url
        )
        qr = self.machine.on_qrcode(resp)
        self.reported = None
        log.info("QR login: showing QR code %d/%d", qr.refresh_number, qr.max_codes)
        await _call_hook(self.on_qrcode(qr))
        return self.machine.first_poll()

    async def _poll(self, action: Poll) -> Action:
        if action.delay > 0:
            await trio.sleep(action.delay)
        machine = self.machine
        resp = None
        try:
            with trio.move_on_after(STATUS_POLL_TIMEOUT):
                resp = await self.client.get_qrcode_status(
                    machine.qrcode, verify_code=action.verify_code, base_url=machine.poll_base_url
                )
        except (TransportError, ApiError, ProtocolError) as exc:
            if not _transient(exc):
                raise
            retry = machine.on_poll_failure()
            if retry is None:
                log.warning("QR login: %d status polls failed in a row", machine.poll_failures)
                raise
            log.warning(
                "QR login: status poll failed (%s), %d/%d; treating it as wait",
                exc,
                machine.poll_failures,
                machine.max_poll_failures,
            )
            return retry
        if resp is None:
            log.debug("QR login: status poll timed out; still waiting")
            return machine.on_poll_timeout()
        status = resp.status or "wait"
        if status != self.reported:
            self.reported = status
            log.info("QR login: status %s", status)
            if self.on_status is not None:
                await _call_hook(self.on_status(status))
        before = machine.poll_base_url
        result = machine.on_status(resp)
        if machine.poll_base_url != before:
            log.info("QR login: polling moved to %s", machine.poll_base_url)
        return result

    async def _ask(self, wrong: bool) -> Poll:
        if self.ask_verify_code is None:
            raise QrLoginError(
                "the server asks for the verify code shown on the phone, "
                "but login() got no ask_verify_code callback"
            )
        log.info("QR login: asking for the verify code%s", " again (wrong)" if wrong else "")
        code = await _call_hook(self.ask_verify_code(wrong))
        code = (code or "").strip()
        if not code:
            raise QrLoginCancelled("no verify code was entered")
        return self.machine.on_verify_code(code)


def _transient(exc: Exception) -> bool:
    """Whether a failed status poll may be retried (counted as ``wait``)."""
    if isinstance(exc, ApiError):
        return exc.status_code >= 500 or exc.status_code == 429
    return True


async def _call_hook(result: Awaitable[T] | T) -> T:
    """The value of a callback that may be sync or async."""
    if inspect.isawaitable(result):
        return cast("T", await result)
    return result


def _fixup_module_metadata() -> None:
    """Document the re-exported names as members of this public module."""
    for name in __all__:
        obj = globals()[name]
        if isinstance(obj, type) and obj.__module__.startswith("weixin_trio."):
            obj.__module__ = __name__


_fixup_module_metadata()
del _fixup_module_metadata
