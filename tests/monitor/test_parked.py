"""Parked accounts stay lean: few tasks each, started together, all notified at stop."""

from __future__ import annotations

import math

import attrs
import pytest
import trio
import trio.testing

import weixin_trio as wx
from weixin_trio._monitor.accounts import open_accounts
from weixin_trio.testing import FakeILinkServer, Fault

from .._helpers import until


@attrs.frozen
class Acct:
    account_id: str
    token: str
    base_url: str


def count_tasks() -> int:
    """Every task of the run, counted from the root task."""

    def walk(task: trio.lowlevel.Task) -> int:
        return 1 + sum(walk(c) for n in task.child_nurseries for c in n.child_tasks)

    root = trio.lowlevel.current_root_task()
    assert root is not None
    return walk(root)


def many_accounts(fake: FakeILinkServer, n: int) -> list[Acct]:
    extra = [fake.add_account(bot_id=f"b{i}@im.bot") for i in range(n - 1)]
    return [Acct(fake.default.bot_id, fake.token, fake.base_url)] + [
        Acct(a.bot_id, a.token, fake.base_url) for a in extra
    ]


async def test_a_parked_account_runs_at_most_three_tasks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Issue 16: a parked account ran 10 tasks (4 senders and their host, the
    # dispatcher, the flusher, their service nursery, the poll, the supervisor). Now
    # the supervisor, the sender host and the poll; senders, handler tasks and the
    # flusher start on demand and exit when idle.
    fake = FakeILinkServer(seed=5)
    accounts = many_accounts(fake, 5)
    handled = 0

    async def echo(msg: wx.Message) -> None:
        nonlocal handled
        await msg.reply(msg.text)
        handled += 1

    before = count_tasks()
    options = {"transport": fake.transport(), "pacing": None}
    async with open_accounts(
        echo, accounts, store=wx.MemoryStore(), client_options=options
    ) as runner:
        await trio.sleep(1)  # every poll parks
        parked = (count_tasks() - before) / len(accounts)
        # Up to 30 attributes CPython shares an instance dict's keys (1.5 KiB -> 0.3).
        monitor = runner.monitor(accounts[0].account_id)
        assert monitor is not None
        assert len(vars(monitor)) <= 30
        fake.inject_text("u@im.wechat", "hi")
        for account in accounts[1:]:
            fake.inject_text("u@im.wechat", "hi", account=account.token)
        await until(lambda: handled == len(accounts))
        busy = (count_tasks() - before) / len(accounts)
        await trio.sleep(30)  # the senders and the flusher exit when idle
        idle = (count_tasks() - before) / len(accounts)
    assert parked <= 3, parked
    assert busy > parked  # sender tasks and flushers were started for the replies
    assert idle == parked
    assert len(fake.sends) == len(accounts)


async def test_initial_accounts_start_concurrently(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Issue 16: open_accounts started its accounts one by one, each waiting for its
    # notifystart: 200 accounts with a 1 s notifystart took 200 s. Now 64 at a time.
    fake = FakeILinkServer(seed=6)
    accounts = many_accounts(fake, 200)
    fake.inject_fault("notifystart", Fault.delay(1.0), times=math.inf)

    async def echo(msg: wx.Message) -> None:
        await msg.reply(msg.text)

    options = {"transport": fake.transport(), "pacing": None}
    start = trio.current_time()
    async with open_accounts(
        echo, accounts, store=wx.MemoryStore(), client_options=options
    ) as runner:
        took = trio.current_time() - start
        # every initial account runs its monitor when the block starts
        assert all(runner.monitor(a.account_id) is not None for a in accounts)
    assert 4.0 <= took < 5.0, took  # ceil(200 / 64) rounds of 1 s
    assert len(fake.requests_to("notifystop")) == 200


async def test_a_duplicate_initial_account_raises_after_the_ones_before_it_started(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeILinkServer(seed=7)
    accounts = many_accounts(fake, 3)

    async def echo(msg: wx.Message) -> None:
        await msg.reply(msg.text)

    options = {"transport": fake.transport(), "pacing": None}
    with pytest.raises(ValueError, match="already running"):
        async with open_accounts(
            echo, [*accounts, accounts[1]], store=wx.MemoryStore(), client_options=options
        ):
            pytest.fail("the block must not run")
    assert len(fake.requests_to("notifystart")) == 3


async def test_thousands_of_monitors_stopping_together_each_send_notifystop(
    monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    # Issue 16: at 5,000 accounts stopping together no notifystop reached the server:
    # each one's 3 s deadline ran while it queued (behind the event loop's other work,
    # or behind the shared pool's per-origin limit). Here every account shares the
    # run's pool (32 connections per origin) and each notifystop takes 50 ms at the
    # server: 2,000 of them take 3.1 s in all, so with the deadline counted from the
    # start of the stop the last ones failed. Now they take turns in slots, and each
    # deadline starts with its slot.
    from weixin_trio._http import shared
    from weixin_trio._http.transport_stream import transport_connector

    fake = FakeILinkServer(seed=8)
    monkeypatch.setattr(shared, "open_stream", transport_connector(fake.transport()))
    accounts = many_accounts(fake, 2000)
    fake.inject_fault("notifystop", Fault.delay(0.05), times=math.inf)

    async def echo(msg: wx.Message) -> None:
        await msg.reply(msg.text)

    options = {"pacing": None, "send_window": None}
    async with open_accounts(echo, accounts, store=wx.MemoryStore(), client_options=options):
        await trio.sleep(1)
        stopping = trio.current_time()
    assert len(fake.requests_to("notifystop")) == 2000
    assert len({r.account for r in fake.requests_to("notifystop")}) == 2000
    assert trio.current_time() - stopping < 10.0  # 2,000 x 50 ms in 16 slots: 6.25 s
