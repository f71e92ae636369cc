"""A chat bot on any OpenAI-compatible model: streamed answers, history, tool calls.

Environment: ``OPENAI_BASE_URL`` (default ``https://api.openai.com/v1``; any
OpenAI-compatible server, e.g. ``http://localhost:11434/v1`` for Ollama),
``OPENAI_API_KEY``, ``OPENAI_MODEL`` (default ``gpt-4o-mini``), and the account as in
``echo_bot.py``: ``WEIXIN_TOKEN``, ``WEIXIN_BASE_URL``, ``WEIXIN_ACCOUNT``, plus
``WEIXIN_STATE_DIR`` for the history. ``/reset`` forgets your history, ``/stop``
interrupts a running answer.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import logging
import operator
import os
import signal
from contextlib import aclosing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import trio
from platformdirs import user_state_path

import weixin_trio as wx
from weixin_trio.markdown import StreamingMarkdownFilter

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable

log = logging.getLogger("openai_bot")
STATE_DIR = (
    Path(os.environ.get("WEIXIN_STATE_DIR") or user_state_path("weixin-trio")) / "openai-bot"
)
SYSTEM = "You answer in a WeChat chat: short paragraphs, plain text, little markdown."
HISTORY_MESSAGES = 20  # the last 20 messages of a user are sent with each question ...
HISTORY_CHARS = 12_000  # ... and at most about this many characters of them
MAX_ROUNDS = 4  # model calls per question (each tool round costs one more)
MAX_SENDS = 8  # paragraphs per answer; the server allows 10 sends per inbound message
DEADLINE = 120.0  # seconds for a whole answer, tool rounds included
Json = dict[str, Any]


class ModelError(Exception):
    """The model endpoint failed; the text is safe to show the user."""


class SSEDecoder:
    """Server-sent events, sans-IO: ``feed`` bytes in any chunking, get ``(event, data)``.

    Lines may be split across chunks and end in LF or CRLF; comments (``:``), ``id:``
    fields and keep-alives are skipped; the data lines of one event are joined.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event = "message"

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        events = []
        for raw in lines:
            line = raw.removesuffix(b"\r").decode(errors="replace")
            field, _, value = line.partition(":")
            if not line:  # a blank line ends the event
                if self._data:
                    events.append((self._event, "\n".join(self._data)))
                self._data, self._event = [], "message"
            elif field == "data":
                self._data.append(value.removeprefix(" "))
            elif field == "event":
                self._event = value.strip()
        return events


