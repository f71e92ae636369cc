"""FakeILinkServer.observers: called after every request, answered, failed or cancelled."""

from __future__ import annotations

import math

import httpx
import trio

from weixin_trio.testing import FakeILinkServer, FakeRequest, Fault


async def test_observers_see_every_request_once_it_is_answered(autojump_clock: object) -> None:
    fake = FakeILinkServer(hold=1.0)
    seen: list[tuple[str, int]] = []
    fake.observers.append(lambda request: seen.append((request.path, len(fake.sends))))
    fake.inject_fault("getupdates", Fault.hang(), times=math.inf)
    async with httpx.AsyncClient(transport=fake.transport(), base_url=fake.base_url) as http:
        await http.get("/_fake/stats")
        assert seen == [("/_fake/stats", 0)]
        with trio.move_on_after(5):
            await http.post("/ilink/bot/getupdates", content=b"{}")
    assert seen[-1] == ("/ilink/bot/getupdates", 0)  # cancelled while hanging: still seen
    assert len(seen) == 2


async def test_an_observer_runs_after_the_state_changed(autojump_clock: object) -> None:
    fake = FakeILinkServer()
    queued: list[int] = []
    fake.observers.append(lambda request: queued.append(len(fake.default.queue)))
    body = b'{"user": "a@im.wechat", "text": "hi"}'
    await fake.handle(FakeRequest("POST", "/_fake/inject", {}, {}, body))
    assert queued == [1]
