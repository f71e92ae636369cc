"""``run_blocking``: worker threads in production, inline under an autojumping clock."""

from __future__ import annotations

import threading
import time

import trio
import trio.testing

from weixin_trio._util import run_blocking


def _sleep_and_name(seconds: float) -> str:
    time.sleep(seconds)
    return threading.current_thread().name


async def test_a_blocking_call_runs_in_a_worker_thread_on_the_real_clock() -> None:
    name = await run_blocking(_sleep_and_name, 0.0)
    assert name != threading.current_thread().name


async def test_under_autojump_the_clock_cannot_jump_past_a_blocking_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # In a worker thread, every task looks blocked, so the clock would jump to the
    # deadline below and cancel the caller although no virtual time passed.
    with trio.move_on_after(5) as scope:
        name = await run_blocking(_sleep_and_name, 0.05)
        await trio.lowlevel.checkpoint()
    assert not scope.cancelled_caught
    assert trio.current_time() == 0
    assert name == threading.current_thread().name


async def test_a_cancelled_caller_does_not_start_the_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls: list[float] = []
    with trio.CancelScope() as scope:
        scope.cancel()
        await run_blocking(calls.append, 1.0)
    assert calls == []
