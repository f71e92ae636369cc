"""Small helpers for the test suite."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from collections.abc import Callable


async def until(predicate: Callable[[], bool], *, timeout: float = 600.0) -> None:
    """Wait (on the test's clock) until ``predicate()`` holds.

    Needed where work happens in threads (``FileStore`` I/O): under ``autojump_clock``
    a plain ``trio.sleep`` may finish before the thread does.
    """
    with trio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110 - the predicate has no event to wait on
            await trio.sleep(0.01)
