"""``weixin-trio status`` reads only, and shows a failing store (issue 13, item 2).

The heartbeat file that ``run`` writes carries the monitor's ``store_failures``;
``status`` shows it per account, with the free space of the state directory (a full
disk is what makes journal writes fail). ``status`` and ``accounts`` change no byte of
the state directory, even one a crashed bot left with a torn journal line.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import trio

import weixin_trio as wx
from weixin_trio._cli import main
from weixin_trio._cli.serve import _heartbeat
from weixin_trio.store import JournalEntry

from .._helpers import until
from .test_file_lock import fingerprint

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

ACCOUNT = "bot1@im.bot"


async def make_state(state: Path) -> None:
    async with wx.FileStore(state) as store:
        await store.save_account(ACCOUNT, {"token": "t", "base_url": "http://x", "created_at": 1.0})
        await store.load(ACCOUNT)
        await store.accept(ACCOUNT, cursor="c", entries=[JournalEntry(1, {})], context_tokens={})
        directory = store.account_dir(ACCOUNT)
    beat = {"last_poll_at": 1.0, "pending": 1, "handled": 0, "store_failures": 17}
    (directory / "status.json").write_text(json.dumps(beat))
    with next(directory.glob("journal-*.log")).open("ab") as f:
        f.write(b'{"t":"d","ids":[1')  # a torn line: a writer's load would cut it


def test_status_shows_store_failures_and_free_space(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    trio.run(make_state, state)
    before = fingerprint(state)
    assert main(["status", "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out
    header, row = out.splitlines()[:2]
    columns = dict(zip(header.split("\t"), row.split("\t"), strict=True))
    assert columns["store errors"] == "17"
    assert columns["pending"] == "1"
    assert f"free space in {state}:" in out
    assert main(["accounts", "--state-dir", str(state)]) == 0
    assert ACCOUNT in capsys.readouterr().out
    assert fingerprint(state) == before  # read-only: not even the torn line was cut


async def test_heartbeat_carries_store_failures(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """``run``'s heartbeat writes the statistic that ``status`` shows."""

    class Stats:
        last_poll_at = None
        paused_until = None
        stale_tokens = 0
        pending = 2
        handled = 3
        store_failures = 5

    class Runner:
        def statistics(self) -> dict[str, Stats]:
            return {ACCOUNT: Stats()}

    async with wx.FileStore(tmp_path) as store:
        path = store.account_dir(ACCOUNT) / "status.json"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_heartbeat, store, Runner())
            await until(path.exists)
            nursery.cancel_scope.cancel()
        beat = json.loads(path.read_text())
    assert beat["store_failures"] == 5
    assert list(store.account_dir(ACCOUNT).glob(".*.tmp")) == []
