"""``FakeILinkServer``: the whole iLink protocol in memory, for tests and demos.

It behaves like the live server, not like a convenient one:

- the long poll holds until a message arrives or the hold expires (trio Events, so it
  works under ``autojump_clock``);
- the cursor is forward-only: messages handed out once are never replayed, even when a
  client presents an old cursor;
- a ``sendmessage`` that reuses a ``client_id`` is accepted but not shown;
- request bodies are validated with a strict converter (exact types, no unknown keys),
  so a client's mistake fails a test instead of passing silently; missing iLink headers
  or ``bot_agent`` are tolerated, as the live server does, but recorded in
  ``deviations``.

Use it in-process as an httpx transport (:meth:`FakeILinkServer.transport`) or on a
loopback port (:meth:`FakeILinkServer.serve`).
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs
import trio

from .. import _wire as w
from ._fake_cdn import CdnObject, FakeCdn, media_json
from ._fake_model import (
    FakeAccount,
    FakeRequest,
    FakeResponse,
    Fault,
    FaultPlan,
    RecordedRequest,
    RecordedSend,
)
from ._fake_qr import QrRegistry, QrSession
from ._fake_transport import FakeTransport, serve_fake

if TYPE_CHECKING:
    import httpx

__all__ = ["FakeILinkServer"]

DEFAULT_FAKE_BASE_URL: Final = "https://fake-ilink.invalid"
_STRICT = w.make_converter(strict=True)
_AUTH_ENDPOINTS: Final = {
    "getupdates": w.GetUpdatesReq,
    "sendmessage": w.SendMessageReq,
    "getuploadurl": w.GetUploadUrlReq,
    "getconfig": w.GetConfigReq,
    "sendtyping": w.SendTypingReq,
    "notifystart": w.NotifyReq,
    "notifystop": w.NotifyReq,
}
_PATHS: Final = {
    "ilink/bot/getupdates": "getupdates",
    "ilink/bot/sendmessage": "sendmessage",
    "ilink/bot/getuploadurl": "getuploadurl",
    "ilink/bot/getconfig": "getconfig",
    "ilink/bot/sendtyping": "sendtyping",
    "ilink/bot/msg/notifystart": "notifystart",
    "ilink/bot/msg/notifystop": "notifystop",
    "ilink/bot/get_bot_qrcode": "get_bot_qrcode",
    "ilink/bot/get_qrcode_status": "get_qrcode_status",
}

Handler = Callable[[FakeRequest, FakeAccount | None, Any], Awaitable[FakeResponse]]


def _json(obj: object, status: int = 200) -> FakeResponse:
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    return FakeResponse(status=status, body=body, headers={"content-type": "application/json"})


class FakeILinkServer:
    """An in-memory iLink bot server with a default account, ready to use.

    Args:
        token: The default account's bot token (random when omitted).
        hold: Seconds a long poll is held without messages (``longpolling_timeout_ms``).
        max_batch: Most messages returned by one ``getupdates``.
        base_url: The URL clients use in transport mode (no network is involved).
        seed: Seed for message ids, tokens and random faults (reproducible runs).
        record_requests: Keep every request in :attr:`requests` (turn off for
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
    ) -> None:
        self._rng = random.Random(seed)
        self.hold = hold
        self.max_batch = max_batch
        self.base_url = base_url
        self.record_requests = record_requests
        self.accounts: dict[str, FakeAccount] = {}
        self.requests: list[RecordedRequest] = []
        self.sends: list[RecordedSend] = []
        self.deviations: list[str] = []
        self.rejections: list[str] = []
        self.faults = FaultPlan(rng=self._rng)
        self.qr = QrRegistry(base_url=base_url)
        self.cdn = FakeCdn()
        self._default_bound = False
        self.cdn_full_urls = False
        self._message_ids = itertools.count(7_000_000_000_001)
        self._seqs = itertools.count(1)
        self._sent_changed = trio.Event()
        self.default = self.add_account(token=token, bot_id=bot_id, owner_id=owner_id)

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

    def _account_by_id(self, bot_id: object) -> FakeAccount:
        """The account with this bot id (or token); the default one for ``None``."""
        if bot_id is None:
            return self.default
        for account in self.accounts.values():
            if bot_id in (account.bot_id, account.token):
                return account
        raise KeyError(bot_id)

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
        message_id = next(self._message_ids)
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
        out = []
        for send in self.sent_to(user, account=account):
            for item in send.items:
                payload = next(
                    (v for k, v in item.items() if k.endswith("_item") and isinstance(v, dict)),
                    None,
                )
                if payload is not None and "media" in payload:
                    out.append((int(item["type"]), self.cdn.plaintext_of(payload["media"]), item))
        return out

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

        ``times=math.inf`` keeps the fault until :meth:`clear_faults`.
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
        acct = self._account(account)
        return [s for s in self.sends if s.shown and s.account == acct.token]

    def sent_to(self, user: str, *, account: FakeAccount | str | None = None) -> list[RecordedSend]:
        """Shown sends to ``user``, oldest first."""
        return [s for s in self.sent(account=account) if s.to_user_id == user]

    def sent_texts(self, user: str, *, account: FakeAccount | str | None = None) -> list[str]:
        """Texts of the shown sends to ``user``."""
        return [s.text for s in self.sent_to(user, account=account)]

    async def wait_for_sent(
        self, count: int, *, user: str | None = None, account: FakeAccount | str | None = None
    ) -> list[RecordedSend]:
        """Wait until at least ``count`` shown sends (to ``user``, if given) exist.

        Cancellation:
            Safe; scope it with ``trio.fail_after``.
        """
        while True:
            sends = (
                self.sent(account=account) if user is None else self.sent_to(user, account=account)
            )
            if len(sends) >= count:
                return sends
            await self._sent_changed.wait()

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        """Recorded requests of one endpoint (short name, e.g. ``"getupdates"``)."""
        return [r for r in self.requests if r.endpoint == endpoint]

    def delivered_message_ids(self, *, account: FakeAccount | str | None = None) -> list[int]:
        """Ids of every message handed out by ``getupdates``, in order."""
        return [int(m["message_id"]) for m in self._account(account).delivered if "message_id" in m]

    def acknowledged_message_ids(self, *, account: FakeAccount | str | None = None) -> set[int]:
        """Ids of delivered messages whose batch cursor the client later presented.

        A client that presents a cursor has, by the protocol's contract, stored it, and
        so must have taken care of every message delivered with it or before it.
        """
        acct = self._account(account)
        return {mid for seq, ids in acct.batches if seq <= acct.acked_seq for mid in ids}

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

    # --- request handling -----------------------------------------------------------

    async def handle(self, request: FakeRequest) -> FakeResponse:
        """Answer one HTTP request (used by both the transport and the loopback server)."""
        path = request.path
        if "/_fake/" in path or path.startswith("_fake/"):
            return await self._control(request)
        name = next((n for p, n in _PATHS.items() if path.rstrip("/").endswith(p)), None)
        if name is None:
            return await self._handle_other(request)
        self._record(name, request)
        fault = self.faults.take(name)
        if fault is not None:
            response = await self._act_out(fault)
            if response is not None:
                return response
        if name in _AUTH_ENDPOINTS:
            return await self._authenticated(name, request)
        if name == "get_bot_qrcode":
            return self._get_bot_qrcode(request)
        return await self._get_qrcode_status(request)

    async def _handle_other(self, request: FakeRequest) -> FakeResponse:
        """Paths outside the API: the CDN."""
        path = request.path.rstrip("/")
        name = "cdn_upload" if path.endswith("/upload") else "cdn_download"
        if not path.endswith(("/upload", "/download")):
            return _json({"errmsg": "not found"}, status=404)
        fault = self.faults.take(name)
        if fault is not None and fault.kind not in ("truncate", "html"):
            response = await self._act_out(fault)
            if response is not None:
                return response
        response = self.cdn.upload(request) if name == "cdn_upload" else self.cdn.download(request)
        if fault is not None and fault.kind == "truncate":
            truncated: FakeResponse = attrs.evolve(
                response, body=response.body[: len(response.body) // 2]
            )
            return truncated
        if fault is not None and fault.kind == "html":
            return FakeResponse(status=200, body=fault.body, headers={"content-type": "text/html"})
        return response

    async def _act_out(self, fault: Fault) -> FakeResponse | None:
        if fault.kind == "hang":
            await trio.sleep_forever()
        if fault.kind == "delay":
            await trio.sleep(fault.seconds)
            return None
        if fault.kind == "reset":
            return FakeResponse(action="reset")
        if fault.kind == "status":
            return FakeResponse(status=fault.status, body=fault.body)
        return FakeResponse(status=200, body=fault.body)

    def _record(self, name: str, request: FakeRequest) -> None:
        if not self.record_requests:
            return
        body: Any
        try:
            body = json.loads(request.body) if request.body else None
        except ValueError:
            body = request.body
        if name == "get_bot_qrcode" and isinstance(body, dict):
            body = {"local_token_list": len(body.get("local_token_list") or ())}
        if name == "get_qrcode_status":
            body = dict(request.query)
        auth = request.headers.get("authorization", "")
        account = self.accounts.get(auth.removeprefix("Bearer ").strip())
        self.requests.append(
            RecordedRequest(
                endpoint=name,
                method=request.method,
                headers=dict(request.headers),
                body=body,
                account=None if account is None else account.token,
                at=trio.current_time(),
            )
        )

    def _reject(self, name: str, reason: str) -> FakeResponse:
        self.rejections.append(f"{name}: {reason}")
        return _json({"ret": -1, "errmsg": f"invalid request: {reason}"}, status=400)

    def _check_headers(self, name: str, request: FakeRequest) -> str | None:
        h = request.headers
        if request.method == "POST":
            if h.get("content-type", "").split(";")[0].strip() != "application/json":
                return "Content-Type must be application/json"
            if name in _AUTH_ENDPOINTS and h.get("authorizationtype") != "ilink_bot_token":
                return "AuthorizationType must be ilink_bot_token"
            uin = h.get("x-wechat-uin")
            if uin is not None:
                try:
                    decoded = base64.b64decode(uin, validate=True).decode("ascii")
                    if not decoded.isdigit() or int(decoded) >= 2**32:
                        raise ValueError(decoded)
                except ValueError:
                    return "X-WECHAT-UIN must be base64 of a decimal uint32"
            else:
                self.deviations.append(f"{name}: no X-WECHAT-UIN header")
        for header in ("ilink-app-id", "ilink-app-clientversion"):
            if header not in h:
                self.deviations.append(f"{name}: no {header} header")
        return None

    async def _authenticated(self, name: str, request: FakeRequest) -> FakeResponse:
        problem = self._check_headers(name, request)
        if problem is not None:
            return self._reject(name, problem)
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        account = self.accounts.get(token)
        try:
            body = json.loads(request.body)
        except ValueError:
            return self._reject(name, "body is not JSON")
        try:
            parsed: Any = _STRICT.structure(body, _AUTH_ENDPOINTS[name])
        except Exception as exc:
            text, _ = w.describe_error(exc)
            return self._reject(name, text)
        base_info: w.BaseInfo = parsed.base_info
        if not base_info.bot_agent:
            self.deviations.append(f"{name}: base_info without bot_agent")
        if account is None:
            return _json({"ret": -14, "errcode": -14, "errmsg": "session timeout"})
        handler: Handler = getattr(self, f"_ep_{name}")
        return await handler(request, account, parsed)

    # --- endpoints --------------------------------------------------------------------

    async def _ep_getupdates(
        self, request: FakeRequest, acct: FakeAccount, req: w.GetUpdatesReq
    ) -> FakeResponse:
        del request
        cursor = req.get_updates_buf
        if cursor:
            seq = acct.issued_cursors.get(cursor)
            if seq is None:
                return _json({"ret": -1, "errmsg": "invalid get_updates_buf"})
            acct.acked_seq = max(acct.acked_seq, seq)
        if not acct.queue:
            with trio.move_on_after(self.hold):
                while not acct.queue:
                    await acct.wakeup.wait()
        batch = acct.queue[: self.max_batch]
        del acct.queue[: len(batch)]
        hold_ms = int(self.hold * 1000)
        if not batch:
            return _json(
                {"ret": 0, "msgs": [], "get_updates_buf": cursor, "longpolling_timeout_ms": hold_ms}
            )
        acct.cursor_seq += 1
        new_cursor = base64.b64encode(
            f"{acct.bot_id}:{acct.cursor_seq}:{secrets.token_hex(6)}".encode()
        ).decode()
        acct.issued_cursors[new_cursor] = acct.cursor_seq
        acct.delivered.extend(batch)
        ids = tuple(int(m["message_id"]) for m in batch if isinstance(m.get("message_id"), int))
        acct.batches.append((acct.cursor_seq, ids))
        return _json(
            {
                "ret": 0,
                "msgs": batch,
                "get_updates_buf": new_cursor,
                "longpolling_timeout_ms": hold_ms,
            }
        )

    async def _ep_sendmessage(
        self, request: FakeRequest, acct: FakeAccount, req: w.SendMessageReq
    ) -> FakeResponse:
        msg = req.msg
        problem = _check_outbound(msg)
        if problem is not None:
            return self._reject("sendmessage", problem)
        assert msg.to_user_id is not None
        assert msg.client_id is not None
        if msg.context_token is None:
            self.deviations.append(f"sendmessage to {msg.to_user_id}: no context_token")
        if len(msg.item_list or ()) != 1:
            self.deviations.append("sendmessage: more than one item in item_list")
        shown = msg.client_id not in acct.client_ids
        acct.client_ids.add(msg.client_id)
        items = json.loads(request.body)["msg"].get("item_list", [])
        has_content = any(i.get("type") in (1, 2, 3, 4, 5) for i in items)
        message_id = next(self._message_ids) if has_content else None
        text = "".join(
            str(i.get("text_item", {}).get("text", "")) for i in items if i.get("type") == 1
        )
        self.sends.append(
            RecordedSend(
                to_user_id=msg.to_user_id,
                client_id=msg.client_id,
                context_token=msg.context_token,
                text=text,
                items=items,
                run_id=msg.run_id,
                message_id=message_id,
                shown=shown,
                account=acct.token,
                at=trio.current_time(),
            )
        )
        self._sent_changed.set()
        self._sent_changed = trio.Event()
        if message_id is None:
            return FakeResponse(status=200, body=b"")
        return _json({"message_id": message_id})

    async def _ep_getuploadurl(
        self, request: FakeRequest, acct: FakeAccount, req: w.GetUploadUrlReq
    ) -> FakeResponse:
        del request, acct
        if req.filesize != (req.rawsize // 16 + 1) * 16:
            return _json({"ret": -1, "errmsg": "filesize does not match rawsize"})
        param = self.cdn.expect_upload(req)
        body: dict[str, Any] = {"upload_param": param}
        if self.cdn_full_urls:
            body["upload_full_url"] = (
                f"{self.cdn_base_url}/upload?encrypted_query_param={param}&filekey={req.filekey}"
            )
        return _json(body)

    async def _ep_getconfig(
        self, request: FakeRequest, acct: FakeAccount, req: w.GetConfigReq
    ) -> FakeResponse:
        del request
        ticket = acct.typing_tickets.setdefault(req.ilink_user_id, f"tk-{secrets.token_hex(8)}")
        return _json({"ret": 0, "typing_ticket": ticket})

    async def _ep_sendtyping(
        self, request: FakeRequest, acct: FakeAccount, req: w.SendTypingReq
    ) -> FakeResponse:
        del request
        if acct.typing_tickets.get(req.ilink_user_id) != req.typing_ticket:
            return _json({"ret": -1, "errmsg": "invalid typing_ticket"})
        acct.typing_events.append((req.ilink_user_id, int(req.status)))
        return _json({"ret": 0})

    async def _ep_notifystart(
        self, request: FakeRequest, acct: FakeAccount, req: w.NotifyReq
    ) -> FakeResponse:
        del request, req
        acct.online = True
        acct.notify_events.append("start")
        return _json({"ret": 0})

    async def _ep_notifystop(
        self, request: FakeRequest, acct: FakeAccount, req: w.NotifyReq
    ) -> FakeResponse:
        del request, req
        acct.online = False
        acct.notify_events.append("stop")
        return _json({"ret": 0})

    def _get_bot_qrcode(self, request: FakeRequest) -> FakeResponse:
        problem = self._check_headers("get_bot_qrcode", request)
        if problem is not None:
            return self._reject("get_bot_qrcode", problem)
        if "authorization" in request.headers:
            self.deviations.append(
                "get_bot_qrcode: Authorization sent to an unauthenticated endpoint"
            )
        try:
            req = _STRICT.structure(json.loads(request.body), w.GetBotQrcodeReq)
        except Exception as exc:
            text, _ = w.describe_error(exc)
            return self._reject("get_bot_qrcode", text)
        if len(req.local_token_list) > 10:
            return self._reject("get_bot_qrcode", "more than 10 local tokens")
        session = self.qr.issue(req.local_token_list)
        return _json({"qrcode": session.qrcode, "qrcode_img_content": session.img_content})

    async def _get_qrcode_status(self, request: FakeRequest) -> FakeResponse:
        if request.method != "GET":
            return self._reject("get_qrcode_status", "must be GET")
        session = self.qr.sessions.get(request.query.get("qrcode", ""))
        if session is None:
            return _json({"ret": -1, "errmsg": "unknown qrcode"})
        code = request.query.get("verify_code")
        if code:
            self.qr.submit_code(session, code)
        session.polls += 1
        self.qr.check_expiry(session)
        if self.qr.auto_confirm and session.status in ("wait", "scaned"):
            # The simulated user scans at the first poll and confirms at the second.
            if session.polls == 1:
                session.set_status("scaned")
            else:
                self.confirm_qr(session.qrcode)
        elif session.status in ("wait", "scaned") and not code:
            await self.qr.wait_for_change(session)
        return _json(_status_body(session))

    async def _control(self, request: FakeRequest) -> FakeResponse:
        path = request.path.rstrip("/")
        if path.endswith("/_fake/inject") and request.method == "POST":
            # One {"user", "text"} object, or (an extension) an array of them.
            try:
                body = json.loads(request.body)
                batch = body if isinstance(body, list) else [body]
                triples = [(str(b["user"]), str(b["text"]), b.get("account")) for b in batch]
                accounts = [self._account_by_id(a) for _, _, a in triples]
            except (ValueError, KeyError, TypeError, AttributeError):
                return _json({"errmsg": 'expected {"user": ..., "text": ...}'}, status=400)
            ids = [
                self.inject_text(user, text, account=acct)
                for (user, text, _), acct in zip(triples, accounts, strict=True)
            ]
            if isinstance(body, list):
                return _json([{"message_id": mid} for mid in ids])
            return _json({"message_id": ids[0]})
        if path.endswith("/_fake/stats") and request.method == "GET":
            return _json(
                {
                    "sent": len(self.sent()),
                    "sends": len(self.sends),
                    "queued": len(self.default.queue),
                    "delivered": len(self.default.delivered),
                    "notify": self.default.notify_events,
                }
            )
        if path.endswith("/_fake/sent") and request.method == "GET":
            return _json([s.to_json() for s in self.sent()])
        if path.endswith("/_fake/qr/confirm") and request.method == "POST":
            try:
                account = self.confirm_qr()
            except LookupError as exc:
                return _json({"errmsg": str(exc)}, status=409)
            return _json({"bot_id": account.bot_id})
        return _json({"errmsg": "unknown control path"}, status=404)


def _status_body(session: QrSession) -> dict[str, Any]:
    body: dict[str, Any] = {"status": session.status}
    if session.status == "confirmed" and session.result is not None:
        body.update(session.result)
    if session.status == "scaned_but_redirect" and session.redirect_host:
        body["redirect_host"] = session.redirect_host
        session.redirect_reported = True
        session.set_status("scaned")
    return body


def _check_outbound(msg: w.WeixinMessage) -> str | None:
    """Why an outbound message is unacceptable, or ``None``."""
    if msg.from_user_id != "":
        return "msg.from_user_id must be the empty string"
    if not msg.to_user_id:
        return "msg.to_user_id is required"
    if not msg.client_id:
        return "msg.client_id is required"
    if msg.message_type != w.MessageType.BOT:
        return "msg.message_type must be 2 (BOT)"
    if not msg.item_list:
        return "msg.item_list must not be empty"
    return None
