"""Several accounts in one process: isolation, runtime add/remove, statistics."""

from __future__ import annotations

from typing import Any

import attrs
import trio

import weixin_trio as wx
from weixin_trio._multi import open_accounts
from weixin_trio.testing import FakeILinkServer

from ._helpers import until


@attrs.frozen
class Acct:
    account_id: str
    token: str
    base_url: str


async def test_accounts_run_side_by_side_and_attach_at_runtime(
    autojump_clock: trio.abc.Clock,
) -> None:
    fake = FakeILinkServer(seed=3)
    second = fake.add_account(bot_id="second@im.bot")
    third = fake.add_account(bot_id="third@im.bot")
    store = wx.MemoryStore()

    async def echo(msg: wx.Message) -> None:
        await msg.reply(f"{msg.client.account_id}: {msg.text}")

    a1 = Acct(fake.default.bot_id, fake.token, fake.base_url)
    a2 = Acct(second.bot_id, second.token, fake.base_url)
    options = {"transport": fake.transport(), "pacing": None}
    async with open_accounts(echo, [a1, a2], store=store, client_options=options) as runner:
        assert runner.account_ids == sorted([a1.account_id, a2.account_id])
        fake.inject_text("u@im.wechat", "one")
        fake.inject_text("u@im.wechat", "two", account=second)
        await until(lambda: len(fake.sends) == 2)
        # a fresh login attaches without a restart
        await runner.add(Acct(third.bot_id, third.token, fake.base_url))
        fake.inject_text("u@im.wechat", "three", account=third)
        await until(lambda: len(fake.sends) == 3)
        stats = runner.statistics()
        assert {k: v.handled for k, v in stats.items()} == {
            a1.account_id: 1,
            a2.account_id: 1,
            third.bot_id: 1,
        }
        assert runner.remove(a2.account_id)
        assert not runner.remove("nobody")
        await trio.sleep(1)
        assert a2.account_id not in runner.account_ids
        assert fake.notify_events(account=second) == ["start", "stop"]
        fake.inject_text("u@im.wechat", "ignored while removed", account=second)
        await trio.sleep(5)
    assert fake.sent_texts("u@im.wechat") == [f"{a1.account_id}: one"]
    assert fake.sent_texts("u@im.wechat", account=second) == [f"{a2.account_id}: two"]
    assert fake.sent_texts("u@im.wechat", account=third) == [f"{third.bot_id}: three"]


class FlakyStore:
    """A MemoryStore whose accept() fails for one account the first ``times`` calls."""

    def __init__(self, broken: str, times: int) -> None:
        self.inner = wx.MemoryStore()
        self.broken = broken
        self.times = times

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def accept(self, account: str, **kwargs: Any) -> None:
        if account == self.broken and self.times > 0:
            self.times -= 1
            raise OSError("disk full")
        await self.inner.accept(account, **kwargs)


async def test_a_failing_account_restarts_without_affecting_the_others(
    autojump_clock: trio.abc.Clock,
) -> None:
    fake = FakeILinkServer(seed=4)
    other = fake.add_account(bot_id="other@im.bot")
    store = FlakyStore(other.bot_id, times=1)

    async def echo(msg: wx.Message) -> None:
        await msg.reply("ok")

    good = Acct(fake.default.bot_id, fake.token, fake.base_url)
    flaky = Acct(other.bot_id, other.token, fake.base_url)
    stale = Acct("stale@im.bot", "not-a-token", fake.base_url)  # the server says -14
    options = {"transport": fake.transport(), "pacing": None}
    async with open_accounts(
        echo,
        [good, flaky, stale],
        store=store,
        client_options=options,
    ) as runner:
        fake.inject_text("u@im.wechat", "hi")
        fake.inject_text("u@im.wechat", "hi", account=other)
        await until(lambda: len(fake.sent()) == 1)
        await until(lambda: runner.failures.get(other.bot_id) == 1)
        # the flaky account's batch was lost with its crash before journaling (the
        # server does not replay); new messages are handled after the restart
        await trio.sleep(120)
        fake.inject_text("u@im.wechat", "again", account=other)
        await until(lambda: len(fake.sent(account=other)) == 1, timeout=600)
        assert runner.failures[other.bot_id] == 1
        assert runner.statistics()["stale@im.bot"].stale_tokens >= 1
        assert runner.statistics()[good.account_id].handled == 1
