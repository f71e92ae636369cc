"""Every exception class of weixin_trio, in one tree.

Every error the library raises on purpose derives from [`WeixinError`][weixin_trio.WeixinError];
the crypto helpers' value error derives from `ValueError`. The tree below is
checked against the classes by a test::

    WeixinError
    ├── TransportError            network failure: DNS, connect, reset, broken body
    │   └── _ClientClosing        (private) the client closed while a send was queued
    ├── ProtocolError             a response that does not fit the wire schema
    │   └── MalformedMessageError one message of a batch did not fit; it was skipped
    ├── ApiError                  non-2xx HTTP status, or non-zero ``ret``/``errcode``
    │   ├── StaleTokenError       ``-14``: the bot token is no longer valid, log in again
    │   └── RateLimitedError      ``-2``: the server throttled the send ("prepare failed")
    ├── SendWindowClosedError     the user's send window is closed (24 h / 10 sends)
    ├── NoContextTokenError       a proactive send to a user we never heard from
    ├── NoStoreError              a message built by hand has no store (msg.state)
    ├── CdnError                  CDN upload or download failed (status, missing header, size)
    ├── RemoteMediaError          an http(s) URL given as media could not be fetched
    ├── SendHookError             a ``before_send`` hook failed or broke the rules
    ├── StoreError                the store could not be read or written
    │   ├── StoreUnavailableError the store's server cannot be reached right now
    │   ├── StoreLockedError      another writer holds the account's state directory
    │   ├── LeaseLostError        another process now holds the account's lease
    │   └── UnencodableError      a record cannot be written as JSON (also a ValueError)
    ├── QrLoginError              a QR login failed
    │   ├── QrLoginExpired        the QR codes expired and the refresh budget is spent
    │   ├── VerifyCodeBlocked     too many wrong verify codes
    │   ├── QrLoginTimeout        the overall login deadline passed
    │   └── QrLoginCancelled      the verify-code callback gave no code
    ├── VoiceCodecUnavailable     no SILK codec installed
    ├── AcpError                  an ACP agent answered a request with a JSON-RPC error
    │   ├── AgentExitedError      the ACP agent process ended while a request waited
    │   └── AgentUnavailableError the ACP agent did not start (in time)
    └── MonitorCrashed            an internal failure stopped a monitor
    ValueError
    └── CryptoError               bad AES key, ciphertext or padding
    CliError                      (private) a command failed: one line on stderr, exit 1

Messages never contain bot tokens, context tokens, AES keys or CDN query parameters:
response bodies are redacted and truncated before they reach an exception.

Translation from httpx and cattrs happens in one place, the private endpoint layer.
Public modules re-export the classes that belong to them (``weixin_trio.store.StoreError``,
``weixin_trio.login.QrLoginError``, ``weixin_trio.crypto.CryptoError``, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "AcpError",
    "AgentExitedError",
    "AgentUnavailableError",
    "ApiError",
    "CdnError",
    "CliError",
    "CryptoError",
    "LeaseLostError",
    "MalformedMessageError",
    "MonitorCrashed",
    "NoContextTokenError",
    "NoStoreError",
    "ProtocolError",
    "QrLoginCancelled",
    "QrLoginError",
    "QrLoginExpired",
    "QrLoginTimeout",
    "RateLimitedError",
    "RemoteMediaError",
    "SendHookError",
    "SendWindowClosedError",
    "StaleTokenError",
    "StoreError",
    "StoreLockedError",
    "StoreUnavailableError",
    "TransportError",
    "UnencodableError",
    "VerifyCodeBlocked",
    "VoiceCodecUnavailable",
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


class _ClientClosing(TransportError):
    """The client closed while the send was queued or in flight (never retried)."""


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


class MalformedMessageError(ProtocolError):
    """A message in a batch did not fit the schema; it was skipped, the batch was not.

    Attributes:
        raw: The message's raw JSON, as received.
    """

    def __init__(self, message: str, *, raw: Mapping[str, Any]) -> None:
        super().__init__(message, endpoint="ilink/bot/getupdates")
        self.raw = raw


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


class RemoteMediaError(WeixinError):
    """A media send's ``http(s)`` URL could not be fetched, or what it gave was refused.

    Nothing was uploaded or sent, and no temporary file is left behind.

    Attributes:
        reason: ``"too_large"`` (over the policy's ``max_bytes``),
            ``"forbidden_address"`` (the host resolved to an address the policy
            refuses: loopback, private, link-local, ...), ``"bad_content_type"``
            (e.g. an image send whose bytes are not an image), ``"http_status"``
            (a non-2xx answer), ``"too_many_redirects"``, ``"bad_url"``,
            ``"connection"`` (DNS, connect, TLS or a broken answer) or
            ``"timeout"``.
        url: The URL, redacted: scheme, host and path only (never the query, which
            may carry a secret).
        status_code: The HTTP status, for ``"http_status"``.
    """

    def __init__(
        self, reason: str, message: str, *, url: str, status_code: int | None = None
    ) -> None:
        super().__init__(f"{message} ({url})")
        self.reason = reason
        self.url = url
        self.status_code = status_code


class SendHookError(WeixinError):
    """A ``before_send`` hook raised (the cause is chained), or rewrote what it may not.

    Nothing was sent. A hook may rewrite the text, caption, file name or media source
    of an [`Outgoing`][weixin_trio.Outgoing] value, not its recipient or kind.
    """


class NoStoreError(WeixinError):
    """A message has no store to keep state in (``msg.state``, access control).

    Messages a monitor (or the Redis worker) delivers carry their account's store; a
    [`Message`][weixin_trio.Message] built by hand has none. Bind one, or give the
    access control a ``store=``.
    """


class NoContextTokenError(WeixinError):
    """A send needs the user's context token, and none is known for that user.

    Context tokens arrive with the user's messages; a bot cannot start a conversation.
    """

    def __init__(self, user_id: str) -> None:
        super().__init__(
            f"no context token known for {user_id}: the user must message the bot first"
        )
        self.user_id = user_id


class StoreError(WeixinError):
    """The store could not be read or written (the path is named, secrets are not)."""


class UnencodableError(StoreError, ValueError):
    """A record cannot be written as JSON (e.g. an int longer than Python's digit limit).

    Nothing was written. Retrying cannot help; the monitor sets such a message aside.
    Also a ``ValueError``, as the JSON encoder's own errors are.
    """


class StoreUnavailableError(StoreError):
    """The store's server cannot be reached right now (e.g. Redis is down).

    Transient: the monitor keeps the batch it could not journal, stops fetching and
    retries with backoff; nothing is acknowledged until the write succeeds.
    """


class StoreLockedError(StoreError):
    """Another writer holds the account's state directory (its pid is named).

    Only one process (and one [`FileStore`][weixin_trio.FileStore] object) may write an
    account's directory at a time; readers use ``FileStore(path, read_only=True)``.
    Not transient: the monitor of that account is not restarted by this process.
    """


class LeaseLostError(StoreError):
    """A fenced write was refused: another process now holds the account's lease.

    The monitor of that account stops at once and is not restarted by this process.
    """


class QrLoginError(WeixinError):
    """A QR login failed (base class of every login error)."""


class QrLoginExpired(QrLoginError):
    """The QR codes of this login expired and the refresh budget (3 codes) is spent."""


class VerifyCodeBlocked(QrLoginError):
    """Too many wrong verify codes on the last QR code the budget allowed."""


class QrLoginTimeout(QrLoginError):
    """The overall login deadline passed (default 480 s)."""


class QrLoginCancelled(QrLoginError):
    """The ``ask_verify_code`` callback gave no code (``None`` or empty)."""


class VoiceCodecUnavailable(WeixinError):
    """No SILK codec installed: ``pip install 'weixin-trio[silk]'``."""

    def __init__(self) -> None:
        super().__init__(
            "voice transcoding needs a SILK codec: install the extra with "
            "pip install 'weixin-trio[silk]'"
        )


class AcpError(WeixinError):
    """An ACP agent answered a JSON-RPC request with an error.

    Attributes:
        code: The JSON-RPC error code (``-32601``: the agent lacks the method).
        data: The error's ``data`` member, if any.
    """

    def __init__(self, message: str, *, code: int = -32603, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


class AgentExitedError(AcpError):
    """The ACP agent process ended (or its output closed) while a request waited."""


class AgentUnavailableError(AcpError):
    """The ACP agent did not start, or not within its start timeout."""


class MonitorCrashed(WeixinError):
    """An internal failure stopped a monitor (for example, the store could not be written).

    The cursor was not advanced past anything that was not journaled; restarting on the
    same store redelivers every accepted message.
    """


class CryptoError(ValueError):
    """Bad key, bad ciphertext, or bad padding.

    Raised for a key that is not 16 bytes, ciphertext that is empty or not a multiple
    of 16 bytes, invalid PKCS#7 padding (also the usual symptom of a wrong key), and
    key text that `parse_aes_key` cannot decode. Messages never contain key
    material.
    """


class CliError(Exception):
    """A failure of the command line, reported as one line on stderr (exit code 1)."""
