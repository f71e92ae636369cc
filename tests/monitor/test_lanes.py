"""The lane dispatcher on its own: per-key FIFO, the shared limiter, lane lifetimes.

Plain trio under ``autojump_clock``: ``run(lane, item)`` is a test coroutine, so no fake
server, client or monitor is involved. The monitor-level behaviour (lanes keyed by user,
``max_concurrency``, interrupts) is tested in ``test_dispatch.py``.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import TYPE_CHECKING

import pytest
import trio
import trio.testing

from weixin_trio._monitor.lanes import Dispatcher

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from weixin_trio._monitor.lanes import Lane


def dispatcher(
    run: Callable[[Lane[str], str], Awaitable[None]], slots: float = 10
) -> tuple[Dispatcher[str], trio.CapacityLimiter]:
    limiter = trio.CapacityLimiter(slots)
    return Dispatcher(run, limiter), limiter


async def wait_until_idle(d: Dispatcher[str]) -> None:
    """Until no lane has work (failing, not hanging, if one never goes away)."""
    with trio.fail_after(600):
        while d.lanes:  # noqa: ASYNC110 - the dispatcher has no idle event
            await trio.sleep(0.01)


async def test_each_lane_runs_its_items_in_order_one_at_a_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rng = random.Random(7)
    done: defaultdict[str, list[str]] = defaultdict(list)
    running: set[str] = set()
    overlaps: list[str] = []

    async def run(lane: Lane[str], item: str) -> None:
        if lane.key in running:
            overlaps.append(item)
        running.add(lane.key)
        assert lane.running == item
        await trio.sleep(rng.uniform(0, 0.1))  # later items often finish sooner
        done[lane.key].append(item)
        running.discard(lane.key)

    d, _ = dispatcher(run, slots=64)
    expected: defaultdict[str, list[str]] = defaultdict(list)
    async with trio.open_nursery() as nursery:
        await nursery.start(d.run, nursery)
        for n in range(30):
            for key in ("a", "b", "c", "d", "e"):
                d.submit(key, f"{key}{n}")
                expected[key].append(f"{key}{n}")
            if n % 7 == 0:
                await trio.sleep(0.05)  # some items arrive while their lane runs
        await wait_until_idle(d)
        nursery.cancel_scope.cancel()
    assert overlaps == []
    assert dict(done) == dict(expected)


async def test_lanes_run_concurrently_up_to_the_limiter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    active = 0
    peak = 0

    async def run(lane: Lane[str], item: str) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await trio.sleep(1)
        active -= 1

    d, limiter = dispatcher(run, slots=3)
    async with trio.open_nursery() as nursery:
        await nursery.start(d.run, nursery)
        start = trio.current_time()
        for i in range(10):
            d.submit(f"user{i}", "x")
        await trio.sleep(0.5)
        assert limiter.borrowed_tokens == 3
        assert active == 3
        await wait_until_idle(d)
        elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel()
    assert peak == 3
    assert elapsed == pytest.approx(4.0, abs=0.05)  # ceil(10 / 3) rounds of 1 s
    assert limiter.borrowed_tokens == 0

    # With enough slots, ten lanes take the time of one.
    peak = 0
    d, limiter = dispatcher(run, slots=10)
    async with trio.open_nursery() as nursery:
        await nursery.start(d.run, nursery)
        start = trio.current_time()
        for i in range(10):
            d.submit(f"user{i}", "x")
        await wait_until_idle(d)
        assert trio.current_time() - start == pytest.approx(1.0, abs=0.05)
        nursery.cancel_scope.cancel()
    assert peak == 10


async def test_the_dispatcher_holds_the_slot_before_spawning(
    autojump_clock: trio.testing.MockClock,
) -> None:
    borrowers: list[object] = []
    release = trio.Event()

    async def run(lane: Lane[str], item: str) -> None:
        borrowers.extend(limiter.statistics().borrowers)
        # The slot is held on behalf of a token, not by the handler's task.
        assert trio.lowlevel.current_task() not in limiter.statistics().borrowers
        await release.wait()

    d, limiter = dispatcher(run, slots=1)
    async with trio.open_nursery() as dispatch_nursery:
        async with trio.open_nursery() as work:
            await dispatch_nursery.start(d.run, work)
            for i in range(20):
                d.submit(f"user{i}", "x")
            await trio.sleep(1)
            # Backpressure: one task runs, the other 19 items wait in their lanes, not
            # as 19 spawned tasks blocked on the limiter.
            assert len(work.child_tasks) == 1
            assert limiter.borrowed_tokens == 1
            assert limiter.statistics().tasks_waiting == 0  # no task waits: the lanes queue
            assert d.lanes == 20
            queued = [d.lane(f"user{i}") for i in range(20)]
            assert sum(1 for lane in queued if lane is not None and lane.running) == 1
            release.set()
            await wait_until_idle(d)
            assert limiter.borrowed_tokens == 0
            dispatch_nursery.cancel_scope.cancel()
    assert len(borrowers) == 20
    assert len({id(b) for b in borrowers}) == 20  # a fresh token per item


async def test_the_slot_is_released_when_the_handler_raises(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def run(lane: Lane[str], item: str) -> None:
        await trio.sleep(1)
        raise ValueError(item)

    d, limiter = dispatcher(run, slots=2)
    held: list[int] = []

    async def submit_and_wait() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(d.run, nursery)
            d.submit("a", "boom")
            await trio.sleep(0.5)
            held.append(limiter.borrowed_tokens)

    with pytest.raises(ExceptionGroup) as info:
        await submit_and_wait()
    assert info.group_contains(ValueError, match="boom")
    assert held == [1]
    assert limiter.borrowed_tokens == 0
    assert d.lane("a") is None
    assert d.lanes == 0


async def test_cancelling_running_items_releases_their_slots_and_keeps_the_queue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    started: list[str] = []

    async def run(lane: Lane[str], item: str) -> None:
        started.append(item)
        await trio.sleep_forever()

    d, limiter = dispatcher(run, slots=2)
    async with trio.open_nursery() as nursery:
        await nursery.start(d.run, nursery)
        d.submit("a", "a1")
        d.submit("a", "a2")
        d.submit("b", "b1")
        d.submit("c", "c1")
        await trio.sleep(1)
        assert limiter.borrowed_tokens == 2
        nursery.cancel_scope.cancel()
    assert sorted(started) == ["a1", "b1"]
    assert limiter.borrowed_tokens == 0
    # Cancellation stops starting items; what was queued stays queued.
    a, b, c = d.lane("a"), d.lane("b"), d.lane("c")
    assert a is not None
    assert list(a.queue) == ["a2"]
    assert a.running is None
    assert b is None  # its only item ran (and was cancelled): the lane is gone
    assert c is not None
    assert list(c.queue) == ["c1"]
    assert d.lanes == 2


async def test_cancelled_dispatcher_starts_nothing_more(
    autojump_clock: trio.testing.MockClock,
) -> None:
    finished: list[str] = []

    async def run(lane: Lane[str], item: str) -> None:
        await trio.sleep(2)
        finished.append(item)

    d, limiter = dispatcher(run, slots=1)
    async with trio.open_nursery() as work:
        async with trio.open_nursery() as dispatch_nursery:
            await dispatch_nursery.start(d.run, work)
            d.submit("a", "a1")
            d.submit("a", "a2")
            d.submit("b", "b1")
            await trio.sleep(1)
            dispatch_nursery.cancel_scope.cancel()  # a shutdown: stop taking new work
        assert limiter.borrowed_tokens == 1  # a1 still runs, in its own nursery
    assert finished == ["a1"]  # the running item finished; nothing else started
    assert limiter.borrowed_tokens == 0
    a, b = d.lane("a"), d.lane("b")
    assert a is not None
    assert list(a.queue) == ["a2"]
    assert b is not None
    assert list(b.queue) == ["b1"]


async def test_a_lane_lives_while_it_has_work(autojump_clock: trio.testing.MockClock) -> None:
    gates = {"a1": trio.Event(), "a2": trio.Event(), "b1": trio.Event()}
    seen: list[Lane[str]] = []

    async def run(lane: Lane[str], item: str) -> None:
        seen.append(lane)
        await gates[item].wait()

    d, _ = dispatcher(run)
    assert d.lanes == 0
    assert d.lane("a") is None
    d.submit("a", "a1")
    d.submit("b", "b1")
    assert d.lanes == 2  # counted from the first submit, before anything runs
    async with trio.open_nursery() as nursery:
        await nursery.start(d.run, nursery)
        await trio.sleep(0.1)
        lane_a = d.lane("a")
        assert lane_a is not None
        assert lane_a.running == "a1"
        assert list(lane_a.queue) == []
        # Submit while the lane runs: queued behind a1 in the same lane.
        d.submit("a", "a2")
        assert d.lane("a") is lane_a
        assert list(lane_a.queue) == ["a2"]
        assert d.lanes == 2
        gates["b1"].set()
        await trio.sleep(0.1)
        assert d.lane("b") is None  # empty: gone
        assert d.lanes == 1
        gates["a1"].set()
        await trio.sleep(0.1)
        assert lane_a.running == "a2"
        assert d.lanes == 1
        gates["a2"].set()
        await trio.sleep(0.1)
        assert d.lane("a") is None
        assert d.lanes == 0
        # A key that comes back gets a fresh lane, and it runs.
        gates["a1"] = trio.Event()
        d.submit("a", "a1")
        lane_again = d.lane("a")
        assert lane_again is not None
        assert lane_again is not lane_a
        await trio.sleep(0.1)
        assert lane_again.running == "a1"
        gates["a1"].set()
        await trio.sleep(0.1)
        assert d.lanes == 0
        nursery.cancel_scope.cancel()
    keys = [lane.key for lane in seen]
    # a1 and b1 start together (in either order: different lanes), then a2, then a1
    assert sorted(keys[:2]) == ["a", "b"]
    assert keys[2:] == ["a", "a"]


async def test_a_lane_drained_while_waiting_for_a_slot_runs_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # What ``Monitor.interrupt(drop_queued=True)`` does to a lane that waits for a slot.
    started: list[str] = []
    release = trio.Event()

    async def run(lane: Lane[str], item: str) -> None:
        started.append(item)
        await release.wait()

    d, limiter = dispatcher(run, slots=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(d.run, nursery)
        d.submit("a", "a1")
        d.submit("b", "b1")
        await trio.sleep(0.1)
        lane_b = d.lane("b")
        assert lane_b is not None
        assert lane_b.scheduled
        lane_b.queue.clear()
        release.set()
        await trio.sleep(0.1)
        assert started == ["a1"]
        assert limiter.borrowed_tokens == 0
        d.submit("b", "b2")  # the key still works afterwards
        await trio.sleep(0.1)
        assert started == ["a1", "b2"]
        nursery.cancel_scope.cancel()


async def test_a_lane_drained_while_waiting_for_a_slot_disappears(
    autojump_clock: trio.testing.MockClock,
) -> None:
    release = trio.Event()

    async def run(lane: Lane[str], item: str) -> None:
        await release.wait()

    d, _ = dispatcher(run, slots=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(d.run, nursery)
        d.submit("a", "a1")
        d.submit("b", "b1")
        await trio.sleep(0.1)
        lane_b = d.lane("b")
        assert lane_b is not None
        lane_b.queue.clear()
        release.set()
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert d.lane("b") is None
    assert d.lanes == 0
