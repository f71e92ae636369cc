"""One prompt turn's output: the agent's ``session/update``s become WeChat sends.

The connection's reader pushes updates (synchronously, in arrival order) into the
turn's queue; `Turn.pump` sends them in the same order: message text through
`StreamingMarkdownFilter`, each completed paragraph as soon as it completes, tool calls
as progress items 11/12 of one run. Paragraphs are held back (and go out with the rest
at the end) when the user's send window has one send left.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..markdown import StreamingMarkdownFilter

if TYPE_CHECKING:
    from .._client.runs import Run, ToolStatus
    from .._proto.send_windows import SendWindow

__all__ = ["Turn"]

log = logging.getLogger("weixin_trio.acp")

#: Sends kept for the end of a turn (the rest of the answer and the stop notice).
RESERVE = 1


@attrs.define
class _Say:
    text: str
    done: trio.Event = attrs.field(factory=trio.Event)


class Turn:
    """The output side of one ``session/prompt``."""

    def __init__(self, run: Run, window: Any = None) -> None:
        """``window()`` answers the reply's current `SendWindow` (``None``: no check)."""
        self.run = run
        self._window = window
        self._send, self._receive = trio.open_memory_channel[Any](math.inf)
        self._filter = StreamingMarkdownFilter()
        self._pending = ""
        self._held: list[str] = []
        self.tool_kinds: dict[str, str] = {}
        self.tool_titles: dict[str, str] = {}
        self._titles: dict[str, str] = {}
        self._finished_tools: set[str] = set()
        self.scope: trio.CancelScope | None = None
        self.stop_requested = False
        self.paragraphs_sent = 0

    def push(self, update: Any) -> None:
        """Queue one ``session/update`` (from the reader; never blocks)."""
        if isinstance(update, dict):
            call_id = update.get("toolCallId")
            if isinstance(call_id, str) and isinstance(update.get("kind"), str):
                self.tool_kinds[call_id] = update["kind"]
            if isinstance(call_id, str) and isinstance(update.get("title"), str):
                self.tool_titles[call_id] = update["title"]
        try:
            self._send.send_nowait(update)
        except trio.ClosedResourceError:
            log.debug("an update after the turn ended; dropped")

    def close(self) -> None:
        """No more updates: `pump` returns once the queue is drained."""
        self._send.close()

    async def say(self, text: str) -> None:
        """Send ``text`` after everything queued so far (e.g. a permission question).

        Cancellation:
            Stops waiting; the text may still be sent.
        """
        item = _Say(text)
        self._send.send_nowait(item)
        await item.done.wait()

    async def pump(self) -> None:
        """Send the queued updates in order until `close`.

        Cancellation:
            Stops sending; what was queued is dropped.
        """
        async with self._receive:
            async for update in self._receive:
                if isinstance(update, _Say):
                    try:
                        await self._send_pending()
                        await self.run.send_text(update.text)
                    finally:
                        update.done.set()
                    continue
                try:
                    await self._apply(update)
                except Exception as exc:
                    log.warning("sending the agent's output failed: %r", exc)

    async def finish(self, notice: str | None = None) -> None:
        """Send what is left of the answer (and ``notice``) as the last message.

        Cancellation:
            As [`Run.send_text`][weixin_trio.Run.send_text].
        """
        self._pending += self._filter.flush()
        parts = [*self._held, self._pending.strip()]
        self._held, self._pending = [], ""
        if notice:
            parts.append(notice)
        text = "\n\n".join(p for p in parts if p.strip())
        if text:
            await self.run.send_text(text)

    async def _apply(self, update: Any) -> None:
        if not isinstance(update, dict):
            return
        kind = update.get("sessionUpdate")
        if kind == "agent_message_chunk":
            content = update.get("content")
            if isinstance(content, dict) and content.get("type") == "text":
                await self._text(str(content.get("text", "")))
        elif kind == "tool_call":
            await self._tool_start(update)
        elif kind == "tool_call_update":
            await self._tool_update(update)
        elif kind == "plan":
            entries = update.get("entries")
            log.debug("agent plan: %d entries", len(entries) if isinstance(entries, list) else 0)

    async def _text(self, chunk: str) -> None:
        self._pending += self._filter.feed(chunk)
        while "\n\n" in self._pending:
            paragraph, self._pending = self._pending.split("\n\n", 1)
            if paragraph.strip():
                await self._paragraph(paragraph)

    async def _paragraph(self, paragraph: str) -> None:
        if self._held or not self._can_send():
            self._held.append(paragraph)
            return
        await self.run.send_text(paragraph)
        self.paragraphs_sent += 1

    async def _send_pending(self) -> None:
        parts = [*self._held, self._pending.strip()]
        self._held, self._pending = [], ""
        text = "\n\n".join(p for p in parts if p.strip())
        if text:
            await self.run.send_text(text)

    def _can_send(self) -> bool:
        if self._window is None:
            return True
        window: SendWindow = self._window()
        return window.remaining is None or window.remaining > RESERVE

    async def _tool_start(self, update: dict[str, Any]) -> None:
        call_id = update.get("toolCallId")
        if not isinstance(call_id, str) or call_id in self._titles:
            return
        title = str(update.get("title") or update.get("kind") or "tool")
        self._titles[call_id] = title
        await self.run.tool_start(title, tool_call_id=call_id)
        await self._maybe_finish_tool(call_id, update.get("status"))

    async def _tool_update(self, update: dict[str, Any]) -> None:
        call_id = update.get("toolCallId")
        if not isinstance(call_id, str):
            return
        if call_id not in self._titles:
            await self._tool_start({**update, "status": None})
        if isinstance(update.get("title"), str):
            self._titles[call_id] = update["title"]
        await self._maybe_finish_tool(call_id, update.get("status"))

    async def _maybe_finish_tool(self, call_id: str, status: object) -> None:
        if status not in ("completed", "failed") or call_id in self._finished_tools:
            return
        self._finished_tools.add(call_id)
        result: ToolStatus = "completed" if status == "completed" else "failed"
        await self.run.tool_result(self._titles[call_id], tool_call_id=call_id, status=result)
