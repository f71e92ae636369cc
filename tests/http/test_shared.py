"""One pool per trio run for default clients: shared sends, one connection per parked poll."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import trio
import trio.testing

import weixin_trio as wx
from weixin_trio._http import shared
from weixin_trio._http.transport_stream import transport_connector
from weixin_trio.testing import FakeILinkServer

if TYPE_CHECKING:
    from weixin_trio._http.target import Origin

ALICE = "alice@im.wechat"


class Counting:
    """A connector to the fake (in-process) that counts the streams it opened."""

    def __init__(self, fake: FakeILinkServer) -> None:
        self._connect = transport_connector(fake.transport())
        self.opened = 0

    async def __call__(self, origin: Origin) -> trio.abc.Stream:
        self.opened += 1
        return await self._connect(origin)


@pytest.fixture
def connector(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeILinkServer, Counting]:
    fake = FakeILinkServer()
    counting = Counting(fake)
    monkeypatch.setattr(shared, "open_stream", counting)
    return fake, counting


async def test_clients_of_one_run_share_one_pool_and_the_last_one_closes_it(
    connector: tuple[FakeILinkServer, Counting],
) -> None:
    fake, counting = connector
    async with (
        wx.open_client(token=fake.token, base_url=fake.base_url, pacing=None) as one,
        wx.open_client(token=fake.token, base_url=fake.base_url, pacing=None) as two,
    ):
        pool = shared._SHARED.get(None)
        assert pool is not None
        for _ in range(5):
            await one.notify_start()
            await two.notify_start()
        assert counting.opened == 1  # both clients' requests went over one connection
        assert pool.pool.idle_count() == 1
    assert shared._SHARED.get(None) is None
    assert pool.pool.idle_count() == 0  # closed when the last client left
    async with wx.open_client(token=fake.token, base_url=fake.base_url) as three:
        await three.notify_start()  # a new pool, a new connection
    assert counting.opened == 2


async def test_a_parked_long_poll_holds_exactly_one_connection(
    connector: tuple[FakeILinkServer, Counting],
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake, counting = connector
    async with wx.open_client(token=fake.token, base_url=fake.base_url, pacing=None) as client:
        lease = shared._SHARED.get(None)
        assert lease is not None
        pool = lease.pool
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.get_updates, "")
            await trio.testing.wait_all_tasks_blocked()
            assert counting.opened == 1
            assert pool.active_count == 1
            # A send while the poll is parked takes a second connection, then idles.
            await client.notify_start()
            assert counting.opened == 2
            assert (pool.active_count, pool.idle_count()) == (1, 1)
            fake.inject_text(ALICE, "hi")
        assert pool.active_count == 0
        assert pool.idle_count() == 2
