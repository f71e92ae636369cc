"""Fault injection on ``getupdates`` and ``sendmessage``: nothing lost, nothing doubled.

Every scenario runs an echo monitor against the in-process fake under ``autojump_clock``
while faults hit the long poll, then clears the faults and checks that each injected
message was handled exactly once, each reply shown once, and that the statistics
account for every injected fault.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest
import trio

import weixin_trio as wx
from weixin_trio.testing import FakeILinkServer, Fault

from .._helpers import until

USERS = [f"user{i}@im.wechat" for i in range(10)]
MESSAGES = 50
ALL_FAULTS = [
    Fault.http_status(500),
    Fault.http_status(502),
    Fault.http_status(503),
    Fault.reset(),
    Fault.hang(),
    Fault.malformed_json(),
    Fault.stale_token(field="ret"),
    Fault.stale_token(field="errcode"),
]


def is_stale(fault: Fault) -> bool:
    if fault.kind != "body":
        return False
    body = json.loads(fault.body)
    return -14 in (body.get("ret"), body.get("errcode"))


def counts_as_failure(fault: Fault) -> bool:
    """Whether the monitor must count this fault in ``poll_failures``."""
    return fault.kind != "hang" and not is_stale(fault)


async def run_under_faults(
    fake: FakeILinkServer,
    client: wx.ILinkClient,
    faults: list[Fault],
    rate: float,
) -> None:
    handled_ids: list[int] = []

    async def echo(msg: wx.Message) -> None:
        handled_ids.append(msg.message_id)
        await msg.reply(f"echo {msg.message_id}")

    fake.set_fault_rate(rate, faults, endpoints=("getupdates",))
    injected: list[int] = []
    async with wx.open_monitor(client, echo, stale_token_pause=10) as monitor:
        for i in range(MESSAGES):
            injected.append(fake.inject_text(USERS[i % len(USERS)], f"m{i}"))
            await trio.sleep(3)
        fake.clear_faults()
        await until(lambda: set(handled_ids) >= set(injected))
        await monitor.wait_idle()
        await trio.sleep(60)  # any poll still parked on a hang expires now
        # The monitor is still running: a message after the storm is handled too.
        last = fake.inject_text(USERS[0], "after")
        await until(lambda: last in handled_ids)
        await monitor.wait_idle()
        stats = monitor.statistics()
    injected.append(last)

    taken = [f for endpoint, f in fake.faults.injected if endpoint == "getupdates"]
    assert taken, "the scenario injected no fault at all"
    counts = Counter(handled_ids)
    assert set(counts) == set(injected)
    assert set(counts.values()) == {1}
    texts = [s.text for s in fake.sent()]
    assert len(texts) == len(set(texts))
    assert sorted(texts) == sorted(f"echo {mid}" for mid in injected)
    assert stats.handled == len(injected)
    assert stats.failed == 0
    assert stats.duplicates == 0
    assert stats.poll_failures == sum(counts_as_failure(f) for f in taken)
    assert stats.stale_tokens == sum(is_stale(f) for f in taken)
    assert stats.consecutive_failures == 0


@pytest.mark.parametrize(
    "fault",
    ALL_FAULTS,
    ids=["500", "502", "503", "reset", "hang", "malformed", "stale-ret", "stale-errcode"],
)
async def test_single_fault_kind_loses_and_doubles_nothing(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    fault: Fault,
) -> None:
    await run_under_faults(fake_ilink, ilink_client, [fault], rate=0.5)


async def test_mix_of_all_faults_at_thirty_percent(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
) -> None:
    await run_under_faults(fake_ilink, ilink_client, ALL_FAULTS, rate=0.3)
    kinds = {f for e, f in fake_ilink.faults.injected if e == "getupdates"}
    assert len(kinds) >= 4  # the seeded mix really mixes


async def test_sticky_fault_then_recovery(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
) -> None:
    # Every poll fails while the messages arrive (rate 1.0): they wait on the server.
    await run_under_faults(fake_ilink, ilink_client, [Fault.http_status(500)], rate=1.0)


async def test_backoff_schedule_for_five_503s(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    async def echo(msg: wx.Message) -> None:
        await msg.reply(f"echo {msg.message_id}")

    fake_ilink.inject_fault("getupdates", Fault.http_status(503), times=5)
    async with wx.open_monitor(ilink_client, echo) as monitor:
        mid = fake_ilink.inject_text(USERS[0], "hi")
        with trio.fail_after(100):
            await fake_ilink.wait_for_sent(1)
        stats = monitor.statistics()
    times = [r.at for r in fake_ilink.requests_to("getupdates")]
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert gaps[:5] == [2.0, 2.0, 30.0, 2.0, 2.0]
    assert stats.poll_failures == 5
    assert stats.consecutive_failures == 0
    assert fake_ilink.sent_texts(USERS[0]) == [f"echo {mid}"]


async def test_duplicate_ids_within_and_across_batches(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    handled: list[int] = []

    async def echo(msg: wx.Message) -> None:
        handled.append(msg.message_id)
        await msg.reply(f"echo {msg.message_id}")

    first = fake_ilink.inject_text(USERS[0], "a")
    fake_ilink.inject_raw(dict(fake_ilink.default.queue[-1]))  # same id, same batch
    second = fake_ilink.inject_text(USERS[1], "b")
    async with wx.open_monitor(ilink_client, echo) as monitor:
        await until(lambda: len(handled) >= 2)
        await monitor.wait_idle()
        fake_ilink.redeliver([first, second])  # the server delivers them again
        await trio.sleep(1)
        await monitor.wait_idle()
        stats = monitor.statistics()
    assert Counter(handled) == {first: 1, second: 1}
    delivered = fake_ilink.delivered_message_ids()
    # ``redeliver`` repeats every delivered copy: ``first`` twice, ``second`` once.
    assert delivered.count(first) == 4
    assert delivered.count(second) == 2
    assert stats.duplicates == len(delivered) - 2
    assert stats.handled == 2
    texts = [s.text for s in fake_ilink.sent()]
    assert sorted(texts) == sorted([f"echo {first}", f"echo {second}"])
    assert len(fake_ilink.sends) == 2  # not even a hidden re-send


async def test_empty_batch_with_new_cursor_moves_the_cursor(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    handled: list[int] = []

    async def echo(msg: wx.Message) -> None:
        handled.append(msg.message_id)

    acct = fake_ilink.default
    acct.issued_cursors["odd-cursor"] = acct.cursor_seq
    body = {"ret": 0, "msgs": [], "get_updates_buf": "odd-cursor"}
    fake_ilink.inject_fault("getupdates", Fault("body", body=json.dumps(body).encode()))
    store = wx.MemoryStore()
    async with wx.open_monitor(ilink_client, echo, store=store) as monitor:
        await trio.sleep(1)
        stats = monitor.statistics()
        assert stats.batches == 0
        assert stats.cursor_updated_at is not None
        mid = fake_ilink.inject_text(USERS[0], "x")
        await until(lambda: bool(handled))
        await monitor.wait_idle()
    polls = fake_ilink.requests_to("getupdates")
    assert polls[1].body["get_updates_buf"] == "odd-cursor"
    assert handled == [mid]
    assert monitor.statistics().poll_failures == 0


async def test_unknown_item_types_are_handled_once(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    handled: list[int] = []

    async def echo(msg: wx.Message) -> None:
        handled.append(msg.message_id)
        await msg.reply(f"echo {msg.message_id}")

    only_unknown = fake_ilink.inject_message(USERS[0], [{"type": 99, "future_item": {"x": 1}}])
    mixed = fake_ilink.inject_message(
        USERS[1],
        [{"type": 1, "text_item": {"text": "hi"}}, {"type": 42, "hologram_item": {}}],
    )
    async with wx.open_monitor(ilink_client, echo) as monitor:
        await until(lambda: len(handled) >= 2)
        await monitor.wait_idle()
        stats = monitor.statistics()
    assert Counter(handled) == {only_unknown: 1, mixed: 1}
    assert stats.malformed == 0
    assert sorted(s.text for s in fake_ilink.sent()) == sorted(
        [f"echo {only_unknown}", f"echo {mixed}"]
    )


async def test_rate_limited_reply_is_retried_by_the_send_and_shown_once(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    # A -2 is retried by the send itself (same client_id), not by running the handler
    # again: the handler runs once and no error reaches it (issue 13, item 4).
    handled: list[int] = []
    errors: list[Exception] = []

    async def echo(msg: wx.Message) -> None:
        handled.append(msg.message_id)
        await msg.reply(f"echo {msg.message_id}")

    async def on_error(msg: wx.Message | None, exc: Exception) -> None:
        errors.append(exc)

    fake_ilink.inject_fault("sendmessage", Fault.rate_limited())
    async with wx.open_monitor(ilink_client, echo, max_attempts=2, on_error=on_error) as monitor:
        mid = fake_ilink.inject_text(USERS[0], "hi")
        await until(lambda: len(fake_ilink.sent()) >= 1)
        await monitor.wait_idle()
        stats = monitor.statistics()
    assert handled == [mid]
    assert errors == []
    assert (stats.failed, stats.handled, stats.dead_lettered) == (0, 1, 0)
    assert fake_ilink.sent_texts(USERS[0]) == [f"echo {mid}"]
    ids = [r.body["msg"]["client_id"] for r in fake_ilink.requests_to("sendmessage")]
    assert len(ids) == 2
    assert len(set(ids)) == 1
