"""One smoke test over real TCP: the served fake, the real httpx stack, the real clock.

Everything else runs in-process under ``autojump_clock``; this test proves the loopback
server and the network path agree with it. It must never use ``autojump_clock``.
"""

from __future__ import annotations

import httpx
import pytest
import trio

import weixin_trio as wx
from weixin_trio.testing import FakeILinkServer, Fault

ALICE = "alice@im.wechat"


@pytest.mark.slow
async def test_loopback_round_trip() -> None:
    fake = FakeILinkServer(hold=2.0)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            base_url = await nursery.start(fake.serve)  # 127.0.0.1, port 0
            assert isinstance(base_url, str)
            assert base_url.startswith("http://127.0.0.1:")
            assert not base_url.endswith(":0")
            async with httpx.AsyncClient(base_url=base_url) as control:
                injected = await control.post("/_fake/inject", json={"user": ALICE, "text": "hi"})
                assert injected.status_code == 200
                message_id = injected.json()["message_id"]

                # A route tag with stray spaces: h11 refuses such a header value, so
                # before trimming every request failed on a real socket.
                async with wx.open_client(
                    token=fake.token, base_url=base_url, route_tag=" 7 "
                ) as client:
                    updates = await client.get_updates("")
                    [msg] = updates.msgs
                    assert msg.message_id == message_id
                    assert msg.from_user_id == ALICE
                    assert msg.item_list is not None
                    assert msg.item_list[0].text_item is not None
                    assert msg.item_list[0].text_item.text == "hi"
                    result = await client.send_text(
                        ALICE, "hello over tcp", context_token=msg.context_token
                    )
                    assert result.confirmed

                    # A reset over the socket is a TransportError, and the client recovers.
                    # (A reused connection reset before the response is retried once on a
                    # fresh one, so the fault is injected for the retry too.)
                    fake.inject_fault("notifystart", Fault.reset(), times=2)
                    with pytest.raises(wx.TransportError) as info:
                        await client.notify_start()
                    assert info.value.__cause__ is not None
                    await client.notify_start()

                sent = await control.get("/_fake/sent")
            assert sent.status_code == 200
            assert sent.json() == [
                {
                    "to_user_id": ALICE,
                    "client_id": result.client_id,
                    "context_token": msg.context_token,
                    "text": "hello over tcp",
                    "items": [{"type": 1, "text_item": {"text": "hello over tcp"}}],
                }
            ]
            assert fake.notify_events() == ["start"]
            assert fake.rejections == []
            # The real headers arrived over the wire, as sent.
            [poll] = fake.requests_to("getupdates")
            assert poll.headers["authorization"] == f"Bearer {fake.token}"
            assert poll.headers["ilink-app-id"] == "bot"
            assert poll.headers["skroutetag"] == "7"
            nursery.cancel_scope.cancel()
