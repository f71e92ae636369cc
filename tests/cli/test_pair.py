"""``weixin-trio pair``: every action, its errors, FileStore and Redis."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
import trio

from weixin_trio import FileStore, MemoryStore
from weixin_trio._cli import main
from weixin_trio.access import AccessBook, Pending

if TYPE_CHECKING:
    from pathlib import Path

    from tests._redis_server import RedisServer
    from weixin_trio.store import Store

BOT = "b0t@im.bot"
OWNER = "owner@im.wechat"


async def _save(store: Store, account: str = BOT) -> None:
    data = {"account_id": account, "token": "secret-token", "base_url": "http://x.invalid"}
    await store.save_account(account, {**data, "user_id": OWNER, "created_at": 1.0})


def stored_bot(state: Path, *accounts: str) -> None:
    async def save() -> None:
        async with FileStore(state) as store:
            for account in accounts or (BOT,):
                await _save(store, account)

    trio.run(save)


def issue(state: Path, user: str, account: str = BOT) -> Pending:
    """What a running bot does for an unknown user under the pairing policy."""

    async def run() -> Pending:
        async with FileStore(state) as store:
            return await AccessBook(store, account).issue(user, 3600.0)

    return trio.run(run)


def book_of(state: Path, account: str = BOT) -> tuple[list[str], list[str], list[str]]:
    """(allowed, pending users, denied) as a read-only store sees them."""

    async def run() -> tuple[list[str], list[str], list[str]]:
        async with FileStore(state, read_only=True) as store:
            book = AccessBook(store, account)
            pending = [p.user_id for p in await book.pending()]
            return list(await book.allowed()), pending, await book.denied()

    return trio.run(run)


def test_pair_help_names_every_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["pair", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for action in ("list", "approve CODE", "deny CODE", "allow USER", "revoke USER"):
        assert f"pair {action}" in out
    assert "--state-dir" in out
    assert "--redis" in out
    assert "--account" in out


def test_every_action_on_a_state_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    stored_bot(state)
    opts = ["--state-dir", str(state)]
    assert main(["pair", "list", *opts]) == 0
    out = capsys.readouterr().out
    assert f"account {BOT} (owner {OWNER}, always allowed)" in out
    assert "no pending codes" in out
    assert "no allowed users" in out

    alice, bob = issue(state, "alice@im.wechat"), issue(state, "bob@im.wechat")
    assert main(["pair", *opts]) == 0  # list is the default
    out = capsys.readouterr().out
    assert re.search(rf"{alice.code}\s+alice@im.wechat", out)
    assert re.search(rf"{bob.code}\s+bob@im.wechat", out)

    assert main(["pair", "approve", alice.code.lower(), *opts]) == 0
    assert "approved alice@im.wechat" in capsys.readouterr().out
    assert main(["pair", "deny", bob.code, *opts]) == 0
    assert "denied bob@im.wechat" in capsys.readouterr().out
    assert book_of(state) == (["alice@im.wechat"], [], ["bob@im.wechat"])

    assert main(["pair", "allow", "carol@im.wechat", *opts]) == 0
    assert capsys.readouterr().out.strip() == "allowed carol@im.wechat"
    assert main(["pair", "revoke", "alice@im.wechat", *opts]) == 0
    assert "revoked alice@im.wechat" in capsys.readouterr().out
    assert book_of(state) == (["carol@im.wechat"], [], ["bob@im.wechat"])
    assert main(["pair", "list", *opts]) == 0
    out = capsys.readouterr().out
    assert re.search(r"carol@im.wechat\s+\S+ \S+\s+pair allow", out)
    assert "denied: bob@im.wechat" in out
    assert main(["pair", "allow", "bob@im.wechat", *opts]) == 0  # undoes the denial
    assert book_of(state)[2] == []


def test_unknown_code_or_user_fails_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    stored_bot(state)
    opts = ["--state-dir", str(state)]
    assert main(["pair", "approve", "ABCDEF", *opts]) == 1
    assert "no pending request with code 'ABCDEF'" in capsys.readouterr().err
    assert main(["pair", "deny", "ABCDEF", *opts]) == 1
    assert "no pending request" in capsys.readouterr().err
    assert main(["pair", "revoke", "nobody@im.wechat", *opts]) == 1
    assert "is not on the allow list" in capsys.readouterr().err
    assert main(["pair", "list", "--state-dir", str(tmp_path / "empty")]) == 1
    assert "no accounts in" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pair", "approve"], "pair approve needs a CODE"),
        (["pair", "revoke", " "], "pair revoke needs a USER"),
        (["pair", "list", "extra"], "pair list takes no argument"),
        (["pair", "frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_several_accounts_need_account(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    other = "other@im.bot"
    stored_bot(state, BOT, other)
    code = issue(state, "alice@im.wechat", account=other).code
    opts = ["--state-dir", str(state)]
    assert main(["pair", "approve", code, *opts]) == 1
    assert "several accounts" in capsys.readouterr().err
    assert main(["pair", "approve", code, "--account", BOT, *opts]) == 1  # not BOT's code
    assert main(["pair", "approve", code, "--account", other, *opts]) == 0
    assert book_of(state, other)[0] == ["alice@im.wechat"]
    assert book_of(state, BOT)[0] == []
    assert main(["pair", "list", "--account", "ghost@im.bot", *opts]) == 1
    assert "unknown account(s): ghost@im.bot" in capsys.readouterr().err


def test_pair_on_redis(redis_server: RedisServer, capsys: pytest.CaptureFixture[str]) -> None:
    from weixin_trio.redis import open_redis_store

    prefix = "pairtest"
    opts = ["--redis", redis_server.url, "--redis-prefix", prefix]

    async def setup() -> Pending:
        async with open_redis_store(redis_server.url, prefix=prefix) as store:
            await _save(store)
            return await AccessBook(store, BOT).issue("alice@im.wechat", 3600.0)

    code = trio.run(setup).code
    assert main(["pair", "list", *opts]) == 0
    assert code in capsys.readouterr().out
    assert main(["pair", "approve", code, *opts]) == 0
    assert main(["pair", "allow", "bob@im.wechat", *opts]) == 0

    async def check() -> list[str]:
        async with open_redis_store(redis_server.url, prefix=prefix) as store:
            return list(await AccessBook(store, BOT).allowed())

    assert trio.run(check) == ["alice@im.wechat", "bob@im.wechat"]


def test_memory_store_book_matches(capsys: pytest.CaptureFixture[str]) -> None:
    async def run() -> list[str]:
        store = MemoryStore()
        book = AccessBook(store, BOT)
        await book.allow("z")
        await book.allow("a")
        return list(await book.allowed())

    assert trio.run(run) == ["a", "z"]
