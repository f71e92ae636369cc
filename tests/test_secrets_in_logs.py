"""Secrets never reach log records, exception messages or reprs.

One full session against the fake (monitor, context tokens, replies, typing, a media
reply and download, ``-14``, an HTTP 500 echoing the token, QR logins) with every
logger at DEBUG; then every secret the fake handed out is looked for everywhere.
"""

from __future__ import annotations

import base64
import json
import logging
import math
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import trio

import weixin_trio as wx
from weixin_trio._client.open import open_client
from weixin_trio.crypto import encode_aes_key_for_media
from weixin_trio.login import login
from weixin_trio.testing import Fault

from ._helpers import until

if TYPE_CHECKING:
    from weixin_trio.testing import FakeILinkServer
    from weixin_trio.testing._fake_model import FakeRequest, FakeResponse

USER = "alice@im.wechat"


@attrs.define
class Session:
    log_text: str = ""
    exceptions: list[BaseException] = attrs.field(factory=list)
    reprs: list[str] = attrs.field(factory=list)
    secrets: set[str] = attrs.field(factory=set)


def collect_secret_values(obj: Any, out: set[str]) -> None:
    """Values of sensitive keys in a JSON response body."""
    keys = {"upload_param", "typing_ticket", "bot_token", "qrcode", "encrypt_query_param"}
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in keys and isinstance(value, str):
                out.add(value)
            collect_secret_values(value, out)
    elif isinstance(obj, list):
        for value in obj:
            collect_secret_values(value, out)


