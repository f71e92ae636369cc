"""The request side of the fake server: routing, validation, faults, every endpoint.

`FakeApi` answers requests against a `FakeILinkServer`'s state (typed as the
`ServerState` protocol); the server object holds the state and the test-facing API.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import attrs
import trio

from .. import _wire as w
from ._fake_lenient import ProtocolIssue, parse_authorization, read_body, uin_problem
from ._fake_model import (
    FakeAccount,
    FakeRequest,
    FakeResponse,
    Fault,
    RecordedRequest,
    RecordedSend,
)
from ._fake_state import account_by_id

if TYPE_CHECKING:
    from ._fake_lenient import Report
    from ._fake_qr import QrSession
    from ._fake_state import ServerState

__all__ = ["FakeApi"]

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
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    try:
        body = text.encode()
    except UnicodeEncodeError:  # a lone surrogate: send it escaped, as a JSON server would
        body = json.dumps(obj, separators=(",", ":")).encode()
    return FakeResponse(status=status, body=body, headers={"content-type": "application/json"})


class FakeApi:
    """Answers HTTP requests from a fake server's state."""

    def __init__(self, server: ServerState) -> None:
        self.server = server

    async def handle(self, request: FakeRequest) -> FakeResponse:
        """Answer one HTTP request (used by both the transport and the loopback server)."""
        path = request.path
        if "/_fake/" in path or path.startswith("_fake/"):
            return await self._control(request)
        name = next((n for p, n in _PATHS.items() if path.rstrip("/").endswith(p)), None)
        if name is None:
            return await self._handle_other(request)
        self._record(name, request)
        fault = self.server.faults.take(name)
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
        fault = self.server.faults.take(name)
        if fault is not None and fault.kind not in ("truncate", "html"):
            response = await self._act_out(fault)
            if response is not None:
                return response
        response = (
            self.server.cdn.upload(request)
            if name == "cdn_upload"
            else self.server.cdn.download(request)
        )
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
        if not self.server.record_requests:
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
        account = self.server.accounts.get(auth.removeprefix("Bearer ").strip())
        self.server.requests.append(
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
        self.server.rejections.append(f"{name}: {reason}")
        return _json({"ret": -1, "errmsg": f"invalid request: {reason}"}, status=400)

    def _note(self, issues: list[ProtocolIssue], name: str) -> Report:
        """A ``report`` callback that adds the issues of one request to ``issues``."""

        def report(category: str, field: str | None, detail: str) -> None:
            issues.append(ProtocolIssue(category, name, field, detail))

        return report

    def _file(self, issues: list[ProtocolIssue]) -> ProtocolIssue | None:
        """Record a request's issues; the first one a strict server rejects for, if strict."""
        self.server.protocol_issues.extend(issues)
        if self.server.strict:
            return next((i for i in issues if i.strict_rejects), None)
        return None

    def _check_headers(self, request: FakeRequest, report: Report) -> None:
        h = request.headers
        if request.method == "POST":
            if h.get("content-type", "").split(";")[0].strip().lower() != "application/json":
                report("content-type", "Content-Type", "Content-Type is not application/json")
            uin = h.get("x-wechat-uin")
            if uin is None:
                report("missing-header", "X-WECHAT-UIN", "no X-WECHAT-UIN header")
            elif (problem := uin_problem(uin)) is not None:
                report("bad-header", "X-WECHAT-UIN", problem)
        for header in ("iLink-App-Id", "iLink-App-ClientVersion"):
            if header.lower() not in h:
                report("missing-header", header, f"no {header} header")

    async def _authenticated(self, name: str, request: FakeRequest) -> FakeResponse:
        issues: list[ProtocolIssue] = []
        report = self._note(issues, name)
        self._check_headers(request, report)
        if request.headers.get("authorizationtype") != "ilink_bot_token":
            detail = "AuthorizationType is not ilink_bot_token"
            report("missing-authorization-type", "AuthorizationType", detail)
        token, unusual = parse_authorization(request.headers.get("authorization"))
        if unusual is not None:
            report("auth-scheme", "Authorization", unusual)
        try:
            body = json.loads(request.body)
        except ValueError:
            return self._reject(name, "body is not JSON")
        try:
            parsed: Any = read_body(body, _AUTH_ENDPOINTS[name], report)
        except ValueError as exc:
            return self._reject(name, str(exc))
        base_info: w.BaseInfo = parsed.base_info
        if "base_info" in body and not base_info.bot_agent:  # (a missing one is reported)
            report("missing-bot-agent", "$.base_info.bot_agent", "base_info without bot_agent")
        refused = self._file(issues)
        account = self.server.accounts.get(token)
        if account is None or (refused is not None and refused.category == "auth-scheme"):
            return _json({"ret": -14, "errcode": -14, "errmsg": "session timeout"})
        if refused is not None:
            return self._reject(name, refused.detail)
        handler: Handler = getattr(self, f"_ep_{name}")
        return await handler(request, account, parsed)

    def _endpoint_issue(self, name: str, category: str, field: str, detail: str) -> bool:
        """Record an issue found by an endpoint; whether a strict server refuses it."""
        issues: list[ProtocolIssue] = []
        self._note(issues, name)(category, field, detail)
        return self._file(issues) is not None

    # --- endpoints --------------------------------------------------------------------

    async def _ep_getupdates(
        self, request: FakeRequest, acct: FakeAccount, req: w.GetUpdatesReq
    ) -> FakeResponse:
        del request
        cursor = req.get_updates_buf
        presented = 0
        if cursor:
            seq = acct.issued_cursors.get(cursor)
            if seq is None:
                # A stale or foreign cursor (e.g. kept across restarts of the fake): go on
                # from what was delivered; the cursor is forward-only anyway.
                field, detail = "$.get_updates_buf", "get_updates_buf was not issued by this server"
                if self._endpoint_issue("getupdates", "foreign-cursor", field, detail):
                    return _json({"ret": -1, "errmsg": "invalid get_updates_buf"})
                seq = acct.cursor_seq
            presented = seq
            acct.acked_seq = max(acct.acked_seq, seq)
            # Presenting a cursor acknowledges its batch and the batches it descends
            # from, not a batch handed to a poller that never presented its cursor.
            while seq > 0 and seq not in acct.acked:
                acct.acked.add(seq)
                seq = acct.cursor_parents.get(seq, 0)
        if not acct.queue:
            with trio.move_on_after(self.server.hold):
                while not acct.queue:
                    await acct.wakeup.wait()
        batch = acct.queue[: self.server.max_batch]
        del acct.queue[: len(batch)]
        hold_ms = int(self.server.hold * 1000)
        if not batch:
            return _json(
                {"ret": 0, "msgs": [], "get_updates_buf": cursor, "longpolling_timeout_ms": hold_ms}
            )
        acct.cursor_seq += 1
        new_cursor = base64.b64encode(
            f"{acct.bot_id}:{acct.cursor_seq}:{secrets.token_hex(6)}".encode()
        ).decode()
        acct.issued_cursors[new_cursor] = acct.cursor_seq
        acct.cursor_parents[acct.cursor_seq] = presented
        acct.delivered.extend(batch)
        for m in batch:
            token = m.get("context_token") if isinstance(m, dict) else None
            if isinstance(token, str):
                acct.issued_tokens.add(token)
        ids = tuple(
            mid for m in batch if isinstance(m, dict) and type(mid := m.get("message_id")) is int
        )
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
        for category, field, detail in _outbound_issues(msg, acct):
            if self._endpoint_issue("sendmessage", category, field, detail):
                return self._reject("sendmessage", detail)
        shown = msg.client_id not in acct.client_ids
        acct.client_ids.add(msg.client_id)
        items = json.loads(request.body)["msg"].get("item_list", [])
        has_content = any(i.get("type") in (1, 2, 3, 4, 5) for i in items)
        message_id = next(self.server.send_log.message_ids) if has_content else None
        text = "".join(
            str(i.get("text_item", {}).get("text", "")) for i in items if i.get("type") == 1
        )
        self.server.send_log.record(
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
        if message_id is None:
            return FakeResponse(status=200, body=b"")
        return _json({"message_id": message_id})

    async def _ep_getuploadurl(
        self, request: FakeRequest, acct: FakeAccount, req: w.GetUploadUrlReq
    ) -> FakeResponse:
        del request, acct
        if req.filesize != (req.rawsize // 16 + 1) * 16:
            return _json({"ret": -1, "errmsg": "filesize does not match rawsize"})
        param = self.server.cdn.expect_upload(req)
        body: dict[str, Any] = {"upload_param": param}
        if self.server.cdn_full_urls:
            body["upload_full_url"] = (
                f"{self.server.cdn_base_url}/upload?encrypted_query_param={param}&filekey={req.filekey}"
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
        issues: list[ProtocolIssue] = []
        report = self._note(issues, "get_bot_qrcode")
        self._check_headers(request, report)
        if "authorization" in request.headers:
            detail = "Authorization sent to an unauthenticated endpoint"
            report("unknown-field", "Authorization", detail)
        refused = self._file(issues)
        if refused is not None:
            return self._reject("get_bot_qrcode", refused.detail)
        try:
            req = _STRICT.structure(json.loads(request.body), w.GetBotQrcodeReq)
        except Exception as exc:
            text, _ = w.describe_error(exc)
            return self._reject("get_bot_qrcode", text)
        if len(req.local_token_list) > 10:
            return self._reject("get_bot_qrcode", "more than 10 local tokens")
        session = self.server.qr.issue(req.local_token_list)
        return _json({"qrcode": session.qrcode, "qrcode_img_content": session.img_content})

    async def _get_qrcode_status(self, request: FakeRequest) -> FakeResponse:
        if request.method != "GET":
            return self._reject("get_qrcode_status", "must be GET")
        session = self.server.qr.sessions.get(request.query.get("qrcode", ""))
        if session is None:
            return _json({"ret": -1, "errmsg": "unknown qrcode"})
        code = request.query.get("verify_code")
        if code:
            self.server.qr.submit_code(session, code)
        session.polls += 1
        self.server.qr.check_expiry(session)
        if self.server.qr.auto_confirm and session.status in ("wait", "scaned"):
            # The simulated user scans at the first poll and confirms at the second.
            if session.polls == 1:
                session.set_status("scaned")
            else:
                self.server.confirm_qr(session.qrcode)
        elif session.status in ("wait", "scaned") and not code:
            await self.server.qr.wait_for_change(session)
        return _json(_status_body(session))

    async def _control(self, request: FakeRequest) -> FakeResponse:
        path = request.path.rstrip("/")
        if path.endswith("/_fake/inject") and request.method == "POST":
            # One {"user", "text"} object, or (an extension) an array of them.
            try:
                body = json.loads(request.body)
                batch = body if isinstance(body, list) else [body]
                triples = [(str(b["user"]), str(b["text"]), b.get("account")) for b in batch]
                accounts = [
                    account_by_id(self.server.accounts, self.server.default, a)
                    for _, _, a in triples
                ]
            except (ValueError, KeyError, TypeError, AttributeError):
                return _json({"errmsg": 'expected {"user": ..., "text": ...}'}, status=400)
            ids = [
                self.server.inject_text(user, text, account=acct)
                for (user, text, _), acct in zip(triples, accounts, strict=True)
            ]
            if isinstance(body, list):
                return _json([{"message_id": mid} for mid in ids])
            return _json({"message_id": ids[0]})
        if path.endswith("/_fake/stats") and request.method == "GET":
            return _json(
                {
                    "sent": len(self.server.sent()),
                    "sends": len(self.server.sends),
                    "queued": len(self.server.default.queue),
                    "delivered": len(self.server.default.delivered),
                    "notify": self.server.default.notify_events,
                }
            )
        if path.endswith("/_fake/issues") and request.method == "GET":
            return _json([i.to_json() for i in self.server.protocol_issues])
        if path.endswith("/_fake/sent") and request.method == "GET":
            return _json([s.to_json() for s in self.server.sent()])
        if path.endswith("/_fake/qr/confirm") and request.method == "POST":
            try:
                account = self.server.confirm_qr()
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
    """Why an outbound message is unacceptable even to a lenient server, or ``None``."""
    if msg.from_user_id:
        return "msg.from_user_id must be the empty string"
    if not msg.to_user_id:
        return "msg.to_user_id is required"
    if not msg.client_id:
        return "msg.client_id is required"
    if msg.message_type not in (None, w.MessageType.BOT):
        return "msg.message_type must be 2 (BOT)"
    return None


def _outbound_issues(msg: w.WeixinMessage, acct: FakeAccount) -> list[tuple[str, str, str]]:
    """How an outbound message differs from what the official client sends (PROTOCOL §5.1).

    An empty ``item_list`` (or none) is what the official client sends for an empty
    text, so it is no issue.
    """
    found = []
    if msg.from_user_id is None:
        found.append(("missing-field", "$.msg.from_user_id", "msg.from_user_id is missing"))
    if msg.message_type is None:
        found.append(("missing-field", "$.msg.message_type", "msg.message_type is missing"))
    if len(msg.item_list or ()) > 1:
        found.append(("multi-item", "$.msg.item_list", "more than one item in item_list"))
    if msg.context_token is None:
        detail = f"send to {msg.to_user_id} without context_token"
        found.append(("missing-context-token", "$.msg.context_token", detail))
    elif msg.context_token not in acct.issued_tokens:
        detail = f"send to {msg.to_user_id} with a context_token this server never issued"
        found.append(("unknown-context-token", "$.msg.context_token", detail))
    return found
