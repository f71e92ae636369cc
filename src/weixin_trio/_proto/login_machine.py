"""The sans-IO core of QR login (PROTOCOL §2.8): result types, errors, state machine.

Nothing here performs I/O or knows about trio. `QrLoginMachine` is fed the
responses of ``get_bot_qrcode`` and ``get_qrcode_status`` and answers with the next
`Action`; `weixin_trio.login.login` is the thin trio shell that carries the
actions out. Every name is re-exported (and documented) by [`weixin_trio.login`][weixin_trio.login].
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, TypeAlias
from urllib.parse import urlsplit

import attrs

from .._errors import (
    QrLoginCancelled,
    QrLoginError,
    QrLoginExpired,
    QrLoginTimeout,
    VerifyCodeBlocked,
)
from .redact import redact_token, redact_url

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from .. import _wire as w

__all__ = [
    "DEFAULT_REDIRECT_HOSTS",
    "MAX_POLL_FAILURES",
    "MAX_QR_CODES",
    "POLL_INTERVAL",
    "Account",
    "Action",
    "AskVerifyCode",
    "Done",
    "Poll",
    "QrCode",
    "QrLoginCancelled",
    "QrLoginError",
    "QrLoginExpired",
    "QrLoginMachine",
    "QrLoginTimeout",
    "Refresh",
    "VerifyCodeBlocked",
]

#: QR codes per login: the original and two refreshes (PROTOCOL §2.8.2, §8.4).
MAX_QR_CODES: Final = 3
#: Pause after each status poll, except right after a verify code was entered.
POLL_INTERVAL: Final = 1.0
#: Consecutive failed status polls (network, 5xx, garbage) tolerated; the next one raises.
MAX_POLL_FAILURES: Final = 10
#: Longest pause after a failed status poll (the pause doubles from ``POLL_INTERVAL``).
MAX_FAILURE_DELAY: Final = 5.0
#: Hosts a ``scaned_but_redirect`` may send the polling to (besides the QR base's host).
DEFAULT_REDIRECT_HOSTS: Final = ("*.weixin.qq.com",)

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE: Final = re.compile(rf"(?P<name>{_LABEL}(?:\.{_LABEL})*)(?::(?P<port>[0-9]{{1,5}}))?")


# --- errors ---------------------------------------------------------------------------


# --- values ---------------------------------------------------------------------------


def _redacted(value: str) -> str:
    return repr(redact_token(value, 3))


def _secret_or_none(value: str | None) -> str:
    return "None" if value is None else "'***'"


@attrs.frozen
class Account:
    """A bot account obtained by QR login: everything needed to open a client.

    ``repr()`` never shows the token. Store it with `to_json` (the file must be
    private: the token is full API access) and load it with `from_json`.

    Attributes:
        account_id: The bot id (``ilink_bot_id``, e.g. ``"3f2a…@im.bot"``).
        token: The bearer token (``bot_token``).
        base_url: The API base for this bot (``baseurl``; the QR base when empty).
        user_id: The WeChat user who scanned (``ilink_user_id``), when known.
        created_at: Wall-clock time (``time.time()``) of the confirmation.
    """

    account_id: str
    token: str = attrs.field(repr=_redacted)
    base_url: str
    user_id: str | None = None
    created_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The account as a JSON-ready ``dict`` (contains the token!)."""
        return {
            "account_id": self.account_id,
            "token": self.token,
            "base_url": self.base_url,
            "user_id": self.user_id,
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, data: object) -> Account:
        """Rebuild an account from `to_json` output.

        Unknown keys are ignored (stores may add their own); ``user_id`` may be absent
        or ``null``. Every other field is required.

        Raises:
            ValueError: ``data`` is not an object, or a field is missing or has the
                wrong type; the message names the field (never its value).
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"account: expected a JSON object, got {type(data).__name__}")
        account_id = _required_str(data, "account_id")
        token = _required_str(data, "token")
        base_url = _required_str(data, "base_url")
        user_id = data.get("user_id")
        if user_id is not None and not isinstance(user_id, str):
            raise ValueError(f"account.user_id: expected a string, got {type(user_id).__name__}")
        if "created_at" not in data:
            raise ValueError("account.created_at: missing")
        created_at = data["created_at"]
        if (
            isinstance(created_at, bool)
            or not isinstance(created_at, int | float)
            or not math.isfinite(created_at)
        ):
            raise ValueError("account.created_at: expected a finite number")
        return cls(account_id, token, base_url, user_id, float(created_at))


def _required_str(data: Mapping[Any, Any], key: str) -> str:
    if key not in data:
        raise ValueError(f"account.{key}: missing")
    value = data[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"account.{key}: expected a non-empty string")
    return value


@attrs.frozen
class QrCode:
    """A QR code to show to the user.

    The login session id itself is never part of it; ``repr()`` hides the query of
    ``qrcode_img_content`` (which carries the session id).

    Attributes:
        qrcode_img_content: The text to encode as a QR code (a URL; also fine to print
            as a link).
        refresh_number: ``1`` for the first code, ``2`` and ``3`` for refreshes.
        max_codes: How many codes this login may show in total.
    """

    qrcode_img_content: str = attrs.field(repr=lambda v: repr(redact_url(v)))
    refresh_number: int
    max_codes: int = MAX_QR_CODES


# --- actions --------------------------------------------------------------------------


@attrs.frozen
class Poll:
    """Poll ``get_qrcode_status`` again after ``delay`` seconds, sending ``verify_code``."""

    verify_code: str | None = attrs.field(default=None, repr=_secret_or_none)
    delay: float = POLL_INTERVAL


@attrs.frozen
class AskVerifyCode:
    """Ask the user for the digits shown on the phone (``wrong``: the last code failed)."""

    wrong: bool = False


@attrs.frozen
class Refresh:
    """Fetch a new QR code (``reason``: ``"expired"`` or ``"verify_code_blocked"``)."""

    reason: str


@attrs.frozen
class Done:
    """The login is over: a new ``account``, or ``None`` when ``already_bound``."""

    account: Account | None
    already_bound: bool = False


Action: TypeAlias = Poll | AskVerifyCode | Refresh | Done


# --- the machine ----------------------------------------------------------------------


class QrLoginMachine:
    """The QR login protocol as a state machine, free of I/O.

    Usage: fetch a QR code and pass the response to `on_qrcode`, then act on
    `first_poll`; pass each status response to `on_status` (a client-side
    long-poll timeout to `on_poll_timeout`, a failed poll to
    `on_poll_failure`) and carry out the returned `Action`. Answer
    `AskVerifyCode` with `on_verify_code` and `Refresh` with a new
    QR code (`on_qrcode` again).

    The polling base starts at the QR base and moves on ``scaned_but_redirect``. Like
    the reference client it is **not** reset when the QR code is refreshed (PROTOCOL
    §2.8.2): the redirect names the data centre of the user's session, and a refreshed
    code for the same user lives there too.

    Args:
        qr_base_url: Where QR codes are fetched (and polled until a redirect).
        allowed_redirect_hosts: Host patterns a redirect may go to: ``"*.example.com"``
            (any subdomain) or an exact host name; ports are not restricted. The QR
            base's own host is always allowed.
        max_qr_codes: QR codes in total, the first included.
        max_poll_failures: Failed status polls in a row after which the error surfaces.
        clock: Wall clock for `Account.created_at`.
    """

    def __init__(
        self,
        *,
        qr_base_url: str,
        allowed_redirect_hosts: Collection[str] = DEFAULT_REDIRECT_HOSTS,
        max_qr_codes: int = MAX_QR_CODES,
        max_poll_failures: int = MAX_POLL_FAILURES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(qr_base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("qr_base_url must be an absolute http(s) URL")
        if max_qr_codes < 1 or max_poll_failures < 1:
            raise ValueError("max_qr_codes and max_poll_failures must be at least 1")
        self.qr_base_url = qr_base_url
        self.poll_base_url = qr_base_url
        self._scheme = parts.scheme
        self._allowed = (*(p.lower() for p in allowed_redirect_hosts), parts.hostname.lower())
        self.max_qr_codes = max_qr_codes
        self.max_poll_failures = max_poll_failures
        self._clock = clock
        self.qr_count = 0
        self.poll_failures = 0
        self.verify_code: str | None = None
        self.scanned = False
        self.status: str | None = None
        self.done = False
        self._qrcode: str | None = None

    def __repr__(self) -> str:
        return (
            f"<QrLoginMachine qr={self.qr_count}/{self.max_qr_codes} status={self.status!r}"
            f" poll_base_url={self.poll_base_url!r}>"
        )

    @property
    def qrcode(self) -> str:
        """The current login session id, for the status poll (secret-ish: never log it)."""
        if self._qrcode is None:
            raise RuntimeError("no QR code yet: call on_qrcode first")
        return self._qrcode

    def on_qrcode(self, resp: w.GetBotQrcodeResp) -> QrCode:
        """Take a new QR code from a ``get_bot_qrcode`` response.

        Raises:
            QrLoginError: The response lacks ``qrcode`` or ``qrcode_img_content``.
            RuntimeError: The budget does not allow another code, or the login is over
                (the caller did not follow the actions).
        """
        if self.done or self.qr_count >= self.max_qr_codes:
            raise RuntimeError("no QR code is due")
        if not resp.qrcode or not resp.qrcode_img_content:
            raise QrLoginError("get_bot_qrcode: response lacks qrcode or qrcode_img_content")
        self.qr_count += 1
        self._qrcode = resp.qrcode
        self.verify_code = None
        self.scanned = False
        self.status = None
        self.poll_failures = 0
        return QrCode(resp.qrcode_img_content, self.qr_count, self.max_qr_codes)

    def first_poll(self) -> Poll:
        """The poll right after a new QR code was shown (no pause)."""
        return Poll(verify_code=None, delay=0.0)

    def on_verify_code(self, code: str) -> Poll:
        """The user typed ``code``: poll again at once, sending it."""
        if not code:
            raise ValueError("empty verify code")
        self.verify_code = code
        return Poll(verify_code=code, delay=0.0)

    def on_poll_timeout(self) -> Poll:
        """The client gave up on a long poll: same as ``wait``."""
        self.poll_failures = 0
        return self._poll()

    def on_poll_failure(self) -> Poll | None:
        """A status poll failed (network, 5xx, malformed body).

        Returns:
            The retry (its pause doubles from 1 s up to 5 s), or ``None`` when this was
            failure number ``max_poll_failures`` in a row: the caller raises the error.
        """
        self.poll_failures += 1
        if self.poll_failures >= self.max_poll_failures:
            return None
        delay = min(POLL_INTERVAL * 2 ** (self.poll_failures - 1), MAX_FAILURE_DELAY)
        return Poll(verify_code=self.verify_code, delay=delay)

    def on_status(self, resp: w.QrcodeStatusResp) -> Action:
        """Digest one ``get_qrcode_status`` response.

        Raises:
            QrLoginExpired: ``expired`` with the QR budget spent.
            VerifyCodeBlocked: ``verify_code_blocked`` with the QR budget spent.
            QrLoginError: A disallowed redirect host, or ``confirmed`` without
                ``bot_token``/``ilink_bot_id``.
        """
        if self._qrcode is None or self.done:
            raise RuntimeError("no QR code is being polled")
        self.poll_failures = 0
        status = resp.status or "wait"
        self.status = status
        if status in ("scaned", "scaned_but_redirect"):
            self.scanned = True
            if status == "scaned":
                self.verify_code = None  # a pending code was accepted
            elif resp.redirect_host:
                self.poll_base_url = self.redirect_base(resp.redirect_host)
            return self._poll()
        if status == "need_verifycode":
            self.scanned = True
            wrong = self.verify_code is not None
            self.verify_code = None
            return AskVerifyCode(wrong=wrong)
        if status in ("expired", "verify_code_blocked"):
            return self._refresh(status)
        if status == "binded_redirect":
            self.done = True
            return Done(None, already_bound=True)
        if status == "confirmed":
            return self._confirmed(resp)
        return self._poll()  # "wait", and anything unknown

    def redirect_base(self, redirect_host: str) -> str:
        """The polling base for ``redirect_host``, if it is a well-formed, allowed host.

        The scheme is ``https``, unless the QR base itself is plain ``http`` (a local
        test server).

        Raises:
            QrLoginError: A malformed host (path, user info, ...) or one outside the
                allowed patterns.
        """
        host = redirect_host.strip().lower()
        match = _HOST_RE.fullmatch(host)
        if match is None or not 0 < int(match["port"] or 443) < 65536:
            raise QrLoginError("scaned_but_redirect: malformed redirect_host")
        name = match["name"]
        if not any(_host_matches(name, pattern) for pattern in self._allowed):
            raise QrLoginError(f"scaned_but_redirect: redirect_host {name!r} is not allowed")
        scheme = "http" if self._scheme == "http" else "https"
        return f"{scheme}://{host}"

    def _poll(self) -> Poll:
        return Poll(verify_code=self.verify_code, delay=POLL_INTERVAL)

    def _refresh(self, status: str) -> Refresh:
        self.verify_code = None
        self.scanned = False
        if self.qr_count >= self.max_qr_codes:
            self.done = True
            if status == "expired":
                raise QrLoginExpired(f"all {self.max_qr_codes} QR codes expired")
            raise VerifyCodeBlocked(
                f"too many wrong verify codes, and all {self.max_qr_codes} QR codes are used"
            )
        self._qrcode = None
        return Refresh(status)

    def _confirmed(self, resp: w.QrcodeStatusResp) -> Done:
        if not resp.bot_token or not resp.ilink_bot_id:
            raise QrLoginError("confirmed: response lacks bot_token or ilink_bot_id")
        base_url = (resp.baseurl or "").strip() or self.qr_base_url
        if "://" not in base_url:
            base_url = f"https://{base_url}"
        self.done = True
        account = Account(
            account_id=resp.ilink_bot_id,
            token=resp.bot_token,
            base_url=base_url,
            user_id=resp.ilink_user_id or None,
            created_at=self._clock(),
        )
        return Done(account)


def _host_matches(host: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])  # any depth of subdomain, never the bare domain
    return host == pattern
