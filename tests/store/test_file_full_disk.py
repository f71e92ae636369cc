"""A real full disk: a 64 KiB tmpfs (needs root; CI runs as root).

Accepts fill it until one fails with ``StoreUnavailableError``; a restart then sees
exactly the acknowledged batches, and after space is freed the held batch goes
through on the same store and nothing acknowledged was lost.
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

import pytest

import weixin_trio as wx
from weixin_trio.store import JournalEntry, OutboxEntry, StoreUnavailableError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ACCOUNT = "bot1@im.bot"


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A freshly mounted 64 KiB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs this as root)")
    where = tmp_path / "tiny"
    where.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(where)]
    result = subprocess.run(mount, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def entry(mid: int) -> JournalEntry:
    return JournalEntry(mid, {"message_id": mid, "text": f"{mid}: " + "你好 \ud800 " * 60})


async def test_full_disk_holds_the_batch_and_loses_nothing(tiny_tmpfs: Path) -> None:
    filler = tiny_tmpfs / "filler"
    filler.write_bytes(b"x" * 16384)  # room to give back later
    state_dir = tiny_tmpfs / "state"
    acknowledged: list[int] = []
    async with wx.FileStore(state_dir, compact_every=8) as store:
        await store.load(ACCOUNT)
        mid = 0
        while True:
            mid += 1
            assert mid < 500, "the 64 KiB disk never filled up"
            try:
                await store.accept(
                    ACCOUNT, cursor=f"c{mid}", entries=[entry(mid)], context_tokens={}
                )
            except StoreUnavailableError as exc:
                full = str(exc)
                break
            acknowledged.append(mid)
        assert "No space left on device" in full
        assert len(acknowledged) >= 3
        # Still full: every write fails cleanly, again and again.
        for _ in range(3):
            with pytest.raises(StoreUnavailableError):
                await store.accept(
                    ACCOUNT, cursor=f"c{mid}", entries=[entry(mid)], context_tokens={}
                )
        with pytest.raises(StoreUnavailableError):
            await store.outbox_put(ACCOUNT, OutboxEntry("o", "u", "x" * 8000, 1.0))
        # What a restart would see now: every acknowledged batch, and nothing else.
        seen = await wx.FileStore(state_dir, read_only=True).load(ACCOUNT)
        assert [e.message_id for e in seen.pending] == acknowledged
        assert seen.cursor == f"c{acknowledged[-1]}"

        filler.unlink()  # room again: the held batch goes through on the same store
        await store.accept(ACCOUNT, cursor=f"c{mid}", entries=[entry(mid)], context_tokens={})
        acknowledged.append(mid)
        await store.mark_done(ACCOUNT, acknowledged[:2])
        await store.flush(ACCOUNT)
    async with wx.FileStore(state_dir) as again:
        state = await again.load(ACCOUNT)
    assert [e.message_id for e in state.pending] == acknowledged[2:]
    assert state.cursor == f"c{mid}"
    assert state.pending[-1].raw == entry(mid).raw
