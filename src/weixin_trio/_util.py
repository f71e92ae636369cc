"""Small helpers shared across modules."""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import trio

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["NoPublicConstructor", "run_blocking", "unwrap_single_error"]

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


@contextmanager
def unwrap_single_error() -> Iterator[None]:
    """Raise the one exception of an exception group as itself.

    Nurseries wrap every error in an ``ExceptionGroup`` (trio's strict exception
    groups), also the error of the ``async with`` body they surround, and nested
    nurseries wrap it once per level. Around the nursery of an ``open_*`` context
    manager this undoes that when it is safe: nested groups of one member collapse, and
    when a single exception is left it is raised as itself (its traceback and
    ``__context__`` kept). Several exceptions stay together, as one group of them.

    The policy every ``open_*`` of weixin_trio follows: a user's ``KeyError`` from the
    body arrives as ``KeyError``, an internal failure alone (e.g.
    [`MonitorCrashed`][weixin_trio.MonitorCrashed]) arrives as itself, and real
    multi-errors arrive as one ``ExceptionGroup``.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        inner: BaseException = group
        while isinstance(inner, BaseExceptionGroup) and len(inner.exceptions) == 1:
            inner = inner.exceptions[0]
        if inner is group:
            raise
        context = inner.__context__
        try:
            raise inner
        finally:
            inner.__context__ = context
            del inner, context