async def run_session(
    fake: FakeILinkServer,
    client: wx.ILinkClient,
    caplog: pytest.LogCaptureFixture,
) -> Session:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    caplog.set_level(logging.DEBUG, logger="httpcore")
    session = Session()
    response_secrets: set[str] = set()
    original_handle = fake.handle

    async def spy(request: FakeRequest) -> FakeResponse:
        response = await original_handle(request)
        if response.body.startswith(b"{"):
            collect_secret_values(json.loads(response.body), response_secrets)
        encrypted = response.headers.get("x-encrypted-param")
        if encrypted:
            response_secrets.add(encrypted)
        return response

    fake.handle = spy  # type: ignore[method-assign]

    results: list[wx.SendResult] = []
    messages: list[wx.Message] = []

    async def handler(msg: wx.Message) -> None:
        messages.append(msg)
        if msg.media:
            data = await msg.download()
            assert data == b"secret file contents"
            fake.inject_fault("cdn_download", Fault.http_status(404, body=b"gone"))
            try:
                await msg.download()
            except wx.WeixinError as exc:
                session.exceptions.append(exc)
        async with msg.typing():
            await trio.sleep(6)  # the typing keep-alive fires once
            results.append(await msg.reply(f"echo {msg.text}"))
        if msg.text == "file please":
            results.append(await msg.reply_file(b"hello file", file_name="a.txt"))

    async def on_error(msg: wx.Message | None, exc: Exception) -> None:
        session.exceptions.append(exc)

    token = fake.token
    leaky_body = f"internal error for token {token}".encode()
    async with wx.open_monitor(client, handler, stale_token_pause=10, on_error=on_error) as monitor:
        fake.inject_text(USER, "hello")
        fake.inject_text("bob@im.wechat", "file please")
        fake.inject_file(USER, b"secret file contents", "doc.txt")
        await until(lambda: len(results) >= 4)
        await monitor.wait_idle()
        fake.inject_fault("getupdates", Fault.http_status(500, body=leaky_body))
        fake.inject_fault("getupdates", Fault.stale_token(), times=2)
        ctx = fake.default.context_tokens[USER]
        fake.inject_fault(
            "sendmessage", Fault.http_status(500, body=f"{leaky_body.decode()} {ctx}".encode())
        )
        fake.inject_text(USER, "after faults")
        await until(lambda: len(results) >= 5)
        await monitor.wait_idle()
        stats = monitor.statistics()
    assert stats.stale_tokens == 2
    assert stats.poll_failures >= 1
    assert stats.failed == 0  # the 500 on sendmessage was retried by the send itself

    # Direct calls: the errors a caller would catch and maybe log.
    fake.inject_fault("getupdates", Fault.http_status(500, body=leaky_body))
    with pytest.raises(wx.WeixinError) as http_error:
        await client.get_updates("")
    session.exceptions.append(http_error.value)
    fake.inject_fault("sendmessage", Fault.stale_token(field="errcode"))
    with pytest.raises(wx.StaleTokenError) as stale:
        await client.send_text(USER, "x")
    session.exceptions.append(stale.value)
    # A send whose 500s outlast its retries (each retry is logged with the error).
    leaky_send = f"{leaky_body.decode()} {ctx}".encode()
    fake.inject_fault("sendmessage", Fault.http_status(500, body=leaky_send), times=math.inf)
    with pytest.raises(wx.ApiError) as send_error:
        await client.send_text(USER, "y")
    fake.clear_faults()
    session.exceptions.append(send_error.value)

    # Two QR logins (the second creates a new account and token).
    fake.qr.auto_confirm = True
    login_reprs: list[str] = []
    async with open_client(
        token=None, base_url=fake.base_url, transport=fake.transport(), pacing=None
    ) as qr_client:
        for _ in range(2):
            result = await login(qr_client, on_qrcode=lambda qr: login_reprs.append(repr(qr)))
            assert result.account is not None
            login_reprs.extend([repr(result), repr(result.account), str(result.account)])
        session.reprs.append(repr(qr_client))

    session.log_text = caplog.text
    session.reprs += login_reprs
    session.reprs += [repr(m) for m in messages] + [str(m) for m in messages]
    session.reprs += [repr(r) for r in results]
    session.reprs += [repr(client), repr(stats), repr(client._state.context_tokens)]

    secrets = session.secrets
    secrets.update(a.token for a in fake.accounts.values())
    assert len(fake.accounts) == 2
    for acct in fake.accounts.values():
        secrets.update(acct.context_tokens.values())
        secrets.update(acct.typing_tickets.values())
    secrets.update(fake.cdn.objects.keys())
    for obj in fake.cdn.objects.values():
        secrets.update(
            {
                obj.key.hex(),
                base64.b64encode(obj.key).decode(),
                encode_aes_key_for_media(obj.key),
            }
        )
    secrets.update(fake.qr.sessions.keys())
    secrets.update(response_secrets)
    secrets.discard("")
    assert fake.default.typing_tickets
    assert len(fake.cdn.objects) == 2  # the inbound file and the uploaded reply
    assert len(fake.qr.sessions) == 2
    return session


def leaks(text: str, secrets: set[str]) -> list[str]:
    return sorted(s for s in secrets if s in text)


