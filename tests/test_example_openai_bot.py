"""examples/openai_bot.py against a fake OpenAI-compatible completions server.

The fake speaks the SSE shape of ``POST /chat/completions`` through an httpx transport,
one scripted response per request, and records each request's JSON body.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trio
import trio.testing
from hypothesis import given, settings, strategies as st

import weixin_trio as wx

from ._helpers import SRC, until
from .test_examples import EXAMPLES, load

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, MutableMapping
    from pathlib import Path
    from types import ModuleType

    from weixin_trio.testing import FakeILinkServer

USER = "alice@im.wechat"
TEXT = 1
Step = bytes | Exception | trio.Event  # a chunk to send, an error to raise, a wait


@pytest.fixture
def openai_bot() -> ModuleType:
    return load("openai_bot")


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    return b"data: " + json.dumps({"choices": [choice]}).encode() + b"\n\n"


def answer(text: str, size: int = 5) -> list[Step]:
    """An answer streamed ``size`` characters at a time, finished and ``[DONE]``."""
    parts: list[Step] = [chunk({"role": "assistant", "content": ""})]
    parts += [chunk({"content": text[i : i + size]}) for i in range(0, len(text), size)]
    return [*parts, chunk(finish="stop"), b"data: [DONE]\n\n"]


class Body(httpx.AsyncByteStream):
    def __init__(self, steps: Iterable[Step]) -> None:
        self.steps = list(steps)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for step in self.steps:
            await trio.sleep(0.01)
            if isinstance(step, Exception):
                raise step
            if isinstance(step, trio.Event):
                await step.wait()
            else:
                yield step


class FakeCompletions:
    """Answers each request with the next scripted ``(status, steps)``."""

    def __init__(self, *scripts: list[Step] | tuple[int, bytes]) -> None:
        self.scripts = list(scripts)
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        assert request.headers["authorization"] == "Bearer sk-test"
        self.requests.append(json.loads(request.content))
        script = self.scripts.pop(0)
        if isinstance(script, tuple):
            status, body = script
            return httpx.Response(status, content=body)
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, headers=headers, stream=Body(script))

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.MockTransport(self),
            base_url="https://llm.invalid/v1",
            headers={"Authorization": "Bearer sk-test"},
        )

    def history(self, request: int) -> list[tuple[str, Any]]:
        """``(role, content)`` of a request's messages after the system prompt."""
        messages = self.requests[request]["messages"]
        assert messages[0]["role"] == "system"
        return [(m["role"], m.get("content")) for m in messages[1:]]


class Chat:
    """The bot under a monitor, with a store, against the fake iLink server."""

    def __init__(self, fake: FakeILinkServer, monitor: wx.Monitor) -> None:
        self.fake = fake
        self.monitor = monitor

    def texts(self, since: int = 0) -> list[str]:
        return [s.text or "" for s in self.fake.sent_to(USER)[since:] if s.items[0]["type"] == TEXT]

    async def say(self, text: str, replies: int = 1) -> list[str]:
        """Send ``text``; the texts the bot sent after it (``replies`` at least)."""
        before = len(self.fake.sent_to(USER))
        self.fake.inject_text(USER, text)
        await until(lambda: len(self.texts(before)) >= replies)
        await self.monitor.wait_idle()
        return self.texts(before)


@asynccontextmanager
async def chat_with(
    openai_bot: ModuleType,
    fake: FakeILinkServer,
    client: wx.ILinkClient,
    completions: FakeCompletions,
    store: wx.MemoryStore,
) -> AsyncIterator[Chat]:
    client._messenger.markdown = False  # the bot filters the stream itself
    async with completions.http() as http:
        bot = openai_bot.OpenAIBot(http, "test-model")
        async with wx.open_monitor(
            client, bot.dispatch, store=store, control=openai_bot.is_control
        ) as monitor:
            bot.monitor = monitor
            yield Chat(fake, monitor)


async def history_of(store: wx.MemoryStore, client: wx.ILinkClient) -> list[tuple[str, Any]]:
    state = await wx.ConversationState(store, client.account_id, USER).get()
    return [(m["role"], m.get("content")) for m in state.get("history", [])]


