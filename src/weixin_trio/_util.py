"""Small helpers shared across modules."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import trio

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["NoPublicConstructor", "run_blocking"]

T = TypeVar("T")


class NoPublicConstructor(type):
    """Metaclass that hides the constructor (trio's ``NoPublicConstructor``).

    Instances are made with ``Cls._create(...)`` by the library's own factories.
    """

    def __call__(cls, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(f"{cls.__module__}.{cls.__qualname__} has no public constructor")

    def _create(cls: type[T], *args: Any, **kwargs: Any) -> T:
        return super().__call__(*args, **kwargs)  # type: ignore[misc, no-any-return]


def _clock_autojumps() -> bool:
    """Whether the run's clock is an autojumping ``trio.testing.MockClock``."""
    clock = trio.lowlevel.current_clock()
    jump = getattr(clock, "autojump_threshold", math.inf)
    return type(clock).__name__ == "MockClock" and jump != math.inf


async def run_blocking(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking work (file I/O, codecs) in a worker thread (``trio.to_thread``).

    Under an autojumping ``MockClock`` (tests with ``autojump_clock``) it runs inline
    instead: while a worker thread runs, every task looks blocked, so the clock would
    jump to the next deadline (a drain, a handler timeout) and cut the operation short.
    The code that runs is the same; only the thread is left out.

    Cancellation:
        As ``trio.to_thread.run_sync``: a checkpoint before the call; once started,
        the call completes.
    """
    if not _clock_autojumps():
        return await trio.to_thread.run_sync(fn, *args)
    await trio.lowlevel.checkpoint_if_cancelled()
    result = fn(*args)
    await trio.lowlevel.cancel_shielded_checkpoint()
    return result
