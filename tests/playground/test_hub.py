"""EventHub: numbered events, replay after an id, live following, idle pings."""

from __future__ import annotations

import trio

from weixin_trio._playground.hub import EventHub


def test_events_are_numbered_and_replayed_after_an_id() -> None:
    hub = EventHub()
    hub.publish("user", user="a")
    hub.publish("user", user="b")
    hub.publish("message", chat="u:a", kind="text")
    assert [e["id"] for e in hub.since(0)] == [1, 2, 3]
    assert hub.since(2) == [{"id": 3, "type": "message", "chat": "u:a", "kind": "text"}]
    assert hub.since(3) == []


async def test_wait_after_returns_what_is_new_or_nothing_when_idle(
    autojump_clock: object,
) -> None:
    hub = EventHub()
    hub.publish("user", user="a")
    assert [e["id"] for e in await hub.wait_after(0)] == [1]
    assert await hub.wait_after(1, idle=5.0) == []
    got: list[list[dict[str, object]]] = []

    async def wait() -> None:
        got.append(await hub.wait_after(1, idle=60.0))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await trio.sleep(1)
        assert got == []
        hub.publish("user", user="b")
    assert [e["id"] for e in got[0]] == [2]
