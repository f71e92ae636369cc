"""``FakeILinkServer``: the whole iLink protocol in memory, for tests and demos.

It behaves like the live server, not like a convenient one:

- the long poll holds until a message arrives or the hold expires (trio Events, so it
  works under ``autojump_clock``);
- the cursor is forward-only: messages handed out once are never replayed, even when a
  client presents an old cursor;
- a ``sendmessage`` that reuses a ``client_id`` is accepted but not shown;
- it is lenient where the live server is: ``null`` or absent optional fields, unknown
  keys, a lower-case ``bearer``, missing optional headers, a cursor it did not issue
  and context tokens it never handed out are accepted, and each such difference from
  what the official client sends is recorded as a `ProtocolIssue` in
  `FakeILinkServer.protocol_issues` (also ``GET /_fake/issues``). Wrong JSON types
  and missing required fields are still rejected. ``strict=True`` rejects the issues
  marked ``strict_rejects`` too. The pytest plugin fails a test whose own requests
  caused protocol issues, so a client's mistake fails a test instead of passing.

Use it in-process as an httpx transport (`FakeILinkServer.transport`) or on a
loopback port ([`FakeILinkServer.serve`][weixin_trio.testing.FakeILinkServer.serve]).
"""

from __future__ import annotations

import itertools
import random
import secrets
import time
from typing import TYPE_CHECKING, Any, Final

import trio

from ._fake_cdn import CdnObject, FakeCdn, media_json
from ._fake_endpoints import FakeApi
from ._fake_model import (
    FakeAccount,
    FakeRequest,
    FakeResponse,
    Fault,
    FaultPlan,
    RecordedRequest,
    RecordedSend,
)
from ._fake_qr import QrRegistry
from ._fake_state import WAIT_FOR_SENT_TIMEOUT, SendLog
from ._fake_transport import FakeTransport, serve_fake

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    import httpx

    from ._fake_lenient import ProtocolIssue

__all__ = ["WAIT_FOR_SENT_TIMEOUT", "FakeILinkServer"]

DEFAULT_FAKE_BASE_URL: Final = "https://fake-ilink.invalid"


