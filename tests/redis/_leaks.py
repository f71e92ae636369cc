"""The warning filter of tests that cut Redis off (see ``tests/redis/conftest.py``)."""

from __future__ import annotations

import pytest

IGNORE_COREDIS_LEAK = pytest.mark.filterwarnings(
    r"ignore:Unclosed <MemoryObject(Send|Receive)Stream:ResourceWarning"
)