def _calculate(expression: str) -> str:
    """A safe calculator: numbers, + - * / // % ** and parentheses only."""
    ops: dict[type, Callable[..., Any]] = {
        ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
        ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos,
    }  # fmt: skip

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 100:
                raise ValueError("exponent too large")
            return ops[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in ops:
            return ops[type(node.op)](ev(node.operand))
        raise ValueError("only numbers and + - * / // % ** ( ) are allowed")

    return str(ev(ast.parse(expression, mode="eval").body))


def _get_time() -> str:
    """The current time (UTC): models do not know it."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


LOCAL_TOOLS: dict[str, Callable[..., str]] = {"calculate": _calculate, "get_time": _get_time}
TOOLS: list[Json] = [
    {"type": "function", "function": {"name": "calculate", "description": "Evaluate arithmetic",
        "parameters": {"type": "object", "required": ["expression"],
                       "properties": {"expression": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "get_time", "description": "The time (UTC)",
        "parameters": {"type": "object", "properties": {}}}},
]  # fmt: skip


def trim(history: list[Json]) -> list[Json]:
    """The newest messages within the caps, starting at a user message (no orphan tool turn)."""
    kept = history[-HISTORY_MESSAGES:]
    while kept and (kept[0]["role"] != "user" or len(json.dumps(kept)) > HISTORY_CHARS):
        kept = kept[1:]
    return kept


class OpenAIBot:
    """Answers each message from the model; ``dispatch`` is the monitor's handler."""

    def __init__(self, http: httpx.AsyncClient, model: str) -> None:
        self.http = http
        self.model = model
        self.monitor: wx.Monitor | None = None  # set once the monitor runs, for /stop

    async def dispatch(self, msg: wx.Message) -> None:
        command = msg.text.strip()
        if command == "/stop" and self.monitor is not None:
            self.monitor.interrupt(msg.from_user_id)
            await msg.reply("Stopped.")
        elif command == "/reset":
            await msg.state.update(history=[])
            await msg.reply("History cleared.")
        elif command:
            await self.answer(msg)

    async def answer(self, msg: wx.Message) -> None:
        history: list[Json] = (await msg.state.get()).get("history", [])
        turn: list[Json] = [{"role": "user", "content": msg.text}]
        sent: list[str] = []  # paragraphs the user has seen
        try:
            async with msg.typing():
                with trio.fail_after(DEADLINE):
                    await self._run(msg.run(), history, turn, sent)
        except (ModelError, httpx.HTTPError, trio.TooSlowError) as exc:
            log.warning("model failed for %s: %r", msg.from_user_id, exc)
            short = str(exc) if isinstance(exc, ModelError) else "the model did not answer"
            await msg.reply(f"Sorry, {short}. Please try again.")
        finally:
            if turn[-1]["role"] != "assistant" or "tool_calls" in turn[-1]:  # cut short:
                # keep the question and what the user saw, never a tool call without result
                turn = turn[:1] + [{"role": "assistant", "content": "\n\n".join(sent)}][: len(sent)]
            with trio.CancelScope(shield=True), trio.move_on_after(5):  # also after /stop
                await msg.state.update(history=trim(history + turn))

    async def _run(
        self, run: wx.Run, history: list[Json], turn: list[Json], sent: list[str]
    ) -> None:
        """Model rounds until an answer without tool calls; complete messages go to ``turn``."""
        md = StreamingMarkdownFilter()
        pending = ""
        for round_ in range(MAX_ROUNDS):
            content, calls = "", dict[int, Json]()
            messages = [{"role": "system", "content": SYSTEM}, *history, *turn]
            stream = self._complete(messages, tools=round_ < MAX_ROUNDS - 1)
            async with aclosing(stream) as deltas:  # closes the response on errors too
                async for delta in deltas:
                    content += delta.get("content") or ""
                    pending += md.feed(delta.get("content") or "")
                    while "\n\n" in pending and len(sent) < MAX_SENDS - 1:
                        paragraph, pending = pending.split("\n\n", 1)
                        if paragraph.strip():
                            await run.send_text(paragraph)
                            sent.append(paragraph)
                    for part in delta.get("tool_calls") or []:  # streamed in pieces, by index
                        new: Json = {"id": "", "name": "", "arguments": ""}
                        call = calls.setdefault(part.get("index", 0), new)
                        function = part.get("function") or {}
                        call["id"] = part.get("id") or call["id"]  # id and name come once ...
                        call["name"] = function.get("name") or call["name"]
                        call["arguments"] += function.get("arguments") or ""  # ... these in pieces
            if not calls:
                pending += md.flush()
                if pending.strip():
                    await run.send_text(pending.strip())
                    sent.append(pending.strip())
                turn.append({"role": "assistant", "content": content})
                return
            turn.append({"role": "assistant", "content": content or None, "tool_calls": [
                {"id": c["id"], "type": "function",
                 "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in calls.values()]})  # fmt: skip
            for call in calls.values():
                result = await self._tool(run, call)
                turn.append({"role": "tool", "tool_call_id": call["id"], "content": result})
        raise ModelError("the model kept calling tools")

    async def _tool(self, run: wx.Run, call: Json) -> str:
        """Run one local tool, shown in the chat as progress (items 11, then 12)."""
        call_id = await run.tool_start(call["name"], tool_call_id=call["id"] or None)
        try:
            result = LOCAL_TOOLS[call["name"]](**json.loads(call["arguments"] or "{}"))
        except Exception as exc:  # the model sees the error and may try again
            await run.tool_result(call["name"], tool_call_id=call_id, status="failed")
            return f"error: {exc!r}"
        await run.tool_result(call["name"], tool_call_id=call_id)
        return result

    async def _complete(self, messages: list[Json], *, tools: bool) -> AsyncGenerator[Json]:
        """Stream one chat completion: yields each chunk's ``delta``."""
        body: Json = {"model": self.model, "messages": messages, "stream": True}
        if tools:
            body["tools"] = TOOLS
        async with self.http.stream("POST", "chat/completions", json=body) as response:
            if response.status_code >= 400:
                await response.aread()
                raise ModelError(f"the model endpoint answered HTTP {response.status_code}")
            decoder, finished, error = SSEDecoder(), False, ""
            # Read to the end even after an error: leaving httpx's iterators half-read
            # makes trio warn when they are garbage collected.
            async for chunk in response.aiter_bytes():
                for event, data in decoder.feed(chunk):
                    if error or data == "[DONE]":
                        continue
                    try:
                        payload = json.loads(data)
                    except ValueError:
                        payload = {"error": data}
                    if event == "error" or "error" in payload:
                        error = "the model reported an error"
                        continue
                    for choice in payload.get("choices") or []:
                        finished = finished or bool(choice.get("finish_reason"))
                        yield choice.get("delta") or {}
        if error or not finished:  # a finish_reason comes before [DONE], if any
            raise ModelError(error or "the model's answer broke off")


def is_control(msg: wx.Message) -> bool:
    """``/stop`` bypasses the user's lane so it can interrupt a running answer."""
    return msg.text.strip() == "/stop"


async def main() -> None:
    """Run until SIGINT/SIGTERM."""
    logging.basicConfig(level=logging.INFO)
    async with (
        httpx.AsyncClient(
            base_url=os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1"),
            headers={"Authorization": f"Bearer {os.environ.get('OPENAI_API_KEY', '')}"},
            timeout=httpx.Timeout(None, connect=30),  # slow models: DEADLINE bounds an answer
        ) as http,
        wx.FileStore(STATE_DIR) as store,
        wx.open_client(
            token=os.environ["WEIXIN_TOKEN"],
            base_url=os.environ.get("WEIXIN_BASE_URL", wx.DEFAULT_BASE_URL),
            account_id=os.environ.get("WEIXIN_ACCOUNT", "openai-bot"),
            markdown=False,  # the stream is filtered already
        ) as client,
    ):
        bot = OpenAIBot(http, os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
        async with wx.open_monitor(
            client, bot.dispatch, store=store, control=is_control
        ) as monitor:
            bot.monitor = monitor
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    monitor.stop()
                    break


if __name__ == "__main__":
    trio.run(main)