async def test_answer_streams_in_paragraphs_and_history_goes_back(
    openai_bot: ModuleType,
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
) -> None:
    first = "## Weather\n\n今天*适合*出门，**22°C**。\n\n- morning: dry\n- evening: rain"
    completions = FakeCompletions(answer(first), answer("Still sunny."))
    store = wx.MemoryStore()
    async with chat_with(openai_bot, fake_ilink, ilink_client, completions, store) as chat:
        texts = await chat.say("weather?", replies=3)
        assert texts == [
            "## Weather",
            "今天适合出门，**22°C**。",  # CJK italics removed, bold kept
            "- morning: dry\n- evening: rain",
        ]
        assert await chat.say("and tomorrow?") == ["Still sunny."]
    sends = fake_ilink.sent_to(USER)
    assert len({s.run_id for s in sends[:3]}) == 1  # one run per answer
    assert [status for _, status in fake_ilink.typing_events()][:1] == [1]
    body = completions.requests[0]
    assert (body["model"], body["stream"]) == ("test-model", True)
    assert {t["function"]["name"] for t in body["tools"]} == {"calculate", "get_time"}
    assert completions.history(0) == [("user", "weather?")]
    assert completions.history(1) == [
        ("user", "weather?"),
        ("assistant", first),  # the model's own text, unfiltered
        ("user", "and tomorrow?"),
    ]


