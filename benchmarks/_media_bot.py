"""Media benchmark client: upload then download one large file through the fake CDN.

Usage: ``python _media_bot.py BASE_URL TOKEN SIZE_MIB WORKDIR``; prints one JSON line.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import trio

import weixin_trio as wx
from weixin_trio import _wire as w
from weixin_trio.media import MediaKind


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(base_url: str, token: str, size_mib: int, workdir: Path) -> None:
    src = workdir / "big.bin"
    block = os.urandom(1024 * 1024)
    with src.open("wb") as f:
        for _ in range(size_mib):
            f.write(block)
    size = size_mib * 1024 * 1024
    async with wx.open_client(
        token=token, base_url=base_url, cdn_base_url=base_url + "/c2c", pacing=None
    ) as client:
        baseline = rss_mib()
        start = time.perf_counter()
        await client.send_file("bench@im.wechat", src, context_token="bench")
        upload_s = time.perf_counter() - start
        after_upload = rss_mib()
        sent = await client._endpoints.cdn_http.get(base_url + "/_fake/sent")
        media = sent.json()[-1]["items"][0]["file_item"]["media"]
        ref = wx.MediaRef(
            kind=MediaKind.FILE,
            media=w.CDNMedia(**media),
            item_index=0,
            downloadable=True,
            size=size,
        )
        start = time.perf_counter()
        out = await client.download(ref, to=workdir / "copy.bin", max_bytes=size)
        download_s = time.perf_counter() - start
    assert isinstance(out, Path)
    assert out.stat().st_size == size
    print(
        json.dumps(
            {
                "size_mib": size_mib,
                "upload_mib_s": size_mib / upload_s,
                "download_mib_s": size_mib / download_s,
                "rss_baseline_mib": baseline,
                "rss_growth_upload_mib": after_upload - baseline,
                "rss_growth_total_mib": rss_mib() - baseline,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
