"""The playground tests' bot: echoes text (as one tool-call run) and sends media back."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from weixin_trio import Message


async def echo(msg: Message) -> None:
    """Text: a progress run ending in ``echo: <text>``; an image or file: the same back."""
    async with msg.typing():
        if msg.media:
            data = await msg.download()
            assert isinstance(data, bytes)
            kind = msg.media[0].kind.name
            if kind == "IMAGE":
                await msg.reply_image(data)
            else:
                await msg.reply_file(data, file_name=msg.media[0].file_name or "file.bin")
            return
        run = msg.run()
        call = await run.tool_start("echo")
        await run.tool_result("echo", tool_call_id=call, status="completed")
        await run.send_text(f"echo: {msg.text}")
