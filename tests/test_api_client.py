"""ILinkClient against the fake server: headers, bodies, every endpoint, error mapping."""

from __future__ import annotations

import base64
import json
import math

import httpx
import pytest
import trio

import weixin_trio as wx
from weixin_trio import _wire as w
from weixin_trio._headers import client_version_header
from weixin_trio.testing import FakeILinkServer, Fault

USER = "alice@im.wechat"


@pytest.fixture(autouse=True)
def _hand_picked_tokens_count_as_issued(fake_ilink: FakeILinkServer) -> None:
    """These tests send with hand-picked context tokens, which the fake never issued."""
    fake_ilink.default.issued_tokens.update({"c", "ctx"})


def last(fake: FakeILinkServer, endpoint: str) -> dict[str, object]:
    body = fake.requests_to(endpoint)[-1].body
    assert isinstance(body, dict)
    return body


async def test_post_headers_and_base_info(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    await ilink_client.notify_start()
    await ilink_client.notify_stop()
    first, second = (
        fake_ilink.requests_to("notifystart")[0],
        fake_ilink.requests_to("notifystop")[0],
    )
    h = first.headers
    assert h["authorizationtype"] == "ilink_bot_token"
    assert h["authorization"] == f"Bearer {fake_ilink.token}"
    assert h["content-type"] == "application/json"
    assert h["ilink-app-id"] == "bot"
    assert h["ilink-app-clientversion"] == client_version_header(wx.__version__) == "256"
    assert "skroutetag" not in h
    for uin in (h["x-wechat-uin"], second.headers["x-wechat-uin"]):
        assert base64.b64decode(uin).decode().isdigit()
        assert int(base64.b64decode(uin)) < 2**32
    assert h["x-wechat-uin"] != second.headers["x-wechat-uin"]  # fresh per request
    assert first.body == {
        "base_info": {
            "channel_version": wx.__version__,
            "bot_agent": f"weixin-trio/{wx.__version__}",
        }
    }
    assert fake_ilink.rejections == []
    assert fake_ilink.deviations == []


async def test_route_tag_and_sanitised_bot_agent(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    async with wx.open_client(
        token=fake_ilink.token,
        base_url=fake_ilink.base_url,
        transport=fake_ilink.transport(),
        route_tag=1234,
        bot_agent="中文/1.0 Good/2 (note)",
    ) as client:
        await client.notify_start()
    request = fake_ilink.requests_to("notifystart")[0]
    assert request.headers["skroutetag"] == "1234"
    assert request.body == {
        "base_info": {"channel_version": wx.__version__, "bot_agent": "Good/2 (note)"}
    }


async def test_url_joining_keeps_a_path_prefix() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"ret": 0})

    async with wx.open_client(
        token="t", base_url="https://host.example/prefix", transport=httpx.MockTransport(handler)
    ) as client:
        await client.notify_start()
        await client.get_qrcode_status("a+b/c=")
    assert seen == [
        "https://host.example/prefix/ilink/bot/msg/notifystart",
        "https://host.example/prefix/ilink/bot/get_qrcode_status?qrcode=a%2Bb%2Fc%3D",
    ]


