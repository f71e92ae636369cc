"""An account whose state directory another writer holds is not restarted in a loop."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import trio

import weixin_trio as wx
from weixin_trio._monitor.accounts import open_accounts
from weixin_trio.testing import FakeILinkServer

from .._helpers import until

if TYPE_CHECKING:
    from pathlib import Path


@attrs.frozen
class Acct:
    account_id: str
    token: str
    base_url: str


async def test_locked_account_stops_without_restarts(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    fake = FakeILinkServer(seed=5)
    account = Acct(fake.default.bot_id, fake.token, fake.base_url)

    async def echo(msg: wx.Message) -> None:
        await msg.reply("x")

    options = {"transport": fake.transport(), "pacing": None}
    async with wx.FileStore(tmp_path) as holder, wx.FileStore(tmp_path) as store:
        await holder.load(account.account_id)  # "another process" runs this account
        async with open_accounts(echo, [account], store=store, client_options=options) as runner:
            await until(lambda: bool(runner.failures))
            await trio.sleep(120)  # virtual time: many restart backoffs (5 s, 5 s, 60 s)
            assert runner.failures == {account.account_id: 1}
            assert runner.monitor(account.account_id) is None
            assert runner.account_ids == []
