"""Take the playground screenshots of the docs (docs/img/playground*.png).

Run from the repository root with the dev extras and Chromium installed::

    .venv/bin/python docs/screenshots.py

It starts ``weixin-trio playground docs.screenshots:bot --no-browser``, drives the page
with playwright (headless Chromium: ``$WEIXIN_TRIO_CHROMIUM``, ``chromium`` on PATH
or ``/usr/bin/chromium``) and writes the PNGs. ``bot`` below is the handler it shows.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from weixin_trio import Message

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"


async def bot(msg: Message) -> None:
    """The bot of the screenshots: a tool-using weather answer, and pictures echoed."""
    async with msg.typing():
        if msg.media:
            data = await msg.download()
            assert isinstance(data, bytes)
            await msg.reply_image(data)
            await msg.reply(f"Got your picture ({len(data):,} bytes); here it is back.")
            return
        run = msg.run()
        call = await run.tool_start("get_weather")
        await trio.sleep(0.4)
        await run.tool_result("get_weather", tool_call_id=call)
        call = await run.tool_start("get_umbrella_advice")
        await trio.sleep(0.3)
        await run.tool_result("get_umbrella_advice", tool_call_id=call)
        await run.send_text(
            "**Shenzhen** today: 24 °C, light rain in the afternoon.\n"
            "## Advice\nTake an umbrella, and *enjoy* the tea."
        )


def _png(width: int, height: int) -> bytes:
    """A small gradient picture (no imaging library needed)."""
    rows = b"".join(
        b"\x00"
        + bytes(
            v
            for x in range(width)
            for v in (40 + x * 150 // width, 150 + y * 80 // height, 120 + (x + y) % 60, 255)
        )
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def main() -> None:
    """Start the playground, chat, switch a fault, and save the screenshots."""
    from playwright.sync_api import FilePayload, expect, sync_playwright

    chromium = (
        os.environ.get("WEIXIN_TRIO_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=15_000)
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    command = [sys.executable, "-m", "weixin_trio", "playground", "docs.screenshots:bot"]
    proc = subprocess.Popen(
        [*command, "--no-browser"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    try:
        url = json.loads(proc.stdout.readline())["url"]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1180, "height": 800})
            page.goto(url)
            log = page.get_by_role("log", name="Conversation")
            page.get_by_role("textbox", name="Message").fill("What's the weather in Shenzhen?")
            page.get_by_role("button", name="Send", exact=True).click()
            expect(log).to_contain_text("enjoy")
            picture = FilePayload(name="tea.png", mimeType="image/png", buffer=_png(200, 120))
            page.get_by_label("Send image").set_input_files(files=[picture])
            expect(log).to_contain_text("here it is back")
            fault = page.get_by_label("HTTP 500 on every poll and send")
            fault.check()
            faults = page.get_by_role("log", name="Fault log")
            expect(faults).to_contain_text("getupdates: status")
            fault.uncheck()
            page.get_by_role("textbox", name="Message").fill("Still there?")
            page.get_by_role("button", name="Send", exact=True).click()
            expect(log.get_by_text("Still there?")).to_be_visible()
            expect(page.get_by_label("Tool calls").nth(1)).to_contain_text("completed")
            expect(log).to_contain_text("enjoy")
            page.wait_for_function(
                "document.querySelectorAll('#messages .bubble').length >= 7"
                " && document.getElementById('typing').hidden"
            )
            page.screenshot(path=OUT / "playground.png")
            browser.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    for png in sorted(OUT.glob("playground*.png")):
        print(f"{png.relative_to(ROOT)}: {png.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