async def test_history_is_capped(
    openai_bot: ModuleType,
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(openai_bot, "HISTORY_MESSAGES", 4)
    completions = FakeCompletions(*(answer(f"answer {i}") for i in range(4)))
    store = wx.MemoryStore()
    async with chat_with(openai_bot, fake_ilink, ilink_client, completions, store) as chat:
        for i in range(4):
            assert await chat.say(f"question {i}") == [f"answer {i}"]
    assert completions.history(3) == [
        ("user", "question 1"),
        ("assistant", "answer 1"),
        ("user", "question 2"),
        ("assistant", "answer 2"),
        ("user", "question 3"),
    ]
    assert len(await history_of(store, ilink_client)) == 4
    monkeypatch.setattr(openai_bot, "HISTORY_CHARS", 300)
    long = [{"role": "user", "content": "x" * 150}, {"role": "assistant", "content": "y"}]
    assert openai_bot.trim([*long, *long]) == long  # the character budget
    tool_turn = [{"role": "assistant", "tool_calls": []}, {"role": "tool", "content": "1"}]
    assert openai_bot.trim([*tool_turn, *long]) == long  # never starts inside a turn


async def test_a_tool_call_shows_progress_and_the_answer_continues(
    openai_bot: ModuleType,
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
) -> None:
    call = {"index": 0, "id": "call_7", "type": "function"}
    tool_round: list[Step] = [
        chunk({"role": "assistant", "content": None, "tool_calls": [
            {**call, "function": {"name": "calculate", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"expres'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'sion": "2+3*4"}'}}]}),
        chunk(finish="tool_calls"),
        b"data: [DONE]\n\n",
    ]  # fmt: skip
    completions = FakeCompletions(tool_round, answer("It is 14."))
    store = wx.MemoryStore()
    async with chat_with(openai_bot, fake_ilink, ilink_client, completions, store) as chat:
        assert await chat.say("2+3*4?") == ["It is 14."]
    sends = fake_ilink.sent_to(USER)
    assert [s.items[0]["type"] for s in sends] == [11, 12, TEXT]
    assert len({s.run_id for s in sends}) == 1
    assert sends[0].items[0]["tool_call_start_item"]["tool_name"] == "calculate"
    assert sends[1].items[0]["tool_call_result_item"]["status"] == "completed"
    messages = completions.requests[1]["messages"]
    function = {"name": "calculate", "arguments": '{"expression": "2+3*4"}'}
    assert messages[2]["tool_calls"] == [{"id": "call_7", "type": "function", "function": function}]
    assert messages[3] == {"role": "tool", "tool_call_id": "call_7", "content": "14"}
    assert [role for role, _ in await history_of(store, ilink_client)] == [
        "user",
        "assistant",
        "tool",
        "assistant",
    ]


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(httpx.RemoteProtocolError("peer closed connection"), id="connection-drop"),
        pytest.param(b'data: {"error": {"message": "overloaded"}}\n\n', id="error-data"),
        pytest.param(b"event: error\ndata: overloaded\n\n", id="error-event"),
        pytest.param(b"", id="eof-without-done"),
        pytest.param(trio.Event(), id="stall-until-deadline"),
    ],
)
async def test_an_error_mid_stream_keeps_what_was_sent(
    failure: Step,
    openai_bot: ModuleType,
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
) -> None:
    broken = [*answer("First part.\n\nSecond")[:-2], failure]
    completions = FakeCompletions(broken, answer("Fine again."))
    store = wx.MemoryStore()
    async with chat_with(openai_bot, fake_ilink, ilink_client, completions, store) as chat:
        texts = await chat.say("tell me", replies=2)
        assert texts[0] == "First part."
        assert len(texts) == 2
        assert texts[1].startswith("Sorry, ")
        assert await history_of(store, ilink_client) == [
            ("user", "tell me"),
            ("assistant", "First part."),  # what the user saw, no half turn
        ]
        assert await chat.say("again") == ["Fine again."]
    assert completions.history(1)[:2] == [("user", "tell me"), ("assistant", "First part.")]


@pytest.mark.parametrize("status", [500, 401])
async def test_an_http_error_gets_one_message(
    status: int,
    openai_bot: ModuleType,
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
) -> None:
    completions = FakeCompletions((status, b'{"error": {"message": "no"}}'), answer("Back."))
    store = wx.MemoryStore()
    async with chat_with(openai_bot, fake_ilink, ilink_client, completions, store) as chat:
        assert await chat.say("hi") == [
            f"Sorry, the model endpoint answered HTTP {status}. Please try again."
        ]
        assert await chat.say("hi again") == ["Back."]
    assert completions.history(1) == [("user", "hi"), ("user", "hi again")]


async def test_reset_forgets_the_history(
    openai_bot: ModuleType,
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
) -> None:
    completions = FakeCompletions(answer("One."), answer("Two."))
    store = wx.MemoryStore()
    async with chat_with(openai_bot, fake_ilink, ilink_client, completions, store) as chat:
        await chat.say("first")
        assert await chat.say("/reset") == ["History cleared."]
        assert await history_of(store, ilink_client) == []
        await chat.say("second")
    assert completions.history(1) == [("user", "second")]


async def test_stop_interrupts_a_running_answer(
    openai_bot: ModuleType,
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
) -> None:
    never = trio.Event()
    completions = FakeCompletions([*answer("Part one.\n\nPart two")[:-2], never], answer("Ok."))
    store = wx.MemoryStore()
    async with chat_with(openai_bot, fake_ilink, ilink_client, completions, store) as chat:
        fake_ilink.inject_text(USER, "long story")
        await fake_ilink.wait_for_sent(1)
        assert await chat.say("/stop") == ["Stopped."]
        assert fake_ilink.sent_texts(USER) == ["Part one.", "Stopped."]
        assert await history_of(store, ilink_client) == [
            ("user", "long story"),
            ("assistant", "Part one."),
        ]
        assert await chat.say("next") == ["Ok."]
    assert not never.is_set()


def _body(text: str) -> bytes:
    """An SSE body in the shapes servers use: CRLF, comments, keep-alives, events, ids."""
    events = [e for e in answer(text, 3) if isinstance(e, bytes)]
    crlf = [e.replace(b"\n", b"\r\n") for e in events[:3]]
    return b"".join(
        [b": keep-alive\r\n\r\n", b"event: message\r\nid: 1\r\n", *crlf, b":\n\n", *events[3:]]
    )


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(st.sampled_from("ab 好\n*_`é"), max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
)
def test_any_chunking_of_the_sse_body_gives_the_same_answer(text: str, cuts: list[int]) -> None:
    openai_bot = load("openai_bot")
    body = _body(text)
    bounds = sorted({0, len(body), *(c % (len(body) + 1) for c in cuts)})
    chunks = [body[a:b] for a, b in itertools.pairwise(bounds)]

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Body(chunks))

    async def main() -> str:
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=transport, base_url="https://x.invalid") as http:
            bot = openai_bot.OpenAIBot(http, "m")
            deltas = [d async for d in bot._complete([], tools=False)]
        return "".join(d.get("content") or "" for d in deltas)

    assert trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)) == text


def test_sse_decoder_fields(openai_bot: ModuleType) -> None:
    decoder = openai_bot.SSEDecoder()
    assert decoder.feed(b"event: ping\ndata: x\n\ndata:  two\ndata:three\r\n") == [("ping", "x")]
    assert decoder.feed(b"\r\nid: 3\nretry: 10\n: note\n\n") == [("message", " two\nthree")]


def test_openai_bot_keeps_its_history_out_of_the_working_copy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WEIXIN_STATE_DIR", str(tmp_path))
    sys.modules.pop("openai_bot", None)
    try:
        state = load("openai_bot").STATE_DIR
        assert state == tmp_path / "openai-bot"
    finally:
        sys.modules.pop("openai_bot", None)


