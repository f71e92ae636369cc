"""The per-account Sender: sender tasks on demand, FIFO hand-off, cancellation."""

from __future__ import annotations

import trio
import trio.testing

from weixin_trio import _wire as w
from weixin_trio._client.sender import SENDER_IDLE, Sender
from weixin_trio._errors import _ClientClosing
from weixin_trio._proto.client_ids import SendResult


def message(text: str) -> w.WeixinMessage:
    return w.WeixinMessage(client_id=text)


async def test_sender_tasks_start_on_demand_and_exit_when_idle(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = trio.Event()
    sent: list[str] = []

    async def send(msg: w.WeixinMessage) -> SendResult:
        await gate.wait()
        sent.append(msg.client_id or "")
        return SendResult(msg.client_id or "", message_id=1)

    sender = Sender(send, senders=2, retry=None)
    async with trio.open_nursery() as nursery:
        await nursery.start(sender.run)
        assert sender.workers == 0  # nothing to send: no sender task
        for i in range(5):
            nursery.start_soon(sender.submit, message(f"m{i}"))
        await trio.sleep(1)
        assert sender.workers == 2  # at most `senders`
        gate.set()
        await trio.sleep(1)
        assert sorted(sent) == [f"m{i}" for i in range(5)]
        assert sender.workers == 2
        await trio.sleep(SENDER_IDLE + 1)
        assert sender.workers == 0
        assert (await sender.submit(message("later"))).client_id == "later"  # starts one
        nursery.cancel_scope.cancel()


async def test_a_send_cancelled_before_a_sender_took_it_sends_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    release = trio.Event()
    sent: list[str] = []

    async def send(msg: w.WeixinMessage) -> SendResult:
        sent.append(msg.client_id or "")
        await release.wait()
        return SendResult(msg.client_id or "", message_id=1)

    sender = Sender(send, senders=1, retry=None)
    results: list[str] = []

    async def submit(text: str) -> None:
        results.append((await sender.submit(message(text))).client_id)

    async with trio.open_nursery() as nursery:
        await nursery.start(sender.run)
        nursery.start_soon(submit, "first")  # taken by the one sender; it blocks
        await trio.sleep(1)
        with trio.move_on_after(1):  # queued behind it, then cancelled
            await sender.submit(message("cancelled"))
        nursery.start_soon(submit, "third")
        await trio.sleep(1)
        release.set()
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert sent == ["first", "third"]
    assert results == ["first", "third"]


async def test_sends_still_queued_when_the_sender_stops_fail_as_closing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def send(msg: w.WeixinMessage) -> SendResult:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    sender = Sender(send, senders=1, retry=None)
    errors: list[Exception] = []

    async def submit(text: str) -> None:
        try:
            await sender.submit(message(text))
        except _ClientClosing as exc:
            errors.append(exc)

    async with trio.open_nursery() as outer:
        outer.start_soon(submit, "in flight")
        outer.start_soon(submit, "queued")
        async with trio.open_nursery() as nursery:
            await nursery.start(sender.run)
            await trio.sleep(1)
            nursery.cancel_scope.cancel()
    assert len(errors) == 2  # the one in flight is aborted, the queued one never sent
    assert all("closing" in str(e) for e in errors)
