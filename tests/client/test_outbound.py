"""Outbound messaging: replies, chunking, markdown, send windows, pacing, runs, typing."""

from __future__ import annotations

import math
import time

import pytest
import trio

import weixin_trio as wx
from weixin_trio._client.pacing import Pacing
from weixin_trio._proto.send_windows import TOKENS_PER_USER, SendWindowPolicy, SendWindows
from weixin_trio._proto.typing_tickets import ConfigCache
from weixin_trio.testing import FakeILinkServer, Fault

from .._helpers import until

USER = "alice@im.wechat"


@pytest.fixture(autouse=True)
def _hand_picked_tokens_count_as_issued(fake_ilink: FakeILinkServer) -> None:
    """These tests send with hand-picked context tokens, which the fake never issued."""
    fake_ilink.default.issued_tokens.update({"c", "ctx"})


async def first_message(
    fake: FakeILinkServer, client: wx.ILinkClient, text: str = "hi"
) -> wx.Message:
    """Inject one message and return it as the monitor would hand it to a handler."""
    box: list[wx.Message] = []
    done = trio.Event()

    async def grab(msg: wx.Message) -> None:
        box.append(msg)
        done.set()

    async with wx.open_monitor(client, grab):
        fake.inject_text(USER, text)
        await done.wait()
    return box[0]