async def test_get_requests_carry_only_common_headers(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    qr = await ilink_client.get_bot_qrcode((fake_ilink.token,))
    assert qr.qrcode
    assert qr.qrcode_img_content
    fetch = fake_ilink.requests_to("get_bot_qrcode")[0]
    assert "authorization" not in fetch.headers  # unauthenticated POST
    assert fetch.headers["authorizationtype"] == "ilink_bot_token"
    assert fetch.body == {"local_token_list": 1}
    status = await ilink_client.get_qrcode_status(qr.qrcode or "")
    assert status.status == "wait"  # held 5 s by the fake, then "wait"
    poll = fake_ilink.requests_to("get_qrcode_status")[0]
    assert poll.method == "GET"
    for header in ("authorization", "authorizationtype", "x-wechat-uin", "content-type"):
        assert header not in poll.headers
    assert poll.headers["ilink-app-id"] == "bot"


async def test_every_endpoint(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.inject_text(USER, "hi")
    updates = await ilink_client.get_updates("")
    [msg] = updates.msgs
    assert msg.from_user_id == USER
    assert updates.get_updates_buf
    assert updates.longpolling_timeout_ms == 35_000
    token = msg.context_token
    sent = await ilink_client.send_message(
        ilink_client.build_message(
            USER,
            (w.MessageItem(type=w.ItemType.TEXT, text_item=w.TextItem(text="yo")),),
            context_token=token,
        )
    )
    assert sent.confirmed
    config = await ilink_client.get_config(USER, token)
    assert config.typing_ticket
    await ilink_client.send_typing(USER, config.typing_ticket or "", w.TypingStatus.TYPING)
    upload = await ilink_client.get_upload_url(
        w.GetUploadUrlReq(
            filekey="00" * 16,
            media_type=w.UploadMediaType.FILE,
            to_user_id=USER,
            rawsize=10,
            rawfilemd5="0" * 32,
            filesize=16,
            aeskey="11" * 16,
            base_info=w.BaseInfo(),
        )
    )
    assert upload.upload_param
    assert last(fake_ilink, "getuploadurl")["base_info"] == {
        "channel_version": wx.__version__,
        "bot_agent": f"weixin-trio/{wx.__version__}",
    }
    await ilink_client.notify_start()
    await ilink_client.notify_stop()
    assert fake_ilink.typing_events() == [(USER, 1)]
    assert fake_ilink.rejections == []


async def test_fresh_client_id_per_send(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    a = await ilink_client.send_text(USER, "a", context_token="c")
    b = await ilink_client.send_text(USER, "b", context_token="c")
    assert a.client_id != b.client_id
    assert a.client_id.startswith("weixin-trio:")
    body = last(fake_ilink, "sendmessage")
    assert body["msg"] == {
        "from_user_id": "",
        "to_user_id": USER,
        "client_id": b.client_id,
        "message_type": 2,
        "message_state": 2,
        "item_list": [{"type": 1, "text_item": {"text": "b"}}],
        "context_token": "c",
    }


async def test_reused_client_id_is_accepted_but_not_shown(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    for _ in range(2):
        result = await ilink_client.send_text(USER, "same", context_token="c", client_id="x:1")
        assert result.confirmed
    assert len(fake_ilink.sends) == 2
    assert fake_ilink.sent_texts(USER) == ["same"]


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_http_errors_are_api_errors_with_redacted_body(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    status: int,
) -> None:
    secret = fake_ilink.token
    body = json.dumps({"token": secret, "context_token": "ctx-secret-123"}).encode()
    fake_ilink.inject_fault("getconfig", Fault.http_status(status, body))
    with pytest.raises(wx.ApiError) as info:
        await ilink_client.get_config(USER)
    assert info.value.status_code == status
    assert "<redacted>" in (info.value.errmsg or "")
    for text in (str(info.value), repr(info.value)):
        assert secret not in text
        assert "ctx-secret-123" not in text


@pytest.mark.parametrize(
    ("fault", "error", "endpoint"),
    [
        (Fault.reset(), wx.TransportError, "getupdates"),
        (Fault.malformed_json(), wx.ProtocolError, "getupdates"),
        (Fault.stale_token(field="ret"), wx.StaleTokenError, "getupdates"),
        (Fault.stale_token(field="errcode"), wx.StaleTokenError, "getupdates"),
        (Fault.rate_limited(), wx.RateLimitedError, "sendmessage"),
        (Fault.api_error(ret=-1, errmsg="busy"), wx.ApiError, "sendmessage"),
        (Fault.api_error(errcode=-5), wx.ApiError, "notifystart"),
    ],
    ids=["reset", "malformed", "ret-14", "errcode-14", "ret-2", "ret-1", "errcode-5"],
)
async def test_error_mapping(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    fault: Fault,
    error: type[Exception],
    endpoint: str,
) -> None:
    # A send retries transient failures (and -2) itself: the error that reaches the
    # caller, once the retries gave up, is mapped the same way.
    fake_ilink.inject_fault(endpoint, fault, times=math.inf if endpoint == "sendmessage" else 1)

    async def call() -> None:
        if endpoint == "getupdates":
            await ilink_client.get_updates("")
        elif endpoint == "sendmessage":
            await ilink_client.send_text(USER, "x", context_token="c")
        else:
            await ilink_client.notify_start()

    with pytest.raises(error) as info:
        await call()
    assert fake_ilink.token not in str(info.value)
    if isinstance(info.value, wx.ApiError):
        assert info.value.code is not None


@pytest.mark.parametrize(
    ("body", "message_id"),
    [(b"", None), (b"  ", None), (b"{}", None), (b'{"ret":0}', None), (b'{"message_id":5}', 5)],
)
async def test_send_bodies_that_mean_success(body: bytes, message_id: int | None) -> None:
    async with wx.open_client(
        token="t",
        transport=httpx.MockTransport(lambda r: httpx.Response(200, content=body)),
        pacing=None,
    ) as client:
        result = await client.send_text(USER, "x", context_token="c")
    assert result.message_id == message_id
    assert result.confirmed is (message_id is not None)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"[1,2]", wx.ProtocolError),
        (b"not json", wx.ProtocolError),
        (b'{"ret":"x"}', wx.ProtocolError),
        (b'{"errmsg":"no ret"}', wx.ApiError),
    ],
)
async def test_getconfig_needs_ret_zero(body: bytes, error: type[Exception]) -> None:
    async with wx.open_client(
        token="t", transport=httpx.MockTransport(lambda r: httpx.Response(200, content=body))
    ) as client:
        with pytest.raises(error):
            await client.get_config(USER)


async def test_malformed_field_is_named(fake_ilink: FakeILinkServer) -> None:
    async with wx.open_client(
        token="t",
        transport=httpx.MockTransport(
            lambda r: httpx.Response(200, json={"ret": 0, "typing_ticket": {"x": 1}})
        ),
    ) as client:
        with pytest.raises(wx.ProtocolError) as info:
            await client.get_config(USER)
    assert info.value.field == "$.typing_ticket"


async def test_unknown_token_is_stale(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    async with wx.open_client(
        token="wrong", base_url=fake_ilink.base_url, transport=fake_ilink.transport()
    ) as client:
        with pytest.raises(wx.StaleTokenError):
            await client.get_updates("")


async def test_cancel_mid_request_leaves_the_client_usable(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.inject_fault("getupdates", Fault.hang())
    with trio.move_on_after(1) as scope:
        await ilink_client.get_updates("")
    assert scope.cancelled_caught
    assert trio.current_time() == pytest.approx(1.0)
    fake_ilink.inject_text(USER, "after")
    resp = await ilink_client.get_updates("")
    assert [m.from_user_id for m in resp.msgs] == [USER]


async def test_long_poll_holds_until_a_message_or_the_hold(autojump_clock: trio.abc.Clock) -> None:
    fake = FakeILinkServer(hold=35.0)
    async with wx.open_client(
        token=fake.token, base_url=fake.base_url, transport=fake.transport()
    ) as client:
        empty = await client.get_updates("")
        assert empty.msgs == ()
        assert trio.current_time() == pytest.approx(35.0)
        async with trio.open_nursery() as nursery:

            async def inject_later() -> None:
                await trio.sleep(3)
                fake.inject_text(USER, "now")

            nursery.start_soon(inject_later)
            got = await client.get_updates("")
        assert trio.current_time() == pytest.approx(38.0)
        assert len(got.msgs) == 1
        # forward-only: the old cursor does not replay the message
        again_task_result = []
        with trio.move_on_after(40):
            again_task_result.append(await client.get_updates(""))
        assert again_task_result[0].msgs == ()
        assert client.long_poll_hint_ms == 35_000


async def test_injected_http_client_is_honoured_and_not_closed(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    async with httpx.AsyncClient(transport=fake_ilink.transport()) as http:
        async with wx.open_client(
            token=fake_ilink.token, base_url=fake_ilink.base_url, http_client=http
        ) as client:
            await client.notify_start()
        assert not http.is_closed
        response = await http.get(fake_ilink.base_url + "/_fake/sent")
        assert response.json() == []


async def test_send_text_contract(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    with pytest.raises(wx.NoContextTokenError, match=USER):
        await ilink_client.send_text(USER, "hello")
    with pytest.raises(ValueError, match="empty"):
        await ilink_client.send_text(USER, "", context_token="c")
    assert (await ilink_client.send_text(USER, "hello", context_token="c")).confirmed


async def test_hang_everywhere_is_bounded_by_the_callers_scope(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.inject_fault("sendmessage", Fault.hang(), times=math.inf)
    with trio.move_on_after(15):
        await ilink_client.send_text(USER, "x", context_token="c")
    assert trio.current_time() == pytest.approx(15.0)


async def test_token_echoed_in_plain_text_is_scrubbed(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    echo = f"invalid session for {fake_ilink.token}"
    fake_ilink.inject_fault("notifystart", Fault.api_error(ret=-1, errmsg=echo))
    with pytest.raises(wx.ApiError) as info:
        await ilink_client.notify_start()
    assert fake_ilink.token not in str(info.value)
    assert "<redacted>" in str(info.value)
    fake_ilink.inject_fault("notifystart", Fault.http_status(500, echo.encode()))
    with pytest.raises(wx.ApiError) as info:
        await ilink_client.notify_start()
    assert fake_ilink.token not in str(info.value)


async def test_a_hung_send_fails_after_the_deadline_and_frees_its_sender(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    # Issue 13 item 4: a send without an answer is retried with the same client_id
    # after the deadline (it used to fail at once), so each text is shown once.
    fake_ilink.inject_fault("sendmessage", Fault.hang(), times=4)
    errors: list[Exception] = []

    async def send(i: int) -> None:
        try:
            await ilink_client.send_text(USER, f"x{i}", context_token="c")
        except wx.TransportError as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        for i in range(4):  # every sender task gets a hung request
            nursery.start_soon(send, i)
    assert errors == []
    assert sorted(fake_ilink.sent_texts(USER)) == ["x0", "x1", "x2", "x3"]
    assert len(fake_ilink.requests_to("sendmessage")) == 8
    assert 60.0 < trio.current_time() < 62.0
    assert (await ilink_client.send_text(USER, "after", context_token="c")).confirmed
