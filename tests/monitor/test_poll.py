"""The poll loop: backoff on the virtual clock, deadlines, stale tokens, cursor, filter."""

from __future__ import annotations

import itertools
import math

import pytest
import trio

import weixin_trio as wx
from weixin_trio.testing import FakeILinkServer, Fault

USER = "alice@im.wechat"


async def echo(msg: wx.Message) -> None:
    await msg.reply(f"echo {msg.text}")


def poll_times(fake: FakeILinkServer) -> list[float]:
    return [r.at for r in fake.requests_to("getupdates")]


async def test_backoff_schedule_on_the_virtual_clock(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.inject_fault("getupdates", Fault.http_status(500), times=5)
    async with wx.open_monitor(ilink_client, echo) as monitor:
        fake_ilink.inject_text(USER, "hi")
        with trio.fail_after(100):
            await fake_ilink.wait_for_sent(1)
        stats = monitor.statistics()
    times = poll_times(fake_ilink)
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert gaps[:5] == [2.0, 2.0, 30.0, 2.0, 2.0]
    assert stats.poll_failures == 5
    assert stats.consecutive_failures == 0  # reset by the success
    assert fake_ilink.sent_texts(USER) == ["echo hi"]


@pytest.mark.parametrize(
    "fault",
    [
        Fault.http_status(502),
        Fault.http_status(503),
        Fault.reset(),
        Fault.malformed_json(),
        Fault.api_error(ret=-1, errmsg="busy"),
    ],
    ids=["502", "503", "reset", "malformed", "ret-1"],
)
async def test_poll_failures_back_off_and_recover(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    fault: Fault,
) -> None:
    fake_ilink.inject_fault("getupdates", fault, times=2)
    async with wx.open_monitor(ilink_client, echo) as monitor:
        fake_ilink.inject_text(USER, "hi")
        with trio.fail_after(100):
            await fake_ilink.wait_for_sent(1)
        assert monitor.statistics().poll_failures == 2


async def test_client_deadline_is_server_hint_plus_margin(autojump_clock: trio.abc.Clock) -> None:
    fake = FakeILinkServer(hold=10.0)
    async with (
        wx.open_client(
            token=fake.token, base_url=fake.base_url, transport=fake.transport()
        ) as client,
        wx.open_monitor(client, echo),
    ):
        await trio.sleep(5)  # first poll is parked; it is answered empty at 10 s
        fake.inject_fault("getupdates", Fault.hang())
        await trio.sleep(60)
    times = poll_times(fake)
    # poll 1 at 0 (hint 35 s unknown yet -> answered at 10), poll 2 hangs; gives up
    # after the adopted hint (10 s) + 5 s margin, then polls again at once.
    assert times[1] == pytest.approx(10.0)
    assert times[2] == pytest.approx(25.0)
    assert times[3] == pytest.approx(35.0)


async def test_hang_without_hint_uses_default_deadline(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.inject_fault("getupdates", Fault.hang())
    async with wx.open_monitor(ilink_client, echo) as monitor:
        await trio.sleep(41)
        assert monitor.statistics().poll_failures == 0  # expiry is an empty batch
    assert poll_times(fake_ilink)[:2] == [0.0, pytest.approx(40.0)]


@pytest.mark.allow_protocol_issues  # a proactive send with a hand-picked token
@pytest.mark.parametrize("field", ["ret", "errcode"])
async def test_stale_token_retries_once_then_pauses(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    field: str,
) -> None:
    infos: list[wx.StaleTokenInfo] = []

    async def on_stale(info: wx.StaleTokenInfo) -> None:
        infos.append(info)

    fake_ilink.inject_fault(
        "getupdates",
        Fault.stale_token(field="ret" if field == "ret" else "errcode"),
        times=math.inf,
    )
    async with wx.open_monitor(ilink_client, echo, on_token_stale=on_stale) as monitor:
        await trio.sleep(1)
        stats = monitor.statistics()
        assert stats.stale_tokens == 2
        assert stats.paused_until == pytest.approx(3600.0)
        assert [i.paused_until for i in infos] == [None, pytest.approx(3600.0)]
        assert fake_ilink.notify_events() == ["start", "start"]  # start + the one retry
        # outbound is not blocked while polling pauses
        fake_ilink.default.context_tokens[USER] = "ctx-manual"
        await ilink_client.send_text(USER, "still here", context_token="ctx-manual")
        await trio.sleep(3000)
        assert len(poll_times(fake_ilink)) == 2  # nothing polled during the pause
        fake_ilink.clear_faults()
        fake_ilink.inject_text(USER, "back")
        with trio.fail_after(700):
            await fake_ilink.wait_for_sent(2)
        assert trio.current_time() >= 3600
        assert monitor.statistics().paused_until is None
    assert fake_ilink.sent_texts(USER) == ["still here", "echo back"]


async def test_resume_ends_a_pause_early(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.inject_fault("getupdates", Fault.stale_token(), times=2)
    async with wx.open_monitor(ilink_client, echo, stale_token_pause=600) as monitor:
        await trio.sleep(5)
        assert monitor.statistics().paused_until == pytest.approx(600.0)
        monitor.resume()
        fake_ilink.inject_text(USER, "hi")
        with trio.fail_after(10):
            await fake_ilink.wait_for_sent(1)


async def test_cursor_and_context_tokens_are_journaled(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    store = wx.MemoryStore()
    async with wx.open_monitor(ilink_client, echo, store=store) as monitor:
        fake_ilink.inject_text(USER, "one")
        await fake_ilink.wait_for_sent(1)
        await monitor.wait_idle()
    state = await store.load(ilink_client.account_id)
    last = fake_ilink.requests_to("getupdates")[-1]
    assert state.cursor
    assert state.context_tokens[USER] == fake_ilink.default.context_tokens[USER]
    assert ilink_client._state.context_tokens.get(USER) == fake_ilink.default.context_tokens[USER]
    assert state.pending == ()
    # The journaled cursor is the one the last poll presented.
    assert last.body["get_updates_buf"] == state.cursor


async def test_default_filter_skips_bot_recalled_and_generating(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    seen: list[str] = []

    async def record(msg: wx.Message) -> None:
        seen.append(msg.text)

    text = [{"type": 1, "text_item": {"text": "x"}}]
    async with wx.open_monitor(ilink_client, record) as monitor:
        fake_ilink.inject_message(USER, text, message_type=2)
        fake_ilink.inject_message(USER, text, delete_time_ms=5)
        fake_ilink.inject_message(USER, text, message_state=1)
        fake_ilink.inject_message(
            USER, [{"type": 1, "text_item": {"text": "kept"}}], message_state=7
        )
        await trio.sleep(1)
        await monitor.wait_idle()
        assert monitor.statistics().filtered == 3
    assert seen == ["kept"]


async def test_malformed_message_is_reported_and_the_batch_goes_on(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    errors: list[tuple[wx.Message | None, Exception]] = []

    async def on_error(msg: wx.Message | None, exc: Exception) -> None:
        errors.append((msg, exc))

    async with wx.open_monitor(ilink_client, echo, on_error=on_error) as monitor:
        fake_ilink.inject_raw({"message_id": "not-a-number", "message_type": 1})
        fake_ilink.inject_text(USER, "fine")
        await fake_ilink.wait_for_sent(1)
        assert monitor.statistics().malformed == 1
    [(msg, exc)] = errors
    assert msg is None
    assert isinstance(exc, wx.MalformedMessageError)
    assert exc.raw == {"message_id": "not-a-number", "message_type": 1}


async def test_duplicate_delivery_is_handled_once(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    calls: list[int] = []

    async def record(msg: wx.Message) -> None:
        calls.append(msg.message_id)

    async with wx.open_monitor(ilink_client, record) as monitor:
        mid = fake_ilink.inject_text(USER, "once")
        await trio.sleep(1)
        fake_ilink.redeliver([mid])
        fake_ilink.inject_text(USER, "twice?")
        await trio.sleep(1)
        await monitor.wait_idle()
        assert monitor.statistics().duplicates == 1
    assert calls.count(mid) == 1
    assert len(calls) == 2


async def test_message_without_id_gets_a_stable_synthetic_id(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    ids: list[int] = []

    async def record(msg: wx.Message) -> None:
        ids.append(msg.message_id)

    raw = {
        "message_type": 1,
        "from_user_id": USER,
        "item_list": [{"type": 1, "text_item": {"text": "x"}}],
    }
    async with wx.open_monitor(ilink_client, record) as monitor:
        fake_ilink.inject_raw(raw)
        fake_ilink.inject_raw(raw)
        await trio.sleep(1)
        await monitor.wait_idle()
    assert len(ids) == 1
    assert ids[0] < 0


async def test_notify_start_and_stop(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    async with wx.open_monitor(ilink_client, echo):
        assert fake_ilink.notify_events() == ["start"]
        assert fake_ilink.default.online
    assert fake_ilink.notify_events() == ["start", "stop"]
    assert not fake_ilink.default.online


async def test_store_write_failure_stops_without_advancing_the_cursor(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    store = wx.MemoryStore()
    calls: list[str] = []

    async def record(msg: wx.Message) -> None:
        calls.append(msg.text)

    async def run() -> None:
        async with wx.open_monitor(ilink_client, record, store=store):
            store.fail_writes = True
            fake_ilink.inject_text(USER, "lost?")
            await trio.sleep_forever()

    with pytest.raises(wx.MonitorCrashed):  # alone, it is not wrapped in a group
        await run()
    store.fail_writes = False
    state = await store.load(ilink_client.account_id)
    assert state.cursor == ""
    assert calls == []