async def test_reply_carries_context_token_and_deterministic_ids(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    msg = await first_message(fake_ilink, ilink_client)
    first = await msg.reply("one")
    second = await msg.reply("two")
    assert first.confirmed
    assert second.confirmed
    sends = fake_ilink.sent_to(USER)
    assert [s.text for s in sends] == ["one", "two"]
    assert all(s.context_token == msg.context_token for s in sends)
    assert first.client_id.startswith("weixin-trio:r-")
    assert first.client_id != second.client_id
    # The same message seen again (a redelivery) replies with the same ids.
    again = wx.Message.from_wire(msg.raw, message_id=msg.message_id, ctx=None)
    with pytest.raises(RuntimeError, match="not bound"):
        await again.reply("x")


async def test_long_reply_is_split_in_order(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    msg = await first_message(fake_ilink, ilink_client)
    paragraphs = [f"paragraph {i} " + "x" * 1500 for i in range(5)]
    result = await msg.reply("\n\n".join(paragraphs))
    texts = fake_ilink.sent_texts(USER)
    assert len(texts) == len(result.parts) >= 2
    assert all(len(t) <= 4000 for t in texts)
    assert "".join(texts).replace("\n", "") == "".join(paragraphs).replace("\n", "")
    assert result.client_id == result.parts[-1].client_id
    assert len({p.client_id for p in result.parts}) == len(result.parts)
    assert result.confirmed


async def test_markdown_is_filtered_unless_disabled(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.default.context_tokens[USER] = "ctx"
    for markdown, expected in ((True, "你好"), (False, "*你好*")):
        async with wx.open_client(
            token=fake_ilink.token,
            base_url=fake_ilink.base_url,
            transport=fake_ilink.transport(),
            pacing=None,
            markdown=markdown,
        ) as client:
            await client.send_text(USER, "*你好*", context_token="ctx")
        assert fake_ilink.sent_texts(USER)[-1] == expected


@pytest.mark.parametrize("text", ["", "   \n", "![only an image](http://x/y.png)"])
async def test_empty_replies_are_refused(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    text: str,
) -> None:
    with pytest.raises(ValueError, match="empty"):
        await ilink_client.send_text(USER, text, context_token="ctx")
    assert fake_ilink.sends == []


async def test_proactive_send_needs_a_context_token(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    with pytest.raises(wx.NoContextTokenError):
        await ilink_client.send_text(USER, "hello")
    await first_message(fake_ilink, ilink_client)  # the monitor stores the token
    result = await ilink_client.send_text(USER, "hello")
    assert result.confirmed
    assert fake_ilink.sent_to(USER)[-1].context_token == fake_ilink.default.context_tokens[USER]


def test_send_window_rules() -> None:
    # Sans-IO, no event loop: the quota is per context token, the 24 h rule per user.
    windows = SendWindows(SendWindowPolicy(duration=100.0, quota=3))
    assert windows.check(USER, 0).known is False
    assert windows.check(USER, 0).is_open
    windows.record_inbound(USER, 1000.0)
    for _ in range(3):
        assert windows.check(USER, 1010.0, token="t1").is_open
        windows.record_send(USER, "t1")
    closed = windows.check(USER, 1010.0, token="t1")
    assert (closed.is_open, closed.reason, closed.remaining) == (False, "quota", 0)
    # Another message's token has its own budget, spent or not.
    assert windows.check(USER, 1010.0, token="t0").remaining == 3
    windows.record_inbound(USER, 1050.0)
    assert windows.check(USER, 1060.0, token="t2").remaining == 3
    assert not windows.check(USER, 1060.0, token="t1").is_open  # a new message does not refill t1
    expired = windows.check(USER, 1150.0, token="t2")
    assert (expired.is_open, expired.reason) == (False, "expired")
    windows.record_inbound(USER, 900.0)  # an older message does not reopen it
    assert not windows.check(USER, 1150.0, token="t2").is_open
    restored = SendWindows(windows.policy)
    restored.restore({**windows.snapshot(), "bad": "x"})
    for token in ("t1", "t2", None):
        assert restored.check(USER, 1060.0, token=token) == windows.check(USER, 1060.0, token=token)
    restored.restore({USER: [1000.0, 5]})  # the older per-user form: the time only
    assert restored.check(USER, 1010.0, token="t1").remaining == 3


def test_send_window_keeps_a_bounded_number_of_tokens_per_user() -> None:
    windows = SendWindows(SendWindowPolicy(quota=2))
    windows.record_inbound(USER, 1000.0)
    for i in range(TOKENS_PER_USER + 10):
        windows.record_send(USER, f"t{i}")
        windows.record_send(USER, f"t{i}")
    assert len(windows.snapshot()[USER][1]) == TOKENS_PER_USER
    assert windows.check(USER, 1001.0, token=f"t{TOKENS_PER_USER + 9}").reason == "quota"
    # A forgotten token's count is unknown: the tracker lets the server decide.
    assert windows.check(USER, 1001.0, token="t0").is_open


async def test_send_window_closes_after_the_quota(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    msg = await first_message(fake_ilink, ilink_client)
    window = ilink_client.send_window(USER)
    assert window.known
    assert window.remaining == 10
    for i in range(10):
        await msg.reply(f"r{i}")
    assert ilink_client.send_window(USER).reason == "quota"
    with pytest.raises(wx.SendWindowClosedError) as info:
        await msg.reply("one too many")
    assert info.value.reason == "quota"
    assert len(fake_ilink.sent_to(USER)) == 10
    # Progress items are not counted and still go out.
    run = msg.run()
    await run.tool_start("search")


async def test_pacing_spaces_out_bursts(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    async with wx.open_client(
        token=fake_ilink.token,
        base_url=fake_ilink.base_url,
        transport=fake_ilink.transport(),
        pacing=Pacing(rate=0.5, burst=3, cool_down=60.0),
        send_window=None,
    ) as client:
        start = trio.current_time()
        for i in range(7):
            await client.send_text(USER, f"m{i}", context_token="ctx")
    times = [s.at - start for s in fake_ilink.sends]
    assert times[:3] == [0.0, 0.0, 0.0]
    assert times[3:] == pytest.approx([2.0, 4.0, 6.0, 8.0])


async def test_rate_limited_send_is_retried_after_the_cool_down_with_the_same_id(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    # Issue 13 item 4: a -2 is retried once the governor's cool-down passed (it used
    # to fail at once), with the same client_id; no retry storm meanwhile.
    fake_ilink.inject_fault("sendmessage", Fault.rate_limited())
    async with wx.open_client(
        token=fake_ilink.token,
        base_url=fake_ilink.base_url,
        transport=fake_ilink.transport(),
        pacing=Pacing(rate=10.0, burst=10, cool_down=60.0),
    ) as client:
        start = trio.current_time()
        result = await client.send_text(USER, "throttled", context_token="ctx")
        assert trio.current_time() - start == pytest.approx(60.0)
        await client.send_text(USER, "later", context_token="ctx")
    requests = fake_ilink.requests_to("sendmessage")
    assert len(requests) == 3
    assert requests[0].body["msg"]["client_id"] == requests[1].body["msg"]["client_id"]
    assert requests[1].at - requests[0].at == pytest.approx(60.0)
    assert result.confirmed
    assert fake_ilink.sent_texts(USER) == ["throttled", "later"]


async def test_repeated_minus_2_fails_for_good_after_a_bounded_number(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    # -2 also means "the user's send window is closed" (PROTOCOL §7.1a): retrying it
    # for ever would hold the handler, so the third -2 of one message is final.
    fake_ilink.inject_fault("sendmessage", Fault.rate_limited(), times=math.inf)
    async with wx.open_client(
        token=fake_ilink.token,
        base_url=fake_ilink.base_url,
        transport=fake_ilink.transport(),
        pacing=Pacing(rate=10.0, burst=10, cool_down=60.0),
        send_retry=wx.SendRetryPolicy(rate_limited_attempts=3),
    ) as client:
        with pytest.raises(wx.RateLimitedError):
            await client.send_text(USER, "never", context_token="ctx")
        assert trio.current_time() == pytest.approx(120.0)
    assert len(fake_ilink.requests_to("sendmessage")) == 3


async def test_permanent_send_errors_are_not_retried(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    for fault in (Fault.http_status(400), Fault.api_error(ret=-1)):
        fake_ilink.inject_fault("sendmessage", fault)
        with pytest.raises(wx.ApiError):
            await ilink_client.send_text(USER, "x", context_token="ctx")
    assert len(fake_ilink.requests_to("sendmessage")) == 2
    assert trio.current_time() == 0


async def test_send_retries_are_bounded_in_time_and_by_the_callers_scope(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.inject_fault("sendmessage", Fault.http_status(503), times=math.inf)
    async with wx.open_client(
        token=fake_ilink.token,
        base_url=fake_ilink.base_url,
        transport=fake_ilink.transport(),
        pacing=None,
        send_retry=(policy := wx.SendRetryPolicy(retry_for=100.0, max_delay=10.0)),
    ) as client:
        with pytest.raises(wx.ApiError) as info:
            await client.send_text(USER, "x", context_token="ctx")
        assert info.value.status_code == 503
        # It gives up once the next (jittered) delay would end past retry_for.
        longest_delay = policy.max_delay * (1 + policy.jitter)
        assert policy.retry_for - longest_delay <= trio.current_time() <= policy.retry_for
        requests = len(fake_ilink.requests_to("sendmessage"))
        assert requests > 5
        start = trio.current_time()
        with trio.move_on_after(7):  # a handler's timeout or a drain deadline
            await client.send_text(USER, "y", context_token="ctx")
        assert trio.current_time() - start == pytest.approx(7.0)
    ids = {r.body["msg"]["client_id"] for r in fake_ilink.requests_to("sendmessage")}
    assert len(ids) == 2  # every retry reused its message's client_id


async def test_run_sends_progress_and_answer_under_one_run_id(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    msg = await first_message(fake_ilink, ilink_client)
    run = msg.run()
    call_id = await run.tool_start("web_search")
    result = await run.tool_result("web_search", tool_call_id=call_id, status="completed")
    answer = await run.send_text("the answer")
    assert not result.confirmed  # progress items get no message_id (live behaviour)
    assert answer.confirmed
    sends = fake_ilink.sent_to(USER)
    assert {s.run_id for s in sends} == {run.run_id}
    assert len(run.run_id) == 32
    items = [s.items[0] for s in sends]
    assert [i["type"] for i in items] == [11, 12, 1]
    assert items[0]["tool_call_start_item"] == {"tool_name": "web_search", "tool_call_id": call_id}
    assert items[0]["is_completed"] is False
    assert items[1]["tool_call_result_item"]["status"] == "completed"
    assert items[1]["is_completed"] is True
    proactive = ilink_client.run(USER)
    assert proactive.run_id != run.run_id


async def test_typing_keepalive_and_cancel(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    msg = await first_message(fake_ilink, ilink_client)
    async with msg.typing():
        await trio.sleep(12)
    assert fake_ilink.typing_events() == [(USER, 1)] * 3 + [(USER, 2)]
    # The ticket is cached: a second typing block does not call getconfig again.
    async with msg.typing():
        pass
    assert len(fake_ilink.requests_to("getconfig")) == 1


async def test_typing_cancel_is_sent_even_when_cancelled_or_failing(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    msg = await first_message(fake_ilink, ilink_client)
    with trio.move_on_after(1):
        async with msg.typing():
            await trio.sleep_forever()
    with pytest.raises(KeyError):  # not wrapped in an ExceptionGroup
        async with msg.typing():
            raise KeyError("boom")
    assert fake_ilink.typing_events()[-1] == (USER, 2)
    assert [s for _, s in fake_ilink.typing_events()].count(2) == 2


async def test_typing_never_fails_the_handler(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    msg = await first_message(fake_ilink, ilink_client)
    fake_ilink.inject_fault("getconfig", Fault.http_status(500), times=math.inf)
    ran = False
    async with msg.typing():
        ran = True
    assert ran
    assert fake_ilink.typing_events() == []


def test_config_cache_schedule() -> None:
    cache = ConfigCache()
    assert cache.needs_fetch(USER, 0.0)
    assert cache.record_failure(USER, 0.0) == 2.0
    assert cache.ticket(USER) == ""
    assert not cache.needs_fetch(USER, 1.0)
    assert cache.needs_fetch(USER, 2.0)
    cache.record_success(USER, "t1", 10.0)
    assert cache.ticket(USER) == "t1"
    # failures keep the old ticket, doubling the delay up to an hour
    delays = [cache.record_failure(USER, 100.0) for _ in range(14)]
    assert delays[:4] == [4.0, 8.0, 16.0, 32.0]
    assert delays[-1] == 3600.0
    assert cache.ticket(USER) == "t1"
    cache.record_success(USER, None, 200.0)
    assert cache.ticket(USER) == ""
    assert not cache.needs_fetch(USER, 200.0)
    assert cache.needs_fetch(USER, 200.0 + 24 * 3600)


async def test_pending_outbox_flushes_in_order_when_the_user_writes_again(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    store_clock: trio.abc.Clock | None,
    store: wx.Store,
) -> None:
    assert ilink_client._state.send_windows is not None
    ilink_client._state.send_windows.policy = SendWindowPolicy(duration=3600.0, quota=10)
    replies: list[str] = []

    async def handler(msg: wx.Message) -> None:
        replies.append(msg.text)
        await msg.reply(f"re: {msg.text}")

    async with wx.open_monitor(ilink_client, handler, store=store) as monitor:
        fake_ilink.inject_text(USER, "first")
        await until(lambda: len(fake_ilink.sent_to(USER)) == 1)
        await monitor.wait_idle()
    # Two hours later the window is closed: texts are queued, not sent.
    ilink_client._state.send_windows.record_inbound(USER, time.time() - 7200)
    ilink_client._state.send_windows.restore({USER: [time.time() - 7200, 0]})
    with pytest.raises(wx.SendWindowClosedError, match="no monitor"):
        await ilink_client.send_text(USER, "reminder 0", queue_if_closed=True)
    async with wx.open_monitor(ilink_client, handler, store=store) as monitor:
        ilink_client._state.send_windows.restore({USER: [time.time() - 7200, 0]})
        for i in (1, 2):
            result = await ilink_client.send_text(USER, f"reminder {i}", queue_if_closed=True)
            assert result.queued
            assert not result.confirmed
        with pytest.raises(wx.SendWindowClosedError):
            await ilink_client.send_text(USER, "not queued")
        assert fake_ilink.sent_texts(USER) == ["re: first"]
    # The queue survives a restart and is flushed before the next reply.
    async with wx.open_monitor(ilink_client, handler, store=store) as monitor:
        fake_ilink.inject_text(USER, "back")
        await until(lambda: len(fake_ilink.sent_to(USER)) == 4)
        await monitor.wait_idle()
    assert fake_ilink.sent_texts(USER) == ["re: first", "reminder 1", "reminder 2", "re: back"]
    assert (await store.load(ilink_client.account_id)).outbox == ()