class FakeILinkServer:
    """An in-memory iLink bot server with a default account, ready to use.

    Args:
        token: The default account's bot token (random when omitted).
        hold: Seconds a long poll is held without messages (``longpolling_timeout_ms``).
        max_batch: Most messages returned by one ``getupdates``.
        base_url: The URL clients use in transport mode (no network is involved).
        seed: Seed for message ids, tokens and random faults (reproducible runs).
        strict: Reject requests for the protocol issues marked ``strict_rejects``
            (nulls, unknown keys, a lower-case auth scheme, a foreign cursor, ...)
            instead of only recording them.
        record_requests: Keep every request in `requests` (turn off for
            long benchmarks).
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        bot_id: str = "fakebot@im.bot",
        owner_id: str = "owner@im.wechat",
        hold: float = 35.0,
        max_batch: int = 100,
        base_url: str = DEFAULT_FAKE_BASE_URL,
        seed: int | None = None,
        record_requests: bool = True,
        strict: bool = False,
    ) -> None:
        self._rng = random.Random(seed)
        self.hold = hold
        self.max_batch = max_batch
        self.base_url = base_url
        self.record_requests = record_requests
        self.accounts: dict[str, FakeAccount] = {}
        self.requests: list[RecordedRequest] = []
        self.send_log = SendLog()
        self.sends: list[RecordedSend] = self.send_log.sends
        self.strict = strict
        self.protocol_issues: list[ProtocolIssue] = []
        self.rejections: list[str] = []
        self.faults = FaultPlan(rng=self._rng)
        self.qr = QrRegistry(base_url=base_url)
        self.cdn = FakeCdn()
        self._default_bound = False
        self.cdn_full_urls = False
        self._seqs = itertools.count(1)
        #: Called with every request after it was answered (or failed, or was
        #: cancelled), e.g. to watch sends and typing live; must not raise.
        self.observers: list[Callable[[FakeRequest], None]] = []
        self.default = self.add_account(token=token, bot_id=bot_id, owner_id=owner_id)
        self._api = FakeApi(self)

    @property
    def deviations(self) -> list[str]:
        """`protocol_issues` as short text: ``"<endpoint>: <detail>"``."""
        return [f"{i.endpoint}: {i.detail}" for i in self.protocol_issues]

    async def handle(self, request: FakeRequest) -> FakeResponse:
        """Answer one HTTP request (used by both the transport and the loopback server)."""
        try:
            return await self._api.handle(request)
        finally:
            for observer in tuple(self.observers):
                observer(request)

    # --- how clients reach it ----------------------------------------------------------

    def transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport answering in-process (safe under ``autojump_clock``)."""
        return FakeTransport(self)

    async def serve(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve on a loopback port until cancelled; ``task_status`` gets the base URL.

        Use with ``base_url = await nursery.start(fake.serve)``. Never combine real
        sockets with ``autojump_clock``.
        """
        await serve_fake(self, host=host, port=port, task_status=task_status)

    # --- accounts -------------------------------------------------------------------

    @property
    def token(self) -> str:
        """The default account's bot token."""
        return self.default.token

    @property
    def cdn_base_url(self) -> str:
        """The CDN base URL of this fake."""
        return self.base_url.rstrip("/") + "/c2c"

    def add_account(
        self,
        *,
        token: str | None = None,
        bot_id: str | None = None,
        owner_id: str = "owner@im.wechat",
    ) -> FakeAccount:
        """Create another bot account (e.g. for multi-account tests)."""
        token = token or f"fake-token-{self._rng.getrandbits(96):024x}"
        account = FakeAccount(
            token=token,
            bot_id=bot_id or f"{self._rng.getrandbits(48):012x}@im.bot",
            owner_id=owner_id,
        )
        self.accounts[token] = account
        return account

    def revoke_token(self, token: str | None = None) -> None:
        """Make a token stale: every later request with it answers ``-14``."""
        self.accounts.pop(token or self.token)

    def _account(self, account: FakeAccount | str | None) -> FakeAccount:
        if account is None:
            return self.default
        if isinstance(account, FakeAccount):
            return account
        return self.accounts[account]

    # --- inbound injection ----------------------------------------------------------

    def inject_text(
        self,
        user: str,
        text: str,
        *,
        account: FakeAccount | str | None = None,
        quote: Mapping[str, Any] | None = None,
    ) -> int:
        """Queue a text message from ``user``; return its ``message_id``."""
        item: dict[str, Any] = {"type": 1, "text_item": {"text": text}}
        if quote is not None:
            item["ref_msg"] = dict(quote)
        return self.inject_message(user, [item], account=account)

    def inject_message(
        self,
        user: str,
        items: Sequence[Mapping[str, Any]],
        *,
        account: FakeAccount | str | None = None,
        **fields: Any,
    ) -> int:
        """Queue a message from ``user`` with the given raw items and top-level fields.

        A fresh context token is issued with every message, as on the live server.
        """
        acct = self._account(account)
        message_id = next(self.send_log.message_ids)
        token = f"ctx-{secrets.token_hex(8)}"
        acct.context_tokens[user] = token
        raw: dict[str, Any] = {
            "seq": next(self._seqs),
            "message_id": message_id,
            "from_user_id": user,
            "to_user_id": acct.bot_id,
            "create_time_ms": int(time.time() * 1000),
            "session_id": f"s-{user}",
            "message_type": 1,
            "message_state": 2,
            "item_list": [dict(i) for i in items],
            "context_token": token,
        }
        raw.update(fields)
        self.inject_raw(raw, account=acct)
        return message_id

    def inject_raw(
        self, raw: Mapping[str, Any], *, account: FakeAccount | str | None = None
    ) -> None:
        """Queue an arbitrary (possibly malformed) message object as is."""
        acct = self._account(account)
        acct.queue.append(dict(raw))
        acct.wake()

    def inject_image(
        self, user: str, data: bytes, *, account: FakeAccount | str | None = None
    ) -> int:
        """Queue an image message (real AES on the fake CDN; hex ``aeskey`` + form A key)."""
        obj = self.cdn.store(data)
        item = {
            "type": 2,
            "image_item": {
                "aeskey": obj.key.hex(),
                "media": media_json(obj, key_form="a", full_url=self._full_url(obj)),
                "mid_size": len(obj.ciphertext),
            },
        }
        return self.inject_message(user, [item], account=account)

    def inject_file(
        self,
        user: str,
        data: bytes,
        file_name: str,
        *,
        account: FakeAccount | str | None = None,
    ) -> int:
        """Queue a file message (``len`` is the plaintext size as text, key form B)."""
        obj = self.cdn.store(data)
        item = {
            "type": 4,
            "file_item": {
                "media": media_json(obj, key_form="b", full_url=self._full_url(obj)),
                "file_name": file_name,
                "len": str(len(data)),
            },
        }
        return self.inject_message(user, [item], account=account)

    def inject_video(
        self, user: str, data: bytes, *, account: FakeAccount | str | None = None
    ) -> int:
        """Queue a video message."""
        obj = self.cdn.store(data)
        item = {
            "type": 5,
            "video_item": {
                "media": media_json(obj, key_form="b", full_url=self._full_url(obj)),
                "video_size": len(obj.ciphertext),
            },
        }
        return self.inject_message(user, [item], account=account)

    def inject_voice(
        self,
        user: str,
        silk: bytes,
        *,
        text: str | None = None,
        playtime_ms: int = 1000,
        account: FakeAccount | str | None = None,
    ) -> int:
        """Queue a voice message (SILK data, optional server transcript)."""
        obj = self.cdn.store(silk)
        voice: dict[str, Any] = {
            "media": media_json(obj, key_form="b", full_url=self._full_url(obj)),
            "encode_type": 6,
            "sample_rate": 24000,
            "bits_per_sample": 16,
            "playtime": playtime_ms,
        }
        if text is not None:
            voice["text"] = text
        return self.inject_message(user, [{"type": 3, "voice_item": voice}], account=account)

    def _full_url(self, obj: CdnObject) -> str | None:
        if not self.cdn_full_urls:
            return None
        return f"{self.cdn_base_url}/download?encrypted_query_param={obj.param}"

    def sent_media(
        self, user: str, *, account: FakeAccount | str | None = None
    ) -> list[tuple[int, bytes, Mapping[str, Any]]]:
        """``(item type, decrypted bytes, item)`` of each shown media send to ``user``."""
        return self.send_log.media(self._account(account).token, user, self.cdn)

    def redeliver(
        self, message_ids: Iterable[int], *, account: FakeAccount | str | None = None
    ) -> None:
        """Deliver already delivered messages again (the server's duplicate delivery)."""
        acct = self._account(account)
        wanted = set(message_ids)
        for raw in acct.delivered:
            if raw.get("message_id") in wanted:
                acct.queue.append(raw)
        acct.wake()

    # --- faults ---------------------------------------------------------------------

    def inject_fault(self, endpoint: str, fault: Fault, *, times: int | float = 1) -> None:
        """Answer the next ``times`` requests of ``endpoint`` with ``fault``.

        ``times=math.inf`` keeps the fault until `clear_faults`.
        """
        self.faults.add(endpoint, fault, times)

    def set_fault_rate(
        self,
        rate: float,
        faults: Sequence[Fault],
        *,
        endpoints: Iterable[str] = ("getupdates", "sendmessage"),
    ) -> None:
        """Fail a random ``rate`` of the requests of ``endpoints`` with one of ``faults``."""
        self.faults.rate = rate
        self.faults.rate_faults = tuple(faults)
        self.faults.rate_endpoints = frozenset(endpoints)

    def clear_faults(self) -> None:
        """Stop injecting faults."""
        self.faults.clear()

    # --- what clients did -----------------------------------------------------------

    def sent(self, *, account: FakeAccount | str | None = None) -> list[RecordedSend]:
        """Sends that WeChat would show, oldest first."""
        return self.send_log.shown(self._account(account).token)

    def sent_to(self, user: str, *, account: FakeAccount | str | None = None) -> list[RecordedSend]:
        """Shown sends to ``user``, oldest first."""
        return self.send_log.shown(self._account(account).token, user)

    def sent_texts(self, user: str, *, account: FakeAccount | str | None = None) -> list[str]:
        """Texts of the shown sends to ``user``."""
        return [s.text for s in self.sent_to(user, account=account)]

    async def wait_for_sent(
        self,
        count: int,
        *,
        user: str | None = None,
        account: FakeAccount | str | None = None,
        timeout: float = WAIT_FOR_SENT_TIMEOUT,  # noqa: ASYNC109 - a default guard for tests
    ) -> list[RecordedSend]:
        """Wait until at least ``count`` shown sends (to ``user``, if given) exist.

        Args:
            count: How many shown sends to wait for.
            user: Count only sends to this user.
            account: The account (default: the default account).
            timeout: Give up after this many seconds of ``trio.current_time()`` (virtual
                under ``autojump_clock``, where a bot that never answers would otherwise
                poll for ever); the test then fails with what was sent.

        Raises:
            AssertionError: ``timeout`` passed first (the message lists the sends).

        Cancellation:
            Safe.
        """
        return await self.send_log.wait(count, self._account(account).token, user, timeout)

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        """Recorded requests of one endpoint (short name, e.g. ``"getupdates"``)."""
        return [r for r in self.requests if r.endpoint == endpoint]

    def delivered_message_ids(self, *, account: FakeAccount | str | None = None) -> list[int]:
        """Ids of every message handed out by ``getupdates``, in order."""
        return [int(m["message_id"]) for m in self._account(account).delivered if "message_id" in m]

    def acknowledged_message_ids(self, *, account: FakeAccount | str | None = None) -> set[int]:
        """Ids of delivered messages whose batch cursor the client later presented.

        A client that presents a cursor has, by the protocol's contract, stored it, and
        so must have taken care of every message delivered with it or with the cursors
        it descends from (a batch whose cursor was never presented does not count).
        """
        acct = self._account(account)
        return {mid for seq, ids in acct.batches if seq in acct.acked for mid in ids}

    def in_transit_message_ids(self, *, account: FakeAccount | str | None = None) -> set[int]:
        """Ids of delivered messages whose batch cursor no client presented (yet).

        With the forward-only cursor these are lost if their poller died or was
        cancelled before it journaled them: the protocol's at-most-once window.
        """
        acct = self._account(account)
        return {mid for seq, ids in acct.batches if seq not in acct.acked for mid in ids}

    def typing_events(self, *, account: FakeAccount | str | None = None) -> list[tuple[str, int]]:
        """``(user, status)`` of every accepted ``sendtyping``."""
        return list(self._account(account).typing_events)

    def notify_events(self, *, account: FakeAccount | str | None = None) -> list[str]:
        """``"start"``/``"stop"`` of every accepted notify call."""
        return list(self._account(account).notify_events)

    # --- QR logins ------------------------------------------------------------------

    def scan_qr(
        self,
        qrcode: str | None = None,
        *,
        verify_code: str | None = None,
        redirect_host: str | None = None,
    ) -> None:
        """The user scans the QR code (optionally demanding a verify code / redirecting)."""
        session = self.qr.latest(qrcode)
        session.redirect_host = redirect_host
        if verify_code is not None:
            session.verify_code = verify_code
            session.set_status("need_verifycode")
        else:
            session.set_status("scaned_but_redirect" if redirect_host else "scaned")

    def confirm_qr(self, qrcode: str | None = None, *, owner_id: str | None = None) -> FakeAccount:
        """The user confirms on the phone: an account (or ``binded_redirect``).

        The first login binds the default account (so ``fake-server`` + ``login`` +
        ``/_fake/inject`` work together); later logins create new accounts.
        """
        session = self.qr.latest(qrcode)
        for token in session.local_tokens:
            known = self.accounts.get(token)
            if known is not None and (owner_id is None or known.owner_id == owner_id):
                session.set_status("binded_redirect")
                return known
        if not self._default_bound and self.default.token in self.accounts:
            self._default_bound = True
            account = self.default
            if owner_id is not None:
                account.owner_id = owner_id
        else:
            account = self.add_account(owner_id=owner_id or f"{secrets.token_hex(6)}@im.wechat")
        session.result = {
            "bot_token": account.token,
            "ilink_bot_id": account.bot_id,
            "baseurl": self.base_url,
            "ilink_user_id": account.owner_id,
        }
        session.set_status("confirmed")
        return account

    def expire_qr(self, qrcode: str | None = None) -> None:
        """The QR code expires now."""
        self.qr.latest(qrcode).set_status("expired")
