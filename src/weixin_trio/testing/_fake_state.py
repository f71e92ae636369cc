"""The fake server's record of sends, and what its request side needs of the server.

`FakeApi` takes a `ServerState` (which `FakeILinkServer` fits), so the request
side does not import the server; `SendLog` keeps the sends and answers the
test-facing queries about them, which the server delegates to.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Final, Protocol

import trio

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from ._fake_cdn import FakeCdn
    from ._fake_lenient import ProtocolIssue
    from ._fake_model import FakeAccount, FaultPlan, RecordedRequest, RecordedSend
    from ._fake_qr import QrRegistry

__all__ = ["WAIT_FOR_SENT_TIMEOUT", "SendLog", "ServerState", "account_by_id"]

#: How long `FakeILinkServer.wait_for_sent` waits by default (seconds of
#: ``trio.current_time()``: virtual under ``autojump_clock``).
WAIT_FOR_SENT_TIMEOUT: Final = 600.0


class SendLog:
    """Every ``sendmessage`` a fake server accepted, and the message ids it hands out."""

    def __init__(self) -> None:
        self.sends: list[RecordedSend] = []
        #: Message ids, shared by injected and sent messages.
        self.message_ids: Iterator[int] = itertools.count(7_000_000_000_001)
        self._changed = trio.Event()

    def record(self, send: RecordedSend) -> None:
        """Add a send and wake `wait`."""
        self.sends.append(send)
        self._changed.set()
        self._changed = trio.Event()

    def shown(self, token: str, user: str | None = None) -> list[RecordedSend]:
        """Shown sends of the account with ``token`` (to ``user``, if given), oldest first."""
        return [
            s
            for s in self.sends
            if s.shown and s.account == token and (user is None or s.to_user_id == user)
        ]

    def media(
        self, token: str, user: str, cdn: FakeCdn
    ) -> list[tuple[int, bytes, Mapping[str, Any]]]:
        """``(item type, decrypted bytes, item)`` of each shown media send to ``user``."""
        out = []
        for send in self.shown(token, user):
            for item in send.items:
                payload = next(
                    (v for k, v in item.items() if k.endswith("_item") and isinstance(v, dict)),
                    None,
                )
                if payload is not None and "media" in payload:
                    out.append((int(item["type"]), cdn.plaintext_of(payload["media"]), item))
        return out

    async def wait(
        self,
        count: int,
        token: str,
        user: str | None,
        timeout: float,  # noqa: ASYNC109 - a default guard for tests
    ) -> list[RecordedSend]:
        """Wait until at least ``count`` shown sends exist (see `FakeILinkServer.wait_for_sent`)."""
        with trio.move_on_after(timeout):
            while True:
                sends = self.shown(token, user)
                if len(sends) >= count:
                    return sends
                await self._changed.wait()
        shown = [(s.to_user_id, s.text or [i.get("type") for i in s.items]) for s in sends]
        to = "" if user is None else f" to {user}"
        raise AssertionError(
            f"wait_for_sent: expected {count} shown send(s){to} within {timeout:g} s, "
            f"got {len(sends)}: {shown!r} (a failing handler? see on_error or the log)"
        )


def account_by_id(
    accounts: Mapping[str, FakeAccount], default: FakeAccount, bot_id: object
) -> FakeAccount:
    """The account with this bot id (or token); ``default`` for ``None``."""
    if bot_id is None:
        return default
    for account in accounts.values():
        if bot_id in (account.bot_id, account.token):
            return account
    raise KeyError(bot_id)


class ServerState(Protocol):
    """What `FakeApi` needs of a `FakeILinkServer` (it fits)."""

    hold: float
    max_batch: int
    strict: bool
    record_requests: bool
    cdn_full_urls: bool
    accounts: dict[str, FakeAccount]
    requests: list[RecordedRequest]
    sends: list[RecordedSend]
    protocol_issues: list[ProtocolIssue]
    rejections: list[str]
    faults: FaultPlan
    qr: QrRegistry
    cdn: FakeCdn
    default: FakeAccount
    send_log: SendLog

    @property
    def cdn_base_url(self) -> str:
        """The CDN base URL."""
        ...

    def inject_text(
        self,
        user: str,
        text: str,
        *,
        account: FakeAccount | str | None = None,
        quote: Mapping[str, Any] | None = None,
    ) -> int:
        """Queue a text message from ``user``."""
        ...

    def sent(self, *, account: FakeAccount | str | None = None) -> list[RecordedSend]:
        """Shown sends."""
        ...

    def confirm_qr(self, qrcode: str | None = None, *, owner_id: str | None = None) -> FakeAccount:
        """The user confirms the QR login."""
        ...
