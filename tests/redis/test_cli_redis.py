"""``weixin-trio --redis URL``: accounts, status and run's checks on a real Redis.

``main()`` calls ``trio.run`` itself, so these tests are synchronous; Redis data is
prepared and checked with ``trio.run`` around :func:`open_redis_store`.
"""

from __future__ import annotations

import socket
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import trio

from weixin_trio._cli import main
from weixin_trio._cli.stores import _write_status
from weixin_trio.redis import RedisStore, open_redis_store
from weixin_trio.redis._scripts import lease_key
from weixin_trio.store import DeadLetter, JournalEntry

from ._leaks import IGNORE_COREDIS_LEAK

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from tests._redis_server import RedisServer


@pytest.fixture
def prefix() -> str:
    return f"cli{uuid.uuid4().hex[:10]}"


def with_store(url: str, prefix: str, work: Callable[[RedisStore], Awaitable[Any]]) -> Any:
    """Run ``work(store)`` in a fresh trio run (the tests themselves are synchronous)."""

    async def go() -> Any:
        async with open_redis_store(url, prefix=prefix) as store:
            return await work(store)

    return trio.run(go)


def account_data(account_id: str, owner: str | None = None) -> dict[str, Any]:
    return {
        "token": f"token-of-{account_id}",
        "base_url": "https://fake-ilink.invalid",
        "user_id": owner,
        "created_at": 1_700_000_000.0,
    }


def save_accounts(url: str, prefix: str, *ids: str) -> None:
    async def work(store: RedisStore) -> None:
        for account_id in ids:
            await store.save_account(account_id, account_data(account_id, f"owner-{account_id}"))

    with_store(url, prefix, work)


def rows(out: str) -> dict[str, list[str]]:
    """Tab-separated table lines (stdout is not a terminal), by their first column."""
    return {line.split("\t")[0]: line.split("\t") for line in out.splitlines() if "\t" in line}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: connecting is refused


def test_accounts_list_and_remove_in_redis(
    redis_server: RedisServer,
    prefix: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WEIXIN_TRIO_REDIS_URL", raising=False)
    url = redis_server.url
    redis = ["--redis", url, "--redis-prefix", prefix]
    assert main([*redis, "accounts"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"no accounts in {url} (prefix {prefix}); run `weixin-trio login`"
    )

    save_accounts(url, prefix, "b@im.bot", "a@im.bot")
    assert main([*redis, "accounts"]) == 0
    table = rows(capsys.readouterr().out)
    assert list(table) == ["account", "a@im.bot", "b@im.bot"]
    assert table["a@im.bot"][1:3] == ["owner-a@im.bot", "https://fake-ilink.invalid"]
    # options work after the command too, and another prefix is another bot
    assert main(["accounts", "list", *redis]) == 0
    assert list(rows(capsys.readouterr().out)) == ["account", "a@im.bot", "b@im.bot"]
    assert main(["accounts", "--redis", url, "--redis-prefix", f"{prefix}x"]) == 0
    assert "no accounts" in capsys.readouterr().out

    assert main([*redis, "accounts", "remove", "a@im.bot"]) == 0
    assert capsys.readouterr().out.strip() == "removed a@im.bot"

    async def stored(store: RedisStore) -> list[str]:
        return [d["account_id"] for d in await store.load_accounts()]

    assert with_store(url, prefix, stored) == ["b@im.bot"]
    assert main([*redis, "accounts", "remove", "a@im.bot"]) == 1
    assert capsys.readouterr().err.strip() == "weixin-trio: error: unknown account: a@im.bot"
    with pytest.raises(SystemExit) as usage:  # a usage mistake: exit 2, nothing runs
        main([*redis, "accounts", "remove"])
    assert usage.value.code == 2
    assert "needs an ACCOUNT_ID" in capsys.readouterr().err

    # $WEIXIN_TRIO_REDIS_URL stands in for --redis
    monkeypatch.setenv("WEIXIN_TRIO_REDIS_URL", url)
    assert main(["accounts", "--redis-prefix", prefix]) == 0
    assert list(rows(capsys.readouterr().out)) == ["account", "b@im.bot"]


def test_status_shows_the_node_and_the_journal_counts(
    redis_server: RedisServer, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = redis_server.url
    save_accounts(url, prefix, "busy@im.bot", "idle@im.bot")

    async def prepare(store: RedisStore) -> None:
        entries = [JournalEntry(m, {"message_id": m}) for m in (11, 12, 13)]
        await store.accept("busy@im.bot", cursor="c1", entries=entries, context_tokens={})
        await store.dead_letter("busy@im.bot", DeadLetter(13, {"message_id": 13}, 5, "boom", 0.0))
        beat = {
            "node": "node-7",
            "last_poll_at": time.time() - 3,
            "stale_tokens": 0,
            "store_failures": 4,
        }
        await _write_status(store, "busy@im.bot", beat)

    with_store(url, prefix, prepare)
    assert main(["status", "--redis", url, "--redis-prefix", prefix]) == 0
    table = rows(capsys.readouterr().out)
    assert table["account"] == [
        "account", "node", "last poll", "paused", "stale token", "pending", "dead", "queued",
        "store errors",
    ]  # fmt: skip
    busy = table["busy@im.bot"]
    assert busy[1] == "node-7"
    assert busy[2].endswith(" s ago")
    assert 3 <= int(busy[2].split()[0]) <= 60
    assert busy[3:] == ["no", "no", "2", "1", "0", "4"]
    idle = ["idle@im.bot", "-", "never", "no", "no", "0", "0", "0", "-"]
    assert table["idle@im.bot"] == idle

    assert main(["status", "--redis", url, "--redis-prefix", f"{prefix}x"]) == 0
    assert capsys.readouterr().out.strip() == f"no accounts in {url} (prefix {prefix}x)"


def test_run_with_redis_refuses_account_selection(
    redis_server: RedisServer,
    prefix: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = f"cli_bot_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text("async def handle(msg):\n    pass\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # load_handler adds the cwd
    monkeypatch.delitem(sys.modules, module, raising=False)
    save_accounts(redis_server.url, prefix, "a@im.bot")
    args = ["run", f"{module}:handle", "--redis", redis_server.url, "--redis-prefix", prefix]
    with pytest.raises(SystemExit) as usage:  # a usage mistake: exit 2, nothing runs
        main([*args, "--account", "a@im.bot"])
    assert usage.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.strip().endswith(
        "error: --account cannot be used with --redis: accounts are leased"
    )
    assert "running" not in captured.out

    async def traces(store: RedisStore) -> int:
        # nothing was leased, and no node joined
        keys = [f"{prefix}:nodes", lease_key(prefix, "a@im.bot")]
        return int(await store.client.exists(keys))

    assert with_store(redis_server.url, prefix, traces) == 0


# ``run`` needs an importable MODULE:HANDLER before it connects; any callable will do.
@IGNORE_COREDIS_LEAK  # a refused connect leaks coredis's streams (tests/redis/conftest.py)
@pytest.mark.parametrize("command", [["accounts"], ["status"], ["run", "json:loads"]])
def test_unreachable_redis_is_one_line_without_the_password(
    command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))  # load_handler adds the cwd
    port = closed_port()
    url = f"redis://bot:s3cret-pw@127.0.0.1:{port}/0"
    assert main(["--redis", url, *command]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("weixin-trio: error: ")
    assert "\n" not in err
    assert f"redis://bot:***@127.0.0.1:{port}/0" in err
    assert "unavailable" in err.lower() or "connect" in err.lower()
    assert "s3cret-pw" not in captured.err + captured.out
    assert "Traceback" not in captured.err