async def test_secrets_not_in_log_records(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = await run_session(fake_ilink, ilink_client, caplog)
    assert "poll failed" in session.log_text  # the session really logged
    assert leaks(session.log_text, session.secrets) == []
    # The detector works: the fake's own request records do hold the secrets.
    assert leaks(repr(fake_ilink.requests), session.secrets)


async def test_secrets_not_in_exception_messages(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = await run_session(fake_ilink, ilink_client, caplog)
    assert len(session.exceptions) >= 4
    for exc in session.exceptions:
        assert leaks(str(exc), session.secrets) == [], repr(type(exc))
        assert leaks(repr(exc), session.secrets) == [], repr(type(exc))


async def test_secrets_not_in_reprs(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = await run_session(fake_ilink, ilink_client, caplog)
    for text in session.reprs:
        assert leaks(text, session.secrets) == []


@pytest.mark.slow
async def test_httpcore_debug_lines_hold_no_secrets_over_loopback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """httpcore logs raw response headers at DEBUG (``x-encrypted-param``: a capability).

    Real TCP, so the real httpx/httpcore stack logs; real clock, guarded.
    """
    from weixin_trio._proto.inbound import extract_media
    from weixin_trio.testing import FakeILinkServer

    for name in ("", "httpx", "httpcore", "httpcore.http11", "httpcore.connection"):
        caplog.set_level(logging.DEBUG, logger=name or None)
    fake = FakeILinkServer(hold=1.0)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            base_url = await nursery.start(fake.serve)
            async with open_client(
                token=fake.token, base_url=base_url, cdn_base_url=fake.cdn_base_url, pacing=None
            ) as client:
                fake.inject_file(USER, b"secret file contents", "doc.txt")
                [msg] = (await client.get_updates("")).msgs
                [ref] = extract_media(msg)
                assert await client.download(ref) == b"secret file contents"
                await client.send_file(
                    USER, b"reply file", file_name="r.txt", context_token=msg.context_token
                )
                await client.send_text(USER, "done", context_token=msg.context_token)
            nursery.cancel_scope.cancel()
    secrets = {fake.token, *fake.default.context_tokens.values()}
    for obj in fake.cdn.objects.values():
        secrets |= {obj.param, obj.key.hex(), base64.b64encode(obj.key).decode()}
        secrets.add(encode_aes_key_for_media(obj.key))
    secrets.discard("")
    assert len(fake.cdn.objects) == 2  # the download and the upload both happened
    records = caplog.records
    core = [r for r in records if r.name.startswith("httpcore")]
    assert any("x-encrypted-param" in r.getMessage() for r in core)  # the line is there
    assert any("/c2c/download" in r.getMessage() for r in records)  # and the CDN request
    for record in records:
        assert leaks(record.getMessage(), secrets) == [], record.name
    assert leaks(caplog.text, secrets) == []


def carriers(secret: str) -> list[str]:
    """The shapes in which a secret may reach a log line's free text."""
    return [
        f"GET https://cdn.example/c2c/download?encrypted_query_param={secret}&filekey=k",
        f"Authorization: Bearer {secret}",
        f'{{"context_token": "{secret}", "n": 1}}',
        f"{{'aes_key': '{secret}', 'n': 1}}",
        f"[(b'x-encrypted-param', b'{secret}')]",
        f"token={secret}&x=1",
    ]


async def test_secrets_not_in_json_log_lines(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``--log-format json``: the session's records, and records whose exception text and
    extra fields carry every secret of the session, print no secret (and parse)."""
    from weixin_trio._cli.logs import JsonFormatter, RedactingFormatter

    session = await run_session(fake_ilink, ilink_client, caplog)
    log = logging.getLogger("weixin_trio.secrets_test")
    for secret in sorted(session.secrets):
        for text in carriers(secret):
            try:
                raise RuntimeError(f"request failed: {text}")
            except RuntimeError:
                log.exception(
                    "failed", extra={"detail": text, "account_id": "a@im.bot", "message_id": 7}
                )
    records = caplog.records
    carrying = [r for r in records if r.name == "weixin_trio.secrets_test"]
    assert len(carrying) == 6 * len(session.secrets)
    # The detector works: unredacted, these records hold the secrets.
    assert leaks(logging.Formatter().format(carrying[0]), session.secrets)
    assert leaks("".join(str(r.__dict__["detail"]) for r in carrying), session.secrets)
    json_lines = [JsonFormatter().format(r) for r in records]
    for line in json_lines:
        fields = json.loads(line)
        assert {"time", "level", "logger", "message"} <= fields.keys()
    assert leaks("\n".join(json_lines), session.secrets) == []
    last = json.loads(json_lines[-1])
    assert last["account_id"] == "a@im.bot"
    assert last["message_id"] == 7
    assert "<redacted>" in last["detail"]
    assert "RuntimeError: request failed" in last["exception"]
    text_lines = [RedactingFormatter("%(levelname)s %(message)s").format(r) for r in records]
    assert leaks("\n".join(text_lines), session.secrets) == []
