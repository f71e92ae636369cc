"""Parked accounts stay lean: few tasks each, started together, all notified at stop."""

from __future__ import annotations

import attrs
import trio
import trio.testing

import weixin_trio as wx
from weixin_trio._monitor.accounts import open_accounts
from weixin_trio.testing import FakeILinkServer

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


async def test_a_parked_account_runs_at_most_three_tasks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Issue 16: a parked account ran 10 tasks (4 senders and their host, the
    # dispatcher, the flusher, their service nursery, the poll, the supervisor). Now
    # the supervisor, the sender host and the poll; senders, handler tasks and the
    # flusher start on demand and exit when idle.
    fake = FakeILinkServer(seed=5)
    extra = [fake.add_account(bot_id=f"b{i}@im.bot") for i in range(4)]
    accounts = [Acct(fake.default.bot_id, fake.token, fake.base_url)] + [
        Acct(a.bot_id, a.token, fake.base_url) for a in extra
    ]
    handled = 0

    async def echo(msg: wx.Message) -> None:
        nonlocal handled
        await msg.reply(msg.text)
        handled += 1

    before = count_tasks()
    options = {"transport": fake.transport(), "pacing": None}
    async with open_accounts(echo, accounts, store=wx.MemoryStore(), client_options=options):
        await trio.sleep(1)  # every poll parks
        parked = (count_tasks() - before) / len(accounts)
        fake.inject_text("u@im.wechat", "hi")
        for account in extra:
            fake.inject_text("u@im.wechat", "hi", account=account)
        await until(lambda: handled == len(accounts))
        busy = (count_tasks() - before) / len(accounts)
        await trio.sleep(30)  # the senders and the flusher exit when idle
        idle = (count_tasks() - before) / len(accounts)
    assert parked <= 3, parked
    assert busy > parked  # sender tasks and flushers were started for the replies
    assert idle == parked
    assert len(fake.sends) == len(accounts)
