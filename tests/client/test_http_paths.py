"""Which HTTP path a client takes (issue 16), and the request heads on the wire."""

from __future__ import annotations

import httpx
import pytest
import trio

import weixin_trio as wx
from weixin_trio._proto.headers import common_headers, post_headers
from weixin_trio._version import __version__
from weixin_trio.testing import FakeILinkServer

ALICE = "alice@im.wechat"


class Counting(httpx.AsyncBaseTransport):
    """Forwards to the fake and counts requests."""

    def __init__(self, fake: FakeILinkServer) -> None:
        self._inner = fake.transport()
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self._inner.handle_async_request(request)


async def test_post_heads_carry_the_protocol_headers_and_a_fresh_uin() -> None:
    fake = FakeILinkServer()
    async with wx.open_client(
        token=fake.token, base_url=fake.base_url, transport=fake.transport(), route_tag=7
    ) as client:
        await client.notify_start()
        await client.notify_start()
    first, second = fake.requests_to("notifystart")
    expected = post_headers(
        token=fake.token,
        common=common_headers(app_id="bot", client_version=__version__, route_tag="7"),
        uin="-",
    )
    wanted = {k.lower(): v for k, v in expected.items() if k != "X-WECHAT-UIN"}
    for request in (first, second):
        headers = dict(request.headers)
        uin = headers.pop("x-wechat-uin")
        assert uin
        assert headers.pop("host") == httpx.URL(fake.base_url).host
        assert int(headers.pop("content-length")) > 0
        assert headers == wanted
    assert first.headers["x-wechat-uin"] != second.headers["x-wechat-uin"]


async def test_a_user_http_client_takes_the_httpx_path_and_stays_open() -> None:
    fake = FakeILinkServer()
    counting = Counting(fake)
    async with httpx.AsyncClient(transport=counting) as http:
        async with wx.open_client(token=fake.token, base_url=fake.base_url, http_client=http) as c:
            fake.inject_text(ALICE, "hi")
            updates = await c.get_updates("")
            assert len(updates.msgs) == 1
            await c.send_text(ALICE, "yo", context_token=updates.msgs[0].context_token)
            assert c._endpoints.cdn_http is http  # the user's client for the CDN too
        assert not http.is_closed
        assert counting.paths == ["/ilink/bot/getupdates", "/ilink/bot/sendmessage"]
    [request] = fake.requests_to("sendmessage")
    assert request.headers["user-agent"].startswith("python-httpx/")


async def test_a_poll_client_alone_gets_only_the_long_polls() -> None:
    fake = FakeILinkServer()
    counting = Counting(fake)
    async with httpx.AsyncClient(transport=counting) as poll:
        async with wx.open_client(
            token=fake.token,
            base_url=fake.base_url,
            transport=fake.transport(),
            poll_http_client=poll,
        ) as client:
            fake.inject_text(ALICE, "hi")
            await client.get_updates("")
            await client.notify_start()
    assert counting.paths == ["/ilink/bot/getupdates"]
    assert len(fake.requests_to("notifystart")) == 1


async def test_the_cdn_client_is_created_on_first_use_and_closed_with_the_client() -> None:
    fake = FakeILinkServer()
    async with wx.open_client(
        token=fake.token, base_url=fake.base_url, transport=fake.transport()
    ) as client:
        lazy = client._endpoints._cdn_http
        await client.notify_start()
        before = lazy.created
        assert before is False  # no media moved: no httpx client
        cdn = client._endpoints.cdn_http
        assert lazy.created
        assert client._endpoints.cdn_http is cdn
    assert cdn.is_closed


async def test_an_unsupported_base_url_is_a_transport_error() -> None:
    async with wx.open_client(token="t", base_url="ftp://example.test") as client:
        with pytest.raises(wx.TransportError, match="unsupported URL"):
            await client.notify_start()


async def test_many_clients_on_one_transport_each_get_their_own_pool() -> None:
    fake = FakeILinkServer()
    transport = fake.transport()
    async with (
        wx.open_client(token=fake.token, base_url=fake.base_url, transport=transport) as one,
        wx.open_client(token=fake.token, base_url=fake.base_url, transport=transport) as two,
    ):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(one.notify_start)
            nursery.start_soon(two.notify_start)
    assert len(fake.requests_to("notifystart")) == 2
