"""One real-loopback round trip through the real httpx stack (no mock clock).

Every other test uses the in-process transport under ``autojump_clock``; this one runs
on the real clock with a real-time ``fail_after`` guard, against the fake served on a
TCP port, to prove the served fake and the real network path agree.
"""

from __future__ import annotations

import httpx
import pytest
import trio

import weixin_trio as wx
from weixin_trio.testing import FakeILinkServer, Fault


async def test_real_socket_round_trip() -> None:
    fake = FakeILinkServer(hold=1.0)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            base_url = await nursery.start(fake.serve)
            assert base_url.startswith("http://127.0.0.1:")
            async with httpx.AsyncClient() as http:
                injected = await http.post(
                    f"{base_url}/_fake/inject", json={"user": "alice@im.wechat", "text": "hi"}
                )
                assert injected.status_code == 200
                message_id = injected.json()["message_id"]
                async with wx.open_client(token=fake.token, base_url=base_url) as client:
                    updates = await client.get_updates("")
                    [msg] = updates.msgs
                    assert msg.message_id == message_id
                    await client.send_text(
                        "alice@im.wechat", "hello", context_token=msg.context_token
                    )
                    fake.inject_fault("sendmessage", Fault.reset())
                    with pytest.raises(wx.TransportError):
                        await client.send_text("alice@im.wechat", "x", context_token="c")
                    empty = await client.get_updates(updates.get_updates_buf or "")
                    assert empty.msgs == ()
                sent = (await http.get(f"{base_url}/_fake/sent")).json()
            assert sent == [
                {
                    "to_user_id": "alice@im.wechat",
                    "client_id": sent[0]["client_id"],
                    "context_token": msg.context_token,
                    "text": "hello",
                    "items": [{"type": 1, "text_item": {"text": "hello"}}],
                }
            ]
            nursery.cancel_scope.cancel()
