"""Small helpers for the test suite."""

from __future__ import annotations

from collections.abc import Callable

import trio


async def until(predicate: Callable[[], bool], *, timeout: float = 600.0) -> None:
    """Wait (on the test's clock) until ``predicate()`` holds.

    Needed where work happens in threads (``FileStore`` I/O): under ``autojump_clock``
    a plain ``trio.sleep`` may finish before the thread does.
    """
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)
