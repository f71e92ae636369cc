"""A monitor on a FileStore whose disk is full for a while (through the fault seam).

While every write fails with ``ENOSPC`` the monitor holds the batch it could not
journal (nothing of it is dispatched, the cursor does not move), keeps its done marks
buffered and counts ``store_failures``; once the disk has room again every message is
handled exactly once and every reply is shown once, and a restart finds nothing left.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import trio

import weixin_trio as wx

from .._helpers import until
from .faults import FaultyOps

if TYPE_CHECKING:
    from pathlib import Path

    from weixin_trio.testing import FakeILinkServer

USERS = [f"user{i}@im.wechat" for i in range(4)]


async def test_monitor_holds_batches_while_the_disk_is_full(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    tmp_path: Path,
) -> None:
    handled: Counter[int] = Counter()

    async def echo(msg: wx.Message) -> None:
        handled[msg.message_id] += 1
        await msg.reply(f"echo {msg.message_id}")

    faults = FaultyOps()
    with faults.installed():
        async with wx.FileStore(tmp_path) as store:
            async with wx.open_monitor(ilink_client, echo, store=store) as monitor:
                before = [fake_ilink.inject_text(u, "before") for u in USERS]
                await until(lambda: set(handled) >= set(before))
                await monitor.wait_idle()

                faults.full = True  # the disk is full from here on
                during = []
                for i in range(12):
                    during.append(fake_ilink.inject_text(USERS[i % 4], f"during {i}"))
                    await trio.sleep(1)
                await until(lambda: monitor.statistics().store_failures >= 5)
                await trio.sleep(30)
                held = monitor.statistics()
                assert not set(handled) & set(during), "dispatched before it was journaled"
                # The cursor did not move past the held batch: the server still has it.
                assert not fake_ilink.acknowledged_message_ids() & set(during)
                assert fake_ilink.in_transit_message_ids() & set(during)

                faults.full = False  # room again
                await until(lambda: set(handled) >= set(before + during))
                await monitor.wait_idle()
                after = [fake_ilink.inject_text(USERS[0], "after")]
                await until(lambda: set(handled) >= set(after))
                await monitor.wait_idle()
                stats = monitor.statistics()
        async with wx.FileStore(tmp_path) as again:  # a restart
            state = await again.load(fake_ilink.default.bot_id)

    everything = before + during + after
    assert held.store_failures >= 5
    assert stats.store_failures >= held.store_failures
    assert set(handled) == set(everything)
    assert set(handled.values()) == {1}, "a message was handled twice"
    shown = Counter(s.text for s in fake_ilink.sent())
    assert shown == Counter(f"echo {mid}" for mid in everything)
    assert state.pending == ()
    assert set(state.seen_ids) >= set(everything)
