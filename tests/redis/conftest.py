"""Redis test configuration.

coredis (6.x) never closes the anyio memory streams of a connection whose connect
failed (``BaseConnection.run``: the streams are only closed by an ``async with`` that
a refused connect never reaches). Every failed reconnect during an outage therefore
leaves streams whose ``__del__`` warns ``ResourceWarning: Unclosed <MemoryObject...>``;
under ``-W error`` that becomes an unraisable-exception failure of whichever test the
garbage collector happens to run in. Modules that cut Redis off mark themselves with
``tests.redis._leaks.IGNORE_COREDIS_LEAK``, and :func:`_collect_coredis_garbage` collects
that garbage at teardown, while the mark's filter still applies.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def _collect_coredis_garbage() -> Iterator[None]:
    yield
    gc.collect()
