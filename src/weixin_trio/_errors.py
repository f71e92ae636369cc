"""The exception tree of weixin_trio.

Every error the library raises on purpose derives from [`WeixinError`][weixin_trio.WeixinError]::

    WeixinError
    ├── TransportError            network failure: DNS, connect, reset, broken body
    ├── ProtocolError             a response that does not fit the wire schema
    ├── ApiError                  non-2xx HTTP status, or non-zero ``ret``/``errcode``
    │   ├── StaleTokenError       ``-14``: the bot token is no longer valid, log in again
    │   ├── RateLimitedError      ``-2``: the server throttled the send ("prepare failed")
    │   └── SendWindowClosedError the user's send window is closed (24 h / 10 sends)
    ├── CdnError                  CDN upload or download failed (status, missing header, size)
    ├── NoContextTokenError       a proactive send to a user we never heard from
    └── MonitorCrashed            an internal failure stopped a monitor

Messages never contain bot tokens, context tokens, AES keys or CDN query parameters:
response bodies are redacted and truncated before they reach an exception.

Translation from httpx and cattrs happens in one place, ``weixin_trio._api``.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "CdnError",
    "MonitorCrashed",
    "NoContextTokenError",
    "ProtocolError",
    "RateLimitedError",
    "SendWindowClosedError",
    "StaleTokenError",
    "TransportError",
    "WeixinError",
]

STALE_TOKEN = -14
RATE_LIMITED = -2


class WeixinError(Exception):
    """Base class of every error raised by weixin_trio on purpose."""


class TransportError(WeixinError):
    """The request did not complete: DNS, connect, TLS, reset, or a broken response body.

    Attributes:
        endpoint: The API endpoint (e.g. ``"ilink/bot/getupdates"``) or ``"cdn"``.
    """

    def __init__(self, message: str, *, endpoint: str) -> None:
        super().__init__(message)
        self.endpoint = endpoint


class ProtocolError(WeixinError):
    """A response could not be understood: bad JSON, wrong type, missing field.

    Attributes:
        endpoint: The API endpoint whose response was malformed.
        field: Path of the offending field when known (e.g. ``"msgs[0].item_list"``).
    """

    def __init__(self, message: str, *, endpoint: str = "", field: str | None = None) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.field = field


class ApiError(WeixinError):
    """The server answered, but with a failure.

    Either an HTTP status outside 2xx (``status_code`` set, ``ret``/``errcode`` usually
    ``None``), or HTTP 200 with a non-zero ``ret`` or ``errcode`` in the body.

    Attributes:
        endpoint: The API endpoint.
        status_code: The HTTP status code.
        ret: The body's ``ret`` when present.
        errcode: The body's ``errcode`` when present.
        errmsg: The body's ``errmsg``, or a redacted, truncated body for non-2xx answers.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        status_code: int = 200,
        ret: int | None = None,
        errcode: int | None = None,
        errmsg: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.status_code = status_code
        self.ret = ret
        self.errcode = errcode
        self.errmsg = errmsg
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [f"{self.endpoint}:"]
        if self.status_code != 200:
            parts.append(f"HTTP {self.status_code}")
        if self.ret is not None:
            parts.append(f"ret={self.ret}")
        if self.errcode is not None:
            parts.append(f"errcode={self.errcode}")
        if self.errmsg:
            parts.append(f"errmsg={self.errmsg!r}")
        return " ".join(parts)

    @property
    def code(self) -> int | None:
        """The first non-zero of ``errcode`` and ``ret`` (the value that decided failure)."""
        for value in (self.errcode, self.ret):
            if value:
                return value
        return None


class StaleTokenError(ApiError):
    """``-14`` in ``ret`` or ``errcode``: the bot token is no longer valid.

    A new QR login is needed; the monitor pauses polling (default one hour) when it
    sees this, and calls its ``on_token_stale`` hook.
    """


class RateLimitedError(ApiError):
    """``-2`` on a send: the server's anti-spam throttle ("prepare failed").

    The message was **not** delivered. Do not retry at once: the throttle lasts minutes
    and retries extend it. The send governor cools down when it sees this.
    """


class SendWindowClosedError(WeixinError):
    """A proactive send was refused locally because the user's send window is closed.

    WeChat delivers bot messages only within 24 h of the user's last message and only a
    limited number of them per inbound message; sending anyway gives a silent ``ret -2``.

    Attributes:
        user_id: The peer the send was for.
        reason: ``"expired"`` (24 h passed) or ``"quota"`` (sends per inbound used up).
    """

    def __init__(self, user_id: str, reason: str) -> None:
        super().__init__(f"send window for {user_id} is closed ({reason})")
        self.user_id = user_id
        self.reason = reason


class CdnError(WeixinError):
    """A CDN upload or download failed.

    Attributes:
        status_code: The HTTP status when the CDN answered, else ``None``.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class NoContextTokenError(WeixinError):
    """A send needs the user's context token, and none is known for that user.

    Context tokens arrive with the user's messages; a bot cannot start a conversation.
    """

    def __init__(self, user_id: str) -> None:
        super().__init__(
            f"no context token known for {user_id}: the user must message the bot first"
        )
        self.user_id = user_id


class MonitorCrashed(WeixinError):
    """An internal failure stopped a monitor (for example, the store could not be written).

    The cursor was not advanced past anything that was not journaled; restarting on the
    same store redelivers every accepted message.
    """
