"""Records, faults and per-account state of the fake iLink server."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
import trio

__all__ = [
    "ENDPOINTS",
    "FakeAccount",
    "FakeRequest",
    "FakeResponse",
    "Fault",
    "RecordedRequest",
    "RecordedSend",
]

#: Short endpoint names used for fault injection and request records.
ENDPOINTS = (
    "getupdates",
    "sendmessage",
    "getuploadurl",
    "getconfig",
    "sendtyping",
    "notifystart",
    "notifystop",
    "get_bot_qrcode",
    "get_qrcode_status",
    "cdn_upload",
    "cdn_download",
)

FaultKind = Literal["status", "hang", "malformed", "reset", "body", "delay", "truncate", "html"]


@attrs.frozen
class Fault:
    """One injected failure. Build with the class methods.

    Examples::

        fake.inject_fault("getupdates", Fault.http_status(502))
        fake.inject_fault("sendmessage", Fault.rate_limited(), times=3)
        fake.inject_fault("getupdates", Fault.stale_token(field="errcode"))
    """

    kind: FaultKind
    status: int = 200
    body: bytes = b""
    seconds: float = 0.0

    @classmethod
    def http_status(cls, status: int = 500, body: bytes = b"internal error") -> Fault:
        """Answer with this HTTP status and body."""
        return cls("status", status=status, body=body)

    @classmethod
    def hang(cls) -> Fault:
        """Never answer (until the client gives up)."""
        return cls("hang")

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Answer normally, after ``seconds``."""
        return cls("delay", seconds=seconds)

    @classmethod
    def malformed_json(cls) -> Fault:
        """HTTP 200 with a truncated JSON body."""
        return cls("malformed", body=b'{"ret":0,"msgs":[{"message_id":')

    @classmethod
    def truncated(cls) -> Fault:
        """CDN download: serve only the first half of the object."""
        return cls("truncate")

    @classmethod
    def html(cls) -> Fault:
        """HTTP 200 with an HTML page (a captive portal or an error page)."""
        return cls("html", body=b"<html><body>error</body></html>")

    @classmethod
    def reset(cls) -> Fault:
        """Drop the connection without an answer."""
        return cls("reset")

    @classmethod
    def api_error(
        cls, *, ret: int | None = None, errcode: int | None = None, errmsg: str = "error"
    ) -> Fault:
        """HTTP 200 with ``ret``/``errcode`` set."""
        import json

        body: dict[str, Any] = {"errmsg": errmsg}
        if ret is not None:
            body["ret"] = ret
        if errcode is not None:
            body["errcode"] = errcode
        return cls("body", body=json.dumps(body).encode())

    @classmethod
    def stale_token(cls, *, field: Literal["ret", "errcode"] = "ret") -> Fault:
        """``-14`` (session timeout) in ``ret`` or ``errcode``."""
        if field == "ret":
            return cls.api_error(ret=-14, errmsg="session timeout")
        return cls.api_error(errcode=-14, errmsg="session timeout")

    @classmethod
    def rate_limited(cls) -> Fault:
        """``{"ret": -2, "errmsg": "prepare failed"}``, the live throttle answer."""
        return cls.api_error(ret=-2, errmsg="prepare failed")


@attrs.frozen
class FakeRequest:
    """A request as the fake sees it, independent of how it arrived."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes


@attrs.frozen
class FakeResponse:
    """A response, or a fault the adapter must act out (``reset``/``hang``)."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = attrs.field(factory=dict)
    action: Literal["respond", "reset"] = "respond"


@attrs.frozen
class RecordedRequest:
    """One API request received (for assertions on headers and bodies)."""

    endpoint: str
    method: str
    headers: Mapping[str, str]
    body: Any
    account: str | None
    at: float


@attrs.frozen
class RecordedSend:
    """One accepted ``sendmessage``.

    ``shown`` is ``False`` when the ``client_id`` had been used before: the live server
    accepts such a send, but WeChat does not display it (PROTOCOL §7.3).
    """

    to_user_id: str
    client_id: str
    context_token: str | None
    text: str
    items: Sequence[Mapping[str, Any]]
    run_id: str | None
    message_id: int | None
    shown: bool
    account: str
    at: float

    def to_json(self) -> dict[str, Any]:
        """The ``GET /_fake/sent`` representation."""
        return {
            "to_user_id": self.to_user_id,
            "client_id": self.client_id,
            "context_token": self.context_token,
            "text": self.text,
            "items": list(self.items),
        }


@attrs.define(eq=False)
class FakeAccount:
    """State of one bot account on the fake server."""

    token: str
    bot_id: str
    owner_id: str
    #: Raw messages waiting for a long poll (any JSON value: tests may queue hostile ones).
    queue: list[Any] = attrs.field(factory=list)
    wakeup: trio.Event = attrs.field(factory=trio.Event)
    cursor_seq: int = 0
    issued_cursors: dict[str, int] = attrs.field(factory=dict)
    batches: list[tuple[int, tuple[int, ...]]] = attrs.field(factory=list)
    acked_seq: int = 0
    cursor_parents: dict[int, int] = attrs.field(factory=dict)
    acked: set[int] = attrs.field(factory=set)
    delivered: list[Any] = attrs.field(factory=list)
    context_tokens: dict[str, str] = attrs.field(factory=dict)
    typing_tickets: dict[str, str] = attrs.field(factory=dict)
    typing_events: list[tuple[str, int]] = attrs.field(factory=list)
    notify_events: list[str] = attrs.field(factory=list)
    client_ids: set[str] = attrs.field(factory=set)
    issued_tokens: set[str] = attrs.field(factory=set)
    online: bool = False

    def wake(self) -> None:
        """Wake every parked long poll of this account."""
        self.wakeup.set()
        self.wakeup = trio.Event()


@attrs.define
class FaultPlan:
    """Faults queued per endpoint, plus an optional random fault rate."""

    queued: dict[str, list[Fault]] = attrs.field(factory=dict)
    sticky: dict[str, Fault] = attrs.field(factory=dict)
    rate: float = 0.0
    rate_endpoints: frozenset[str] = frozenset()
    rate_faults: tuple[Fault, ...] = ()
    rng: random.Random = attrs.field(factory=random.Random)
    injected: list[tuple[str, Fault]] = attrs.field(factory=list)

    def take(self, endpoint: str) -> Fault | None:
        """The fault for this request of ``endpoint``, if any (consumed)."""
        queue = self.queued.get(endpoint)
        fault: Fault | None = None
        if queue:
            fault = queue.pop(0)
        elif endpoint in self.sticky:
            fault = self.sticky[endpoint]
        elif (
            self.rate > 0
            and endpoint in self.rate_endpoints
            and self.rate_faults
            and self.rng.random() < self.rate
        ):
            fault = self.rng.choice(self.rate_faults)
        if fault is not None:
            self.injected.append((endpoint, fault))
        return fault

    def add(self, endpoint: str, fault: Fault, times: int | float) -> None:
        """Queue ``fault`` for the next ``times`` requests of ``endpoint``."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {ENDPOINTS}")
        if math.isinf(times):
            self.sticky[endpoint] = fault
        else:
            self.queued.setdefault(endpoint, []).extend([fault] * int(times))

    def clear(self) -> None:
        """Forget every queued, sticky and random fault."""
        self.queued.clear()
        self.sticky.clear()
        self.rate = 0.0
