"""``ILinkClient`` against the fake server: headers, bodies, every endpoint, error mapping.

Everything runs in-process through ``FakeILinkServer.transport()`` (or an
``httpx.MockTransport`` where an exact response body matters), so the long-poll and
QR tests can use ``autojump_clock``.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import re
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trio
import trio.testing

import weixin_trio as wx
from weixin_trio import _wire as w
from weixin_trio.testing import FakeILinkServer, Fault

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable


ALICE = "alice@im.wechat"
BOB = "bob@im.wechat"
MOCK_TOKEN = "mock-bot-token-0123456789abcdef"
SECRET_CTX = "ctx-SECRET-context-token-value-42"


def expected_client_version(version: str) -> str:
    """``iLink-App-ClientVersion`` computed independently from the version string."""
    parts = []
    for part in version.split(".")[:3]:
        m = re.match(r"[0-9]+", part)
        parts.append(int(m.group()) & 0xFF if m else 0)
    parts += [0] * (3 - len(parts))
    return str((parts[0] << 16) | (parts[1] << 8) | parts[2])


def test_expected_client_version_helper() -> None:
    assert expected_client_version("0.1.0") == "256"
    assert expected_client_version("2.4.3") == "132099"
    assert expected_client_version("1.0.11") == "65547"


@asynccontextmanager
async def connect(fake: FakeILinkServer, **kwargs: Any) -> AsyncIterator[wx.ILinkClient]:
    """A client of the fake's default account (pacing and send retries off unless given).

    These tests pin how one request's failure is mapped; the send retries are tested in
    ``tests/monitor/test_send_storms.py`` and ``tests/test_outbound.py``.
    """
    kwargs.setdefault("pacing", None)
    kwargs.setdefault("send_retry", None)
    kwargs.setdefault("token", fake.token)
    async with wx.open_client(base_url=fake.base_url, transport=fake.transport(), **kwargs) as c:
        yield c


@asynccontextmanager
async def mock_client(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    base_url: str = "https://mock.invalid",
    **kwargs: Any,
) -> AsyncIterator[wx.ILinkClient]:
    """A client whose every request is answered by ``handler``."""
    async with wx.open_client(
        token=MOCK_TOKEN,
        base_url=base_url,
        transport=httpx.MockTransport(handler),
        pacing=None,
        **kwargs,
    ) as client:
        yield client


def reply(body: bytes, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body)

    return handler


async def call_every_authenticated_endpoint(client: wx.ILinkClient, fake: FakeILinkServer) -> None:
    fake.inject_text(ALICE, "hi")
    updates = await client.get_updates("")
    [msg] = updates.msgs
    await client.send_text(ALICE, "hello", context_token=msg.context_token)
    await client.get_upload_url(
        w.GetUploadUrlReq(
            filekey="0" * 32,
            media_type=w.UploadMediaType.FILE,
            to_user_id=ALICE,
            rawsize=100,
            rawfilemd5="0" * 32,
            filesize=112,
            aeskey="0" * 32,
            base_info=w.BaseInfo(channel_version="ignored"),
        )
    )
    config = await client.get_config(ALICE, msg.context_token)
    assert config.typing_ticket
    await client.send_typing(ALICE, config.typing_ticket, w.TypingStatus.TYPING)
    await client.notify_start()
    await client.notify_stop()


def decode_uin(value: str) -> int:
    text = base64.b64decode(value, validate=True).decode("ascii")
    assert re.fullmatch(r"[0-9]+", text), text
    assert str(int(text)) == text  # plain decimal text, no padding
    number = int(text)
    assert 0 <= number < 2**32
    return number


AUTH_ENDPOINTS = (
    "getupdates",
    "sendmessage",
    "getuploadurl",
    "getconfig",
    "sendtyping",
    "notifystart",
    "notifystop",
)


# --- headers and base_info -------------------------------------------------------------


async def test_post_headers_on_every_authenticated_endpoint() -> None:
    fake = FakeILinkServer()
    async with connect(fake) as client:
        await call_every_authenticated_endpoint(client, fake)
    requests = [r for r in fake.requests if r.endpoint in AUTH_ENDPOINTS]
    assert sorted({r.endpoint for r in requests}) == sorted(AUTH_ENDPOINTS)
    version = expected_client_version(wx.__version__)
    uins = []
    for r in requests:
        h = r.headers
        assert r.method == "POST"
        assert h["content-type"] == "application/json"
        assert h["authorizationtype"] == "ilink_bot_token"
        assert h["authorization"] == f"Bearer {fake.token}"
        assert h["ilink-app-id"] == "bot"
        assert h["ilink-app-clientversion"] == version
        assert "skroutetag" not in h
        uins.append(decode_uin(h["x-wechat-uin"]))
        assert r.body["base_info"] == {
            "channel_version": wx.__version__,
            "bot_agent": f"weixin-trio/{wx.__version__}",
        }
        assert r.account == fake.token
    # A fresh X-WECHAT-UIN per request (consecutive ones differ).
    assert all(a != b for a, b in itertools.pairwise(uins))
    assert len(set(uins)) == len(uins)
    assert fake.rejections == []
    assert fake.deviations == []


async def test_uin_differs_on_consecutive_requests() -> None:
    fake = FakeILinkServer()
    async with connect(fake) as client:
        for _ in range(5):
            await client.notify_start()
    uins = [decode_uin(r.headers["x-wechat-uin"]) for r in fake.requests_to("notifystart")]
    assert len(uins) == 5
    assert len(set(uins)) == 5


@pytest.mark.parametrize(("route_tag", "header"), [(7, "7"), ("grey-1", "grey-1")])
async def test_route_tag_header_only_when_given(route_tag: str | int, header: str) -> None:
    fake = FakeILinkServer()
    async with connect(fake, route_tag=route_tag) as client:
        await client.notify_start()
        qr = await client.get_bot_qrcode()
        assert qr.qrcode is not None
        fake.scan_qr(verify_code="1")  # so the status poll answers at once
        await client.get_qrcode_status(qr.qrcode)
    for name in ("notifystart", "get_bot_qrcode", "get_qrcode_status"):
        [request] = fake.requests_to(name)
        assert request.headers["skroutetag"] == header


@pytest.mark.parametrize(
    ("bot_agent", "sent"),
    [
        (None, f"weixin-trio/{wx.__version__}"),
        # "Bot/1.0" is itself a valid product token, so it is kept (PROTOCOL §1.5).
        ("My Bot/1.0 Good/2", "Bot/1.0 Good/2"),
        ("My Bot ValidApp/1.0", "ValidApp/1.0"),
        ("MyBot/1.2.0 (region=cn;env=prod)", "MyBot/1.2.0 (region=cn;env=prod)"),
        ("MyBot/1.0 (中文)", "MyBot/1.0"),
        ("中文/1.0", f"weixin-trio/{wx.__version__}"),
        ("中文/1.0 Good/2 (note)", "Good/2 (note)"),
    ],
)
async def test_bot_agent_is_sanitised(bot_agent: str | None, sent: str) -> None:
    fake = FakeILinkServer()
    async with connect(fake, bot_agent=bot_agent) as client:
        await client.notify_start()
        assert client._endpoints.base_info.bot_agent == sent
    [request] = fake.requests_to("notifystart")
    assert request.body["base_info"] == {"channel_version": wx.__version__, "bot_agent": sent}


async def test_qr_requests_carry_no_credentials() -> None:
    fake = FakeILinkServer()
    async with connect(fake) as client:  # a token is configured, and still not sent
        qr = await client.get_bot_qrcode(local_tokens=("a", "b"))
        assert qr.qrcode is not None
        fake.scan_qr(verify_code="1234")
        await client.get_qrcode_status(qr.qrcode)
    [fetch] = fake.requests_to("get_bot_qrcode")
    assert fetch.method == "POST"
    assert "authorization" not in fetch.headers
    assert fetch.headers["authorizationtype"] == "ilink_bot_token"
    decode_uin(fetch.headers["x-wechat-uin"])
    assert fetch.headers["ilink-app-id"] == "bot"
    assert fetch.body == {"local_token_list": 2}  # the fake records how many, not the tokens
    [status] = fake.requests_to("get_qrcode_status")
    assert status.method == "GET"
    for header in ("authorization", "authorizationtype", "x-wechat-uin", "content-type"):
        assert header not in status.headers
    assert status.headers["ilink-app-id"] == "bot"
    assert status.headers["ilink-app-clientversion"] == expected_client_version(wx.__version__)
    assert "get_bot_qrcode: Authorization sent to an unauthenticated endpoint" not in (
        fake.deviations
    )


async def test_qr_fetch_exact_request() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"qrcode": "q", "qrcode_img_content": "https://x/q"})

    tokens = tuple(f"t{i}" for i in range(12))
    async with mock_client(handler) as client:
        resp = await client.get_bot_qrcode(local_tokens=tokens)
    assert resp.qrcode == "q"
    assert resp.qrcode_img_content == "https://x/q"
    [request] = seen
    assert str(request.url) == "https://mock.invalid/ilink/bot/get_bot_qrcode?bot_type=3"
    # At most 10 tokens, newest first as given; no base_info in this body.
    assert json.loads(request.content) == {"local_token_list": list(tokens[:10])}
    assert "authorization" not in request.headers


@pytest.mark.parametrize("base_url", ["https://host.invalid/p", "https://host.invalid/p/"])
async def test_url_joining_keeps_path_prefix(base_url: str) -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        if request.url.path.endswith("get_qrcode_status"):
            return httpx.Response(200, json={"status": "wait"})
        return httpx.Response(200, json={"ret": 0})

    async with mock_client(handler, base_url=base_url) as client:
        await client.notify_start()
        await client.notify_stop()
        await client.get_updates("")
        await client.get_qrcode_status("a b&c=/+", verify_code="12 34")
    assert urls == [
        "https://host.invalid/p/ilink/bot/msg/notifystart",
        "https://host.invalid/p/ilink/bot/msg/notifystop",
        "https://host.invalid/p/ilink/bot/getupdates",
        "https://host.invalid/p/ilink/bot/get_qrcode_status"
        "?qrcode=a%20b%26c%3D%2F%2B&verify_code=12%2034",
    ]


async def test_request_body_is_compact_utf8() -> None:
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        return httpx.Response(200, json={"message_id": 1})

    async with mock_client(handler) as client:
        await client.send_text(ALICE, "你好", context_token="ctx")
    [body] = bodies
    assert "你好".encode() in body
    assert b"\\u" not in body
    assert b'"from_user_id":""' in body
    msg = json.loads(body)["msg"]
    assert msg["to_user_id"] == ALICE
    assert msg["message_type"] == 2
    assert msg["message_state"] == 2
    assert msg["context_token"] == "ctx"
    assert msg["item_list"] == [{"type": 1, "text_item": {"text": "你好"}}]


# --- sends ---------------------------------------------------------------------------


async def test_fresh_client_id_per_send() -> None:
    fake = FakeILinkServer()
    async with connect(fake) as client:
        r1 = await client.send_text(ALICE, "one", context_token="ctx")
        r2 = await client.send_text(ALICE, "two", context_token="ctx")
    sent = fake.sent()
    assert [s.text for s in sent] == ["one", "two"]
    assert [s.client_id for s in sent] == [r1.client_id, r2.client_id]
    assert r1.client_id != r2.client_id
    assert all(s.client_id.startswith("weixin-trio:") for s in sent)
    assert r1.confirmed
    assert r2.confirmed
    assert r1.message_id != r2.message_id
    # The whole msg object, so that no field is added or left out unnoticed.
    assert fake.requests_to("sendmessage")[-1].body["msg"] == {
        "from_user_id": "",
        "to_user_id": ALICE,
        "client_id": r2.client_id,
        "message_type": 2,
        "message_state": 2,
        "item_list": [{"type": 1, "text_item": {"text": "two"}}],
        "context_token": "ctx",
    }


async def test_reused_client_id_accepted_but_shown_once() -> None:
    fake = FakeILinkServer()
    async with connect(fake) as client:
        r1 = await client.send_text(ALICE, "same", context_token="ctx", client_id="fixed-id-1")
        r2 = await client.send_text(ALICE, "same", context_token="ctx", client_id="fixed-id-1")
    assert r1.client_id == r2.client_id == "fixed-id-1"
    assert r1.confirmed
    assert r2.confirmed
    assert [s.client_id for s in fake.sent()] == ["fixed-id-1"]
    assert [s.shown for s in fake.sends] == [True, False]
    assert len(fake.requests_to("sendmessage")) == 2


async def test_send_text_needs_a_context_token() -> None:
    fake = FakeILinkServer()
    async with connect(fake) as client:
        with pytest.raises(wx.NoContextTokenError) as info:
            await client.send_text(BOB, "hello")
        assert info.value.user_id == BOB
        assert BOB in str(info.value)
        result = await client.send_text(BOB, "hello", context_token="ctx-given")
        assert result.confirmed
        for empty in ("", "   \n"):
            with pytest.raises(ValueError, match="empty"):
                await client.send_text(BOB, empty, context_token="ctx-given")
    [send] = fake.sent()
    assert send.context_token == "ctx-given"
    assert send.to_user_id == BOB
    assert len(fake.requests_to("sendmessage")) == 1


async def test_known_context_token_is_used() -> None:
    fake = FakeILinkServer()
    async with connect(fake, context_tokens={ALICE: "ctx-stored"}) as client:
        await client.send_text(ALICE, "hi")
    assert fake.sent()[0].context_token == "ctx-stored"


@pytest.mark.parametrize(
    ("body", "message_id"),
    [
        (b"", None),
        (b"  \n", None),
        (b"{}", None),
        (b'{"ret":0}', None),
        (b'{"ret":0,"errcode":0}', None),
        (b'{"message_id": 5}', 5),
        (b'{"message_id": 9223372036854775807}', 2**63 - 1),
        (b'{"ret": 0, "message_id": "6", "extra": {"x": 1}}', 6),
    ],
)
async def test_sendmessage_success_bodies(body: bytes, message_id: int | None) -> None:
    async with mock_client(reply(body)) as client:
        result = await client.send_text(ALICE, "x", context_token="ctx", client_id="cid")
    assert result.client_id == "cid"
    assert result.message_id == message_id
    assert result.confirmed is (message_id is not None)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"ret":-2,"errmsg":"prepare failed"}', wx.RateLimitedError),
        (b'{"ret":-14}', wx.StaleTokenError),
        (b'{"errcode":-14}', wx.StaleTokenError),
        (b'{"ret":-1,"errmsg":"x"}', wx.ApiError),
        (b'{"ret":0,"errcode":17}', wx.ApiError),
        (b'{"ret":"--5"}', wx.ProtocolError),
        (b'{"ret":"\xc2\xb2"}', wx.ProtocolError),
        (b'{"ret":{"a":1}}', wx.ProtocolError),
        (b'{"message_id":"abc"}', wx.ProtocolError),
        (b"not json", wx.ProtocolError),
        (b"[]", wx.ProtocolError),
        (b"null", wx.ProtocolError),
    ],
)
async def test_sendmessage_failure_bodies(body: bytes, error: type[Exception]) -> None:
    async with mock_client(reply(body)) as client:
        with pytest.raises(error) as info:
            await client.send_text(ALICE, "x", context_token="ctx")
    assert type(info.value) is error


# --- error mapping through the fake ------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
@pytest.mark.parametrize("endpoint", ["getupdates", "sendmessage", "getconfig", "notifystart"])
async def test_http_status_maps_to_api_error(status: int, endpoint: str) -> None:
    fake = FakeILinkServer()
    body = json.dumps(
        {"errmsg": "upstream down", "token": fake.token, "context_token": SECRET_CTX}
    ).encode()
    fake.inject_fault(endpoint, Fault.http_status(status, body=body))
    async with connect(fake) as client:
        with pytest.raises(wx.ApiError) as info:
            await _call(client, endpoint)
    exc = info.value
    assert type(exc) is wx.ApiError
    assert exc.status_code == status
    assert exc.ret is None
    assert exc.endpoint.endswith(endpoint)
    assert exc.errmsg is not None
    assert "upstream down" in exc.errmsg
    assert "<redacted>" in exc.errmsg
    assert fake.token not in exc.errmsg
    assert f"HTTP {status}" in str(exc)
    for text in (str(exc), repr(exc)):
        assert fake.token not in text
        assert SECRET_CTX not in text


async def _call(client: wx.ILinkClient, endpoint: str) -> None:
    if endpoint == "getupdates":
        await client.get_updates("")
    elif endpoint == "sendmessage":
        await client.send_text(ALICE, "x", context_token="ctx-secret-value")
    elif endpoint == "getconfig":
        await client.get_config(ALICE)
    elif endpoint == "notifystart":
        await client.notify_start()
    else:
        raise AssertionError(endpoint)


@pytest.mark.parametrize("endpoint", ["getupdates", "sendmessage", "getconfig", "notifystart"])
async def test_reset_maps_to_transport_error(endpoint: str) -> None:
    fake = FakeILinkServer()
    async with connect(fake) as client:
        await client.notify_start()  # the next request reuses this connection
        # The server got the request and reset: not a stale connection, so not retried.
        fake.inject_fault(endpoint, Fault.reset())
        with pytest.raises(wx.TransportError, match="ReadError") as info:
            await _call(client, endpoint)
        assert info.value.endpoint.endswith(endpoint)
        assert isinstance(info.value.__cause__, trio.BrokenResourceError)
        assert isinstance(info.value.__cause__.__cause__, httpx.TransportError)
        # The fault was used up: the next call goes through.
        fake.inject_text(ALICE, "after")
        await _call(client, endpoint)


@pytest.mark.parametrize("endpoint", ["getupdates", "sendmessage", "getconfig", "notifystart"])
async def test_malformed_json_maps_to_protocol_error(endpoint: str) -> None:
    fake = FakeILinkServer()
    fake.inject_fault(endpoint, Fault.malformed_json())
    async with connect(fake) as client:
        with pytest.raises(wx.ProtocolError) as info:
            await _call(client, endpoint)
    assert info.value.endpoint.endswith(endpoint)
    assert not isinstance(info.value, json.JSONDecodeError)


@pytest.mark.parametrize("field", ["ret", "errcode"])
@pytest.mark.parametrize("endpoint", ["getupdates", "sendmessage", "getconfig", "notifystart"])
async def test_minus_14_is_stale_token(field: Any, endpoint: str) -> None:
    fake = FakeILinkServer()
    fake.inject_fault(endpoint, Fault.stale_token(field=field))
    async with connect(fake) as client:
        with pytest.raises(wx.StaleTokenError) as info:
            await _call(client, endpoint)
    exc = info.value
    assert getattr(exc, field) == -14
    assert exc.code == -14
    assert exc.errmsg == "session timeout"


async def test_minus_2_on_send_is_rate_limited() -> None:
    fake = FakeILinkServer()
    fake.inject_fault("sendmessage", Fault.rate_limited())
    async with connect(fake) as client:
        with pytest.raises(wx.RateLimitedError) as info:
            await client.send_text(ALICE, "x", context_token="ctx")
        assert info.value.ret == -2
        assert info.value.errmsg == "prepare failed"
        assert fake.sent() == []
        await client.send_text(ALICE, "y", context_token="ctx")
    assert [s.text for s in fake.sent()] == ["y"]


@pytest.mark.parametrize(
    ("fault", "ret", "errcode"),
    [
        (Fault.api_error(ret=-3, errmsg="nope"), -3, None),
        (Fault.api_error(errcode=1001, errmsg="nope"), None, 1001),
        (Fault.api_error(ret=-1, errcode=-100, errmsg="nope"), -1, -100),
        (Fault.api_error(ret=0, errcode=5, errmsg="nope"), 0, 5),
    ],
)
@pytest.mark.parametrize("endpoint", ["getupdates", "sendmessage", "notifystart"])
async def test_other_nonzero_codes_are_api_errors(
    fault: Fault, ret: int | None, errcode: int | None, endpoint: str
) -> None:
    fake = FakeILinkServer()
    fake.inject_fault(endpoint, fault)
    async with connect(fake) as client:
        with pytest.raises(wx.ApiError) as info:
            await _call(client, endpoint)
    exc = info.value
    assert type(exc) is wx.ApiError
    assert (exc.ret, exc.errcode, exc.errmsg) == (ret, errcode, "nope")
    assert exc.status_code == 200
    assert "nope" in str(exc)


async def test_getconfig_requires_ret_zero() -> None:
    fake = FakeILinkServer()
    fake.inject_fault("getconfig", Fault("body", body=b'{"typing_ticket":"tk"}'))
    async with connect(fake) as client:
        with pytest.raises(wx.ApiError) as info:
            await client.get_config(ALICE)
        assert type(info.value) is wx.ApiError
        assert info.value.ret is None
        ok = await client.get_config(ALICE)
        assert ok.ret == 0
        assert ok.typing_ticket


@pytest.mark.parametrize(
    ("body", "ticket"), [(b'{"ret":0,"typing_ticket":"T"}', "T"), (b'{"ret":0}', None)]
)
async def test_getconfig_success_bodies(body: bytes, ticket: str | None) -> None:
    async with mock_client(reply(body)) as client:
        assert (await client.get_config(ALICE)).typing_ticket == ticket
    async with mock_client(reply(b"{}")) as client:
        with pytest.raises(wx.ApiError):
            await client.get_config(ALICE)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"[1,2]", wx.ProtocolError),
        (b"not json", wx.ProtocolError),
        (b'{"ret":"x"}', wx.ProtocolError),
        (b'{"errmsg":"no ret"}', wx.ApiError),
        (b"{}", wx.ApiError),
    ],
)
async def test_getconfig_failure_bodies(body: bytes, error: type[Exception]) -> None:
    async with mock_client(reply(body)) as client:
        with pytest.raises(error) as info:
            await client.get_config(ALICE)
    assert type(info.value) is error


async def test_malformed_field_is_named() -> None:
    body = b'{"ret":0,"typing_ticket":{"x":1}}'
    async with mock_client(reply(body)) as client:
        with pytest.raises(wx.ProtocolError) as info:
            await client.get_config(ALICE)
    assert info.value.field == "$.typing_ticket"


@pytest.mark.parametrize("key", ["token", "context_token", "bot_token", "Authorization"])
@pytest.mark.parametrize("status", [200, 500])
@pytest.mark.parametrize("endpoint", ["getupdates", "sendmessage", "notifystart"])
async def test_tokens_never_appear_in_exceptions(key: str, status: int, endpoint: str) -> None:
    fake = FakeILinkServer(token="bot-SECRET-token-value-0123456789")
    echo = {"ret": -1, "errmsg": "bad request", "context_token": SECRET_CTX, key: fake.token}
    fault = (
        Fault("body", body=json.dumps(echo).encode())
        if status == 200
        else Fault.http_status(status, body=json.dumps(echo).encode())
    )
    fake.inject_fault(endpoint, fault)
    async with connect(fake) as client:
        with pytest.raises(wx.ApiError) as info:
            await _call(client, endpoint)
    exc = info.value
    for text in (str(exc), repr(exc), str(exc.args), exc.errmsg or ""):
        assert fake.token not in text
        assert "SECRET" not in text


async def test_token_in_truncated_body_never_leaks() -> None:
    fake = FakeILinkServer(token="bot-SECRET-" + "x" * 300)
    body = json.dumps({"pad": "p" * 150, "token": fake.token}).encode()
    fake.inject_fault("getupdates", Fault.http_status(502, body=body))
    async with connect(fake) as client:
        with pytest.raises(wx.ApiError) as info:
            await client.get_updates("")
    assert "SECRET" not in str(info.value)
    assert "SECRET" not in repr(info.value)


async def test_unknown_token_is_stale() -> None:
    fake = FakeILinkServer()
    async with connect(fake, token="not-a-known-token") as client:
        with pytest.raises(wx.StaleTokenError):
            await client.get_updates("")
        with pytest.raises(wx.StaleTokenError):
            await client.send_text(ALICE, "x", context_token="ctx")
        with pytest.raises(wx.StaleTokenError):
            await client.notify_start()
    assert fake.sends == []


async def test_token_echoed_in_plain_text_is_scrubbed() -> None:
    fake = FakeILinkServer()
    echo = f"invalid session for {fake.token}"
    async with connect(fake) as client:
        fake.inject_fault("notifystart", Fault.api_error(ret=-1, errmsg=echo))
        with pytest.raises(wx.ApiError) as info:
            await client.notify_start()
        assert fake.token not in str(info.value)
        assert "<redacted>" in str(info.value)
        fake.inject_fault("notifystart", Fault.http_status(500, echo.encode()))
        with pytest.raises(wx.ApiError) as info:
            await client.notify_start()
        assert fake.token not in str(info.value)


# --- sends with the retries on (as ``open_client`` does by default) --------------------


@pytest.fixture
def retrying_client(fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient) -> wx.ILinkClient:
    """``ilink_client`` (default send retries); the hand-picked token ``c`` counts as issued."""
    fake_ilink.default.issued_tokens.add("c")
    return ilink_client


@pytest.mark.parametrize(
    ("fault", "error"),
    [(Fault.rate_limited(), wx.RateLimitedError), (Fault.api_error(ret=-1), wx.ApiError)],
    ids=["ret-2", "ret-1"],
)
async def test_send_errors_keep_their_type_after_the_retries(
    fake_ilink: FakeILinkServer,
    retrying_client: wx.ILinkClient,
    autojump_clock: trio.testing.MockClock,
    fault: Fault,
    error: type[wx.ApiError],
) -> None:
    # A send retries transient failures (and -2) itself: the error that reaches the
    # caller, once the retries gave up, is mapped as a single request's would be.
    fake_ilink.inject_fault("sendmessage", fault, times=math.inf)
    with pytest.raises(error) as info:
        await retrying_client.send_text(ALICE, "x", context_token="c")
    assert type(info.value) is error
    assert info.value.code is not None
    assert fake_ilink.token not in str(info.value)


async def test_hang_everywhere_is_bounded_by_the_callers_scope(
    fake_ilink: FakeILinkServer,
    retrying_client: wx.ILinkClient,
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake_ilink.inject_fault("sendmessage", Fault.hang(), times=math.inf)
    with trio.move_on_after(15):
        await retrying_client.send_text(ALICE, "x", context_token="c")
    assert trio.current_time() == pytest.approx(15.0)


async def test_a_hung_send_is_retried_after_the_deadline_and_frees_its_sender(
    fake_ilink: FakeILinkServer,
    retrying_client: wx.ILinkClient,
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Issue 13 item 4: a send without an answer is retried with the same client_id
    # after the deadline (it used to fail at once), so each text is shown once.
    fake_ilink.inject_fault("sendmessage", Fault.hang(), times=4)
    errors: list[Exception] = []

    async def send(i: int) -> None:
        try:
            await retrying_client.send_text(ALICE, f"x{i}", context_token="c")
        except wx.TransportError as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        for i in range(4):  # every sender task gets a hung request
            nursery.start_soon(send, i)
    assert errors == []
    assert sorted(fake_ilink.sent_texts(ALICE)) == ["x0", "x1", "x2", "x3"]
    assert len(fake_ilink.requests_to("sendmessage")) == 8
    # The HTTP layer's 30 s safety net ends each hung request (before the sender's own
    # 60 s deadline); the retry follows after the first backoff step.
    assert 30.0 < trio.current_time() < 32.0
    assert (await retrying_client.send_text(ALICE, "after", context_token="c")).confirmed


# --- cancellation ----------------------------------------------------------------------


async def test_hang_is_cancellable_and_client_stays_usable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeILinkServer()
    fake.inject_fault("getupdates", Fault.hang())
    async with connect(fake) as client:
        start = trio.current_time()
        with trio.move_on_after(1) as scope:
            await client.get_updates("")
        assert scope.cancelled_caught
        assert trio.current_time() - start == pytest.approx(1)
        # The aborted request left nothing broken behind: the next one works.
        fake.inject_text(ALICE, "after the hang")
        resp = await client.get_updates("")
        assert [m.item_list[0].text_item for m in resp.msgs if m.item_list] == [
            w.TextItem(text="after the hang")
        ]
        assert trio.current_time() - start == pytest.approx(1)
        await client.notify_start()


async def test_send_cancelled_mid_request_then_next_send_works(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeILinkServer()
    fake.inject_fault("sendmessage", Fault.hang())
    async with connect(fake) as client:
        with trio.move_on_after(2) as scope:
            await client.send_text(ALICE, "lost", context_token="ctx")
        assert scope.cancelled_caught
        result = await client.send_text(ALICE, "ok", context_token="ctx")
        assert result.confirmed
    assert fake.sent_texts(ALICE) == ["ok"]


# --- long poll and cursor ---------------------------------------------------------------


async def test_long_poll_holds_then_returns_empty(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeILinkServer(hold=35)
    async with connect(fake) as client:
        start = trio.current_time()
        resp = await client.get_updates("")
        assert trio.current_time() - start == pytest.approx(35)
        assert resp.msgs == ()
        assert resp.malformed == ()
        assert resp.ret == 0
        assert resp.longpolling_timeout_ms == 35_000
        assert client._state.long_poll_hint_ms == 35_000


async def test_long_poll_hint_is_adopted(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeILinkServer(hold=20)
    async with connect(fake) as client:
        assert client._state.long_poll_hint_ms == 35_000
        await client.get_updates("")
        assert client._state.long_poll_hint_ms == 20_000


async def test_long_poll_returns_when_a_message_arrives(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeILinkServer(hold=35)

    async def inject_later() -> None:
        await trio.sleep(3)
        fake.inject_text(ALICE, "late")

    async with connect(fake) as client, trio.open_nursery() as nursery:
        nursery.start_soon(inject_later)
        start = trio.current_time()
        resp = await client.get_updates("")
        assert trio.current_time() - start == pytest.approx(3)
    [msg] = resp.msgs
    assert msg.from_user_id == ALICE
    assert msg.message_type == w.MessageType.USER
    assert msg.context_token
    assert resp.get_updates_buf


async def test_cursor_is_forward_only(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeILinkServer(hold=10)
    async with connect(fake) as client:
        a = fake.inject_text(ALICE, "A")
        first = await client.get_updates("")
        assert [m.message_id for m in first.msgs] == [a]
        c1 = first.next_cursor
        assert c1
        b = fake.inject_text(ALICE, "B")
        second = await client.get_updates(c1)
        assert [m.message_id for m in second.msgs] == [b]
        assert second.next_cursor not in (None, c1)
        # Presenting the old cursor again replays nothing.
        start = trio.current_time()
        again = await client.get_updates(c1)
        assert again.msgs == ()
        assert trio.current_time() - start == pytest.approx(10)
        # A message injected now arrives once, on whichever cursor is presented.
        c = fake.inject_text(ALICE, "C")
        third = await client.get_updates(second.next_cursor or "")
        assert [m.message_id for m in third.msgs] == [c]
        # Nor does the empty cursor of a first poll.
        assert (await client.get_updates("")).msgs == ()
    assert fake.delivered_message_ids() == [a, b, c]


async def test_unknown_cursor_is_an_error_on_a_strict_server() -> None:
    fake = FakeILinkServer(strict=True)
    async with connect(fake) as client:
        with pytest.raises(wx.ApiError) as info:
            await client.get_updates("bm90LWEtY3Vyc29y")
    assert type(info.value) is wx.ApiError
    assert info.value.ret == -1


async def test_malformed_message_does_not_fail_the_batch() -> None:
    fake = FakeILinkServer()
    good = fake.inject_text(ALICE, "good")
    fake.inject_raw({"message_id": "not-a-number", "item_list": "nope"})
    fake.inject_message(ALICE, [{"type": 77, "future_item": {"x": 1}}])
    async with connect(fake) as client:
        resp = await client.get_updates("")
    assert resp.msgs[0].message_id == good
    assert len(resp.msgs) == 2
    assert resp.msgs[1].item_list is not None
    assert resp.msgs[1].item_list[0].type == 77
    assert resp.msgs[1].item_list[0].extra == {"future_item": {"x": 1}}
    [(raw, reason)] = resp.malformed
    assert raw == {"message_id": "not-a-number", "item_list": "nope"}
    assert "getupdates" in reason


# --- other endpoints -------------------------------------------------------------------


async def test_get_upload_url_replaces_base_info() -> None:
    fake = FakeILinkServer()
    async with connect(fake) as client:
        resp = await client.get_upload_url(
            w.GetUploadUrlReq(
                filekey="ab" * 16,
                media_type=w.UploadMediaType.IMAGE,
                to_user_id=ALICE,
                rawsize=1000,
                rawfilemd5="cd" * 16,
                filesize=1008,
                aeskey="ef" * 16,
                base_info=w.BaseInfo(channel_version="9.9.9", bot_agent="Other/1"),
            )
        )
    assert resp.upload_param
    [request] = fake.requests_to("getuploadurl")
    assert request.body["base_info"]["channel_version"] == wx.__version__
    assert request.body["no_need_thumb"] is True
    assert request.body["media_type"] == 1


async def test_config_and_typing() -> None:
    fake = FakeILinkServer()
    async with connect(fake) as client:
        config = await client.get_config(ALICE, "ctx-a")
        assert config.ret == 0
        assert config.typing_ticket
        await client.send_typing(ALICE, config.typing_ticket, w.TypingStatus.TYPING)
        await client.send_typing(ALICE, config.typing_ticket, w.TypingStatus.CANCEL)
        with pytest.raises(wx.ApiError):
            await client.send_typing(ALICE, "wrong-ticket", w.TypingStatus.TYPING)
    assert fake.typing_events() == [(ALICE, 1), (ALICE, 2)]
    [request] = fake.requests_to("getconfig")
    assert request.body["ilink_user_id"] == ALICE
    assert request.body["context_token"] == "ctx-a"


async def test_notify_start_and_stop() -> None:
    fake = FakeILinkServer()
    async with connect(fake) as client:
        await client.notify_start()
        online_after_start = fake.default.online
        await client.notify_stop()
    assert online_after_start
    assert fake.default.online is False
    assert fake.notify_events() == ["start", "stop"]
    assert fake.requests_to("notifystart")[0].body == {
        "base_info": {
            "channel_version": wx.__version__,
            "bot_agent": f"weixin-trio/{wx.__version__}",
        }
    }


async def test_injected_http_client_is_honoured_and_not_closed() -> None:
    fake = FakeILinkServer()
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        # No transport= here: only the injected client can reach the fake.
        async with wx.open_client(
            token=fake.token, base_url=fake.base_url, http_client=http, pacing=None
        ) as client:
            fake.inject_text(ALICE, "hi")
            resp = await client.get_updates("")
            assert len(resp.msgs) == 1
            await client.send_text(ALICE, "hello", context_token="ctx")
        closed_by_open_client = http.is_closed
        still = await http.get(f"{fake.base_url}/_fake/sent")
        assert still.status_code == 200
        assert [s["text"] for s in still.json()] == ["hello"]
    assert closed_by_open_client is False
    assert {r.endpoint for r in fake.requests} == {"getupdates", "sendmessage"}


# --- QR login -------------------------------------------------------------------------


@asynccontextmanager
async def qr_client(fake: FakeILinkServer) -> AsyncIterator[wx.ILinkClient]:
    async with connect(fake, token=None) as client:
        yield client


async def _new_qr(client: wx.ILinkClient, *local_tokens: str) -> str:
    resp = await client.get_bot_qrcode(local_tokens=local_tokens)
    assert resp.qrcode
    assert resp.qrcode_img_content
    assert resp.qrcode in resp.qrcode_img_content
    return resp.qrcode


async def test_qr_scan_and_confirm(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeILinkServer()
    async with qr_client(fake) as client:
        qrcode = await _new_qr(client)
        start = trio.current_time()
        assert (await client.get_qrcode_status(qrcode)).status == "wait"
        assert trio.current_time() > start  # a long poll: it was held
        fake.scan_qr()
        assert (await client.get_qrcode_status(qrcode)).status == "scaned"
        account = fake.confirm_qr(owner_id="owner-1@im.wechat")
        done = await client.get_qrcode_status(qrcode)
    assert done.status == "confirmed"
    assert done.bot_token == account.token
    assert done.ilink_bot_id == account.bot_id
    assert done.baseurl == fake.base_url
    assert done.ilink_user_id == "owner-1@im.wechat"
    assert account.token not in repr(done)
    # The new token works.
    async with connect(fake, token=done.bot_token) as client:
        await client.notify_start()
    assert fake.notify_events(account=account) == ["start"]


async def test_qr_status_wakes_on_scan(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeILinkServer()

    async def scan_later() -> None:
        await trio.sleep(1)
        fake.scan_qr()

    async with qr_client(fake) as client:
        qrcode = await _new_qr(client)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(scan_later)
            start = trio.current_time()
            assert (await client.get_qrcode_status(qrcode)).status == "scaned"
            assert trio.current_time() - start == pytest.approx(1)


async def test_qr_verify_code(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeILinkServer()
    async with qr_client(fake) as client:
        qrcode = await _new_qr(client)
        fake.scan_qr(verify_code="1234")
        assert (await client.get_qrcode_status(qrcode)).status == "need_verifycode"
        wrong = await client.get_qrcode_status(qrcode, verify_code="9999")
        assert wrong.status == "need_verifycode"
        right = await client.get_qrcode_status(qrcode, verify_code="1234")
        assert right.status == "scaned"
    [*_, last] = fake.requests_to("get_qrcode_status")
    assert last.body == {"qrcode": qrcode, "verify_code": "1234"}


async def test_qr_wrong_code_three_times_blocks(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeILinkServer()
    async with qr_client(fake) as client:
        qrcode = await _new_qr(client)
        fake.scan_qr(verify_code="1234")
        statuses = [
            (await client.get_qrcode_status(qrcode, verify_code=code)).status
            for code in ("0000", "1111", "2222")
        ]
    assert statuses == ["need_verifycode", "need_verifycode", "verify_code_blocked"]


async def test_qr_redirect(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeILinkServer()
    async with qr_client(fake) as client:
        qrcode = await _new_qr(client)
        fake.scan_qr(redirect_host="idc2.fake.invalid")
        resp = await client.get_qrcode_status(qrcode)
        assert resp.status == "scaned_but_redirect"
        assert resp.redirect_host == "idc2.fake.invalid"
        # Polling continues at the redirected host (the fake answers any host).
        after = await client.get_qrcode_status(qrcode, base_url="https://idc2.fake.invalid")
        assert after.status == "scaned"


async def test_qr_binded_redirect(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeILinkServer()
    async with qr_client(fake) as client:
        qrcode = await _new_qr(client, "unknown-token", fake.token)
        fake.scan_qr()
        assert fake.confirm_qr() is fake.default
        resp = await client.get_qrcode_status(qrcode)
    assert resp.status == "binded_redirect"
    assert resp.bot_token is None
    assert len(fake.accounts) == 1


async def test_qr_expires_after_ttl(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeILinkServer()
    async with qr_client(fake) as client:
        qrcode = await _new_qr(client)
        start = trio.current_time()
        polls = 0
        status: str | None = "wait"
        while status == "wait":
            status = (await client.get_qrcode_status(qrcode)).status
            polls += 1
        assert status == "expired"
        assert trio.current_time() - start == pytest.approx(300)
        assert polls > 1
        assert (await client.get_qrcode_status(qrcode)).status == "expired"


async def test_qr_unknown_code_is_an_error() -> None:
    fake = FakeILinkServer()
    async with qr_client(fake) as client:
        with pytest.raises(wx.ApiError):
            await client.get_qrcode_status("no-such-code")
