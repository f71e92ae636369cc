"""A bot that answers like an LLM agent: typing, tool-call progress, a streamed markdown answer.

The "model" here is a stand-in that yields markdown in small chunks, as a streaming LLM
API would. The answer goes through :class:`~weixin_trio.markdown.StreamingMarkdownFilter`
as it streams (so the filter sees the same text in any chunking), is sent in paragraphs
as they complete, and the whole run is tagged with one ``run_id``.

Run it against the fake server like ``echo_bot.py`` (same environment variables).
A ``/stop`` message interrupts a running answer.
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

import trio

import weixin_trio as wx
from weixin_trio.markdown import StreamingMarkdownFilter

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

ANSWER = (
    "## 结论\n\n"
    "今天*适合*出门，气温 **22°C**。\n\n"
    "Details, `snake_case_name` kept:\n\n"
    "- morning: sunny\n- evening: *light* rain\n\n"
    "![radar](https://example.invalid/radar_(1).png)\n"
    "Have a nice day!"
)


async def fake_llm(question: str) -> AsyncIterator[str]:
    """Yield an answer in small chunks, like a streaming model API."""
    del question
    for start in range(0, len(ANSWER), 7):
        await trio.sleep(0.01)
        yield ANSWER[start : start + 7]


async def handle(msg: wx.Message) -> None:
    """Answer one message: typing indicator, a tool call, then the streamed answer."""
    async with msg.typing():
        run = msg.run()
        call = await run.tool_start("weather_lookup")
        await trio.sleep(0.05)  # the tool does its work
        await run.tool_result("weather_lookup", tool_call_id=call)
        md = StreamingMarkdownFilter()
        pending = ""
        async for chunk in fake_llm(msg.text):
            pending += md.feed(chunk)
            while "\n\n" in pending:  # send each finished paragraph at once
                paragraph, pending = pending.split("\n\n", 1)
                if paragraph.strip():
                    await run.send_text(paragraph)
        pending += md.flush()
        if pending.strip():
            await run.send_text(pending)


def is_control(msg: wx.Message) -> bool:
    """``/stop`` bypasses the user's lane so it can interrupt a running answer."""
    return msg.text.strip() == "/stop"


async def main() -> None:
    """Run until SIGINT/SIGTERM."""
    monitors: list[wx.Monitor] = []

    async def dispatch(msg: wx.Message) -> None:
        if is_control(msg):
            monitors[0].interrupt(msg.from_user_id)
            await msg.reply("stopped")
        else:
            await handle(msg)

    async with (
        wx.FileStore("llm-state") as store,  # one writer per state dir; closed at the end
        wx.open_client(
            token=os.environ["WEIXIN_TOKEN"],
            base_url=os.environ.get("WEIXIN_BASE_URL", wx.DEFAULT_BASE_URL),
            account_id=os.environ.get("WEIXIN_ACCOUNT", "llm-bot"),
            markdown=False,  # the stream is filtered above already
        ) as client,
    ):
        async with wx.open_monitor(client, dispatch, store=store, control=is_control) as monitor:
            monitors.append(monitor)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    monitor.stop()
                    break


if __name__ == "__main__":
    trio.run(main)
