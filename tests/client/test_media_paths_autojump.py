"""Path sends and path downloads work under ``autojump_clock`` (no thread races the clock).

Before, the file I/O ran in worker threads; while a thread worked every task looked
blocked, so the autojumping clock leapt to the next deadline (the drain) and the
monitor cancelled the reply silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import weixin_trio as wx

if TYPE_CHECKING:
    from pathlib import Path

    import trio

    from weixin_trio.testing import FakeILinkServer

USER = "alice@im.wechat"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
PDF = b"%PDF-1.4\n" + bytes(255 - i for i in range(256)) * 90


async def test_replies_from_paths_finish_inside_a_short_drain(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    tmp_path: Path,
) -> None:
    (tmp_path / "chart.png").write_bytes(PNG)
    (tmp_path / "report.pdf").write_bytes(PDF)
    saved: list[Path | bytes] = []

    async def handle(msg: wx.Message) -> None:
        await msg.reply_image(tmp_path / "chart.png")
        await msg.reply_file(tmp_path / "report.pdf")
        if msg.media:
            saved.append(await msg.download(to=tmp_path / "inbox/"))

    for round_ in range(5):
        async with wx.open_monitor(ilink_client, handle, drain_timeout=0.5) as monitor:
            fake_ilink.inject_file(USER, b"inbound %d" % round_, f"in{round_}.bin")
            await fake_ilink.wait_for_sent(2 * (round_ + 1), user=USER)
            await monitor.wait_idle()
        assert monitor.statistics().handled == 1
    media = fake_ilink.sent_media(USER)
    assert [data for _, data, _ in media] == [PNG, PDF] * 5
    assert [p.read_bytes() for p in saved if not isinstance(p, bytes)] == [
        b"inbound %d" % i for i in range(5)
    ]