async def _asgi_completions(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    """The fake completions server over real HTTP: a tool round, then an answer."""
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    assert scope["path"] == "/v1/chat/completions"
    assert (b"authorization", b"Bearer sk-never-in-the-log-4711") in scope["headers"]
    body = b""
    while (event := await receive()).get("more_body"):
        body += event.get("body", b"")
    body += event.get("body", b"")
    messages = json.loads(body)["messages"]
    call = {"index": 0, "id": "c1", "function": {"name": "calculate", "arguments": ""}}
    if messages[-1]["role"] == "tool":
        steps = answer(f"The answer is {messages[-1]['content']}.\n\nBye!")
    else:
        steps = [
            chunk({"tool_calls": [call]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"expression":'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"6*7"}'}}]}),
            chunk(finish="tool_calls"),
            b"data: [DONE]\n\n",
        ]
    headers = [(b"content-type", b"text/event-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for step in steps:
        assert isinstance(step, bytes)
        await send({"type": "http.response.body", "body": step, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


@pytest.mark.slow
async def test_the_example_runs_as_a_program(tmp_path: Path) -> None:
    """``python examples/openai_bot.py``: real sockets, the real clock, its own env."""
    from weixin_trio._web.serve import serve_asgi
    from weixin_trio.testing import FakeILinkServer

    fake = FakeILinkServer(seed=8, hold=1.0)
    secret = "sk-never-in-the-log-4711"
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            llm_url = await nursery.start(partial(serve_asgi, _asgi_completions))
            env = {
                **os.environ,
                "PYTHONPATH": str(SRC),
                "WEIXIN_TOKEN": fake.token,
                "WEIXIN_BASE_URL": await nursery.start(fake.serve),
                "WEIXIN_STATE_DIR": str(tmp_path),
                "OPENAI_BASE_URL": llm_url + "/v1",
                "OPENAI_API_KEY": secret,
                "OPENAI_MODEL": "fake-model",
            }
            proc = await trio.lowlevel.open_process(
                [sys.executable, str(EXAMPLES / "openai_bot.py")],
                env=env,
                stderr=subprocess.PIPE,
            )
            try:
                fake.inject_text(USER, "6*7?")
                await until(lambda: len(fake.sent_to(USER)) >= 4, timeout=30)
                proc.send_signal(signal.SIGINT)
                assert await proc.wait() == 0
            finally:
                if proc.returncode is None:
                    proc.kill()
            assert proc.stderr is not None
            err = b""
            while chunk_ := await proc.stderr.receive_some(65536):
                err += chunk_
            nursery.cancel_scope.cancel()
    sends = fake.sent_to(USER)
    assert [s.items[0]["type"] for s in sends] == [11, 12, TEXT, TEXT]
    assert [s.text for s in sends[2:]] == ["The answer is 42.", "Bye!"]
    assert secret.encode() not in err
    assert (tmp_path / "openai-bot").is_dir()  # the history is kept there


def test_the_calculator_evaluates_arithmetic_only(openai_bot: ModuleType) -> None:
    calculate = openai_bot.LOCAL_TOOLS["calculate"]
    assert calculate("2 + 3 * (4 - 1) / 2") == "6.5"
    assert calculate("-2 ** 10 // 3 % 7") == str(-(2**10) // 3 % 7)
    for bad in ["__import__('os').system('true')", "x", "[1] * 9", "2 ** 1000", "'a' * 9"]:
        with pytest.raises((ValueError, SyntaxError)):
            calculate(bad)


async def test_a_failing_tool_is_reported_and_the_model_sees_the_error(
    openai_bot: ModuleType,
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
) -> None:
    call = {"index": 0, "id": "c9", "function": {"name": "calculate", "arguments": '{"x": 1}'}}
    tool_round: list[Step] = [chunk({"tool_calls": [call]}), chunk(finish="tool_calls")]
    completions = FakeCompletions(tool_round, answer("I could not calculate that."))
    async with chat_with(
        openai_bot, fake_ilink, ilink_client, completions, wx.MemoryStore()
    ) as chat:
        assert await chat.say("calc") == ["I could not calculate that."]
    sends = fake_ilink.sent_to(USER)
    assert sends[1].items[0]["tool_call_result_item"]["status"] == "failed"
    tool_message = completions.requests[1]["messages"][-1]
    assert tool_message["role"] == "tool"
    assert tool_message["content"].startswith("error: TypeError(")
