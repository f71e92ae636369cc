"""Shared test configuration: the project's own pytest plugin, hypothesis profiles."""

from __future__ import annotations

import importlib.util
import os
import uuid
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings
from trio.testing import MockClock

from tests._redis_server import RedisServer, redis_server_path
from weixin_trio import FileStore, MemoryStore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from weixin_trio import Store
    from weixin_trio.redis import RedisStore

pytest_plugins = ["weixin_trio.testing.pytest_plugin"]

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100
)
# CI runs the same examples every time (a rare counterexample should be found by a
# developer's run, not block a landing at random); locally every run explores anew.
settings.register_profile(
    "ci",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    max_examples=100,
    derandomize=True,
)
settings.load_profile("ci" if os.environ.get("CI") else "default")


# --- stores: every store-parametrised test also runs against a real Redis ---------------


def _redis_missing() -> str | None:
    if importlib.util.find_spec("coredis") is None:
        return "coredis is not installed (pip install weixin-trio[redis])"
    if redis_server_path() is None:
        return "redis-server is not on PATH (e.g. apt-get install redis-server)"
    return None


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One ``redis-server`` for the session; in CI a missing server fails, never skips."""
    missing = _redis_missing()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the Redis tests must run in CI: {missing}")
        pytest.skip(f"Redis tests skipped: {missing}")
    with RedisServer() as server:
        yield server


@pytest.fixture
async def redis_store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    """A RedisStore with a fresh key prefix (tests never see each other's keys)."""
    from weixin_trio.redis import open_redis_store

    async with open_redis_store(redis_server.url, prefix=f"t{uuid.uuid4().hex[:12]}") as store:
        yield store


@pytest.fixture(params=["memory", "file", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def store_clock(store_kind: str) -> MockClock | None:
    """``autojump`` for in-process stores; the real clock for Redis (a real socket)."""
    return None if store_kind == "redis" else MockClock(autojump_threshold=0)


@pytest.fixture
def store_redis_url(store_kind: str, request: pytest.FixtureRequest) -> str | None:
    """The Redis URL when ``store_kind`` is ``"redis"`` (starting the server then only)."""
    if store_kind != "redis":
        return None
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture
async def store(
    store_kind: str, store_redis_url: str | None, tmp_path: Path
) -> AsyncIterator[Store]:
    """Each kind of store; use with ``store_clock`` instead of ``autojump_clock``."""
    if store_redis_url is not None:
        from weixin_trio.redis import open_redis_store

        prefix = f"t{uuid.uuid4().hex[:12]}"
        async with open_redis_store(store_redis_url, prefix=prefix) as redis:
            yield redis
    elif store_kind == "memory":
        yield MemoryStore()
    else:
        async with FileStore(tmp_path / "state") as file_store:
            yield file_store
