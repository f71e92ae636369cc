"""Bad or odd input at the edges of a client: clean behaviour, never a raw crash.

Each test pins a deliberate choice listed in ``docs/deviations.md``: lone surrogates in
outbound text, ``SKRouteTag`` whitespace, base URLs with a query string, and blank
tokens in ``local_token_list``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import httpx
import pytest

import weixin_trio as wx
from weixin_trio.login import MAX_LOCAL_TOKENS, login

if TYPE_CHECKING:
    import trio

    from weixin_trio.testing import FakeILinkServer

USER = "alice@im.wechat"


class Recording(httpx.AsyncBaseTransport):
    """Forwards to the fake, keeping every request's URL and raw body."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[tuple[str, bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        self.requests.append((str(request.url), body))
        return await self.inner.handle_async_request(request)


# --- lone surrogates in outbound text -------------------------------------------------------


@pytest.mark.parametrize("text", ["a\ud800b", "\udfff", "tail \ud83d"])
async def test_send_text_with_a_lone_surrogate_is_escaped_like_the_reference(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock, text: str
) -> None:
    recording = Recording(fake_ilink.transport())
    async with wx.open_client(
        token=fake_ilink.token, base_url=fake_ilink.base_url, transport=recording, pacing=None
    ) as client:
        fake_ilink.inject_text(USER, "hi")
        [inbound] = (await client.get_updates("")).msgs  # delivers a context token
        result = await client.send_text(USER, text, context_token=inbound.context_token)
    assert result.confirmed
    assert fake_ilink.sent_texts(USER) == [text]
    [(_, body)] = [r for r in recording.requests if r[0].endswith("/sendmessage")]
    body.decode("utf-8")  # valid UTF-8 on the wire
    escaped = json.dumps(text)[1:-1].encode()  # e.g. a\\ud800b, as JSON.stringify writes it
    assert escaped in body


async def test_send_text_with_a_lone_surrogate_through_the_monitor_reply(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    # An echo bot answering a message that itself holds a lone surrogate.
    async def echo(msg: wx.Message) -> None:
        await msg.reply(f"echo {msg.text}")

    async with wx.open_monitor(ilink_client, echo) as monitor:
        fake_ilink.inject_text(USER, "x\udc80y")
        await fake_ilink.wait_for_sent(1, user=USER)
        stats = monitor.statistics()
    assert fake_ilink.sent_texts(USER) == ["echo x\udc80y"]
    assert stats.failed == 0


# --- SKRouteTag ----------------------------------------------------------------------------


@pytest.mark.parametrize(("tag", "sent"), [(" 7 ", "7"), (7, "7"), ("  ", None), ("", None)])
async def test_route_tag_is_trimmed_and_left_out_when_blank(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock, tag: str | int, sent: str | None
) -> None:
    async with wx.open_client(
        token=fake_ilink.token,
        base_url=fake_ilink.base_url,
        transport=fake_ilink.transport(),
        route_tag=tag,
        pacing=None,
    ) as client:
        await client.notify_start()
    [request] = fake_ilink.requests_to("notifystart")
    assert request.headers.get("skroutetag") == sent


# --- base URLs with a query string ---------------------------------------------------------


async def test_a_base_url_query_stays_a_query_and_the_endpoint_goes_into_the_path(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    recording = Recording(fake_ilink.transport())
    base = f"{fake_ilink.base_url}/proxy?x=1"
    async with wx.open_client(
        token=fake_ilink.token, base_url=base, transport=recording, pacing=None
    ) as client:
        fake_ilink.inject_text(USER, "hi")
        updates = await client.get_updates("")
        await client.get_bot_qrcode(bot_type="3")
    assert [m.message_id for m in updates.msgs] != []
    urls = [url for url, _ in recording.requests]
    assert urls == [
        f"{fake_ilink.base_url}/proxy/ilink/bot/getupdates?x=1",
        f"{fake_ilink.base_url}/proxy/ilink/bot/get_bot_qrcode?x=1&bot_type=3",
    ]


# --- local_token_list ----------------------------------------------------------------------


async def test_blank_local_tokens_are_skipped_before_the_ten_are_chosen(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.qr.auto_confirm = True
    held = ["", "  ", "tok-1", "\t", " tok-2 "] + [f"tok-{n}" for n in range(3, 12)]
    async with wx.open_client(
        token=None, base_url=fake_ilink.base_url, transport=fake_ilink.transport(), pacing=None
    ) as client:
        await login(client, on_qrcode=lambda qr: None, local_tokens=held)
    [session] = fake_ilink.qr.sessions.values()
    assert session.local_tokens == tuple(f"tok-{n}" for n in range(1, MAX_LOCAL_TOKENS + 1))
