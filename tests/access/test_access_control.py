"""AccessControl on its own: policies, pairing codes, counting (stand-in messages)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
import trio

from weixin_trio import MemoryStore
from weixin_trio.access import (
    CODE_ALPHABET,
    AccessBook,
    AccessControl,
    AccessStatistics,
    NoStoreError,
)

from ._stub import StubMessage

if TYPE_CHECKING:
    from weixin_trio import Message

ACCOUNT = "bot@im.bot"
OWNER = "owner@im.wechat"
CODE = re.compile(f"[{CODE_ALPHABET}]{{6}}")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, msg: Message) -> None:
        await trio.lowlevel.checkpoint()
        self.seen.append(msg.from_user_id)


def msg(user: str, store: Any) -> Message:
    stub: Any = StubMessage(user, store=store)
    return stub  # type: ignore[no-any-return]


async def stored_owner(store: MemoryStore) -> None:
    data = {"account_id": ACCOUNT, "token": "t", "base_url": "b", "user_id": OWNER}
    await store.save_account(ACCOUNT, data)


async def test_open_lets_everyone_through() -> None:
    access, handler = AccessControl("open"), Recorder()
    guarded = access.guard(handler)
    for user in ("a", "b"):
        await guarded(msg(user, None))  # needs no store at all
    assert handler.seen == ["a", "b"]
    assert access.statistics() == AccessStatistics(passed=2, denied=0, codes_issued=0)


async def test_allowlist_owner_static_and_stored_users_pass() -> None:
    store = MemoryStore()
    await stored_owner(store)
    await AccessBook(store, ACCOUNT).allow("stored@im.wechat")
    access, handler = AccessControl("allowlist", allow=["static@im.wechat"]), Recorder()
    messages = [msg(u, store) for u in (OWNER, "static@im.wechat", "stored@im.wechat", "x")]
    for m in messages:
        await access.guard(handler)(m)
    assert handler.seen == [OWNER, "static@im.wechat", "stored@im.wechat"]
    assert access.statistics() == AccessStatistics(passed=3, denied=1, codes_issued=0)
    assert [m.replies for m in messages] == [[], [], [], []]  # type: ignore[attr-defined]


async def test_allowlist_denied_reply_and_owner_opt_out() -> None:
    store = MemoryStore()
    await stored_owner(store)
    access = AccessControl("allowlist", denied_reply="no", allow_owner=False)
    handler = Recorder()
    m = msg(OWNER, store)
    await access.guard(handler)(m)
    assert handler.seen == []
    assert m.replies == ["no"]  # type: ignore[attr-defined]


async def test_explicit_owner_wins_over_the_stored_account() -> None:
    store = MemoryStore()
    await stored_owner(store)
    access, handler = AccessControl("allowlist", owner="boss@im.wechat"), Recorder()
    await access.guard(handler)(msg(OWNER, store))
    await access.guard(handler)(msg("boss@im.wechat", store))
    assert handler.seen == ["boss@im.wechat"]


async def test_pairing_sends_one_code_per_pending_user_until_it_expires() -> None:
    store, clock = MemoryStore(), Clock()
    access, handler = AccessControl("pairing", clock=clock, code_ttl=60.0), Recorder()
    first = [msg("u", store) for _ in range(3)]
    for m in first:
        await access.guard(handler)(m)
    replies = [r for m in first for r in m.replies]  # type: ignore[attr-defined]
    assert len(replies) == 1
    (code,) = CODE.findall(replies[0])[:1]
    assert f"weixin-trio pair approve {code}" in replies[0]
    assert (await AccessBook(store, ACCOUNT).pending_of("u")).code == code  # type: ignore[union-attr]
    clock.now += 60.0  # expired: the next message gets a new code
    again = msg("u", store)
    await access.guard(handler)(again)
    assert len(again.replies) == 1  # type: ignore[attr-defined]
    assert CODE.search(again.replies[0]).group() != code  # type: ignore[attr-defined,union-attr]
    assert handler.seen == []
    assert access.statistics() == AccessStatistics(passed=0, denied=4, codes_issued=2)


async def test_approved_user_passes_with_the_next_message() -> None:
    store = MemoryStore()
    access, handler = AccessControl(pairing_reply="code: {code}"), Recorder()
    m = msg("u", store)
    await access.guard(handler)(m)
    code = m.replies[0].removeprefix("code: ")  # type: ignore[attr-defined]
    book = AccessBook(store, ACCOUNT)
    assert await book.approve(code.lower()[:3] + "-" + code.lower()[3:]) is not None
    assert await book.pending() == []
    await access.guard(handler)(msg("u", store))
    assert handler.seen == ["u"]
    assert await book.revoke("u") is True
    later = msg("u", store)
    await access.guard(handler)(later)
    assert handler.seen == ["u"]
    assert len(later.replies) == 1  # type: ignore[attr-defined]  # a new code


async def test_denied_user_gets_no_new_codes_until_allowed() -> None:
    store, clock = MemoryStore(), Clock()
    access, handler = AccessControl(clock=clock, code_ttl=10.0), Recorder()
    m = msg("u", store)
    await access.guard(handler)(m)
    code = CODE.search(m.replies[0]).group()  # type: ignore[attr-defined,union-attr]
    book = AccessBook(store, ACCOUNT, clock=clock)
    assert (await book.deny(code)).user_id == "u"  # type: ignore[union-attr]
    clock.now += 100.0
    silent = msg("u", store)
    await access.guard(handler)(silent)
    assert silent.replies == []  # type: ignore[attr-defined]
    await book.allow("u")
    await access.guard(handler)(msg("u", store))
    assert handler.seen == ["u"]
    assert await book.denied() == []


async def test_expired_and_unknown_codes_cannot_be_approved() -> None:
    store, clock = MemoryStore(), Clock()
    book = AccessBook(store, ACCOUNT, clock=clock)
    pending = await book.issue("u", 5.0)
    assert await book.approve("ZZZZZZ") is None
    clock.now += 5.0
    assert await book.approve(pending.code) is None
    assert not await book.is_allowed("u")


@pytest.mark.parametrize("cancelled", [False, True])
async def test_a_failed_code_reply_withdraws_the_code(
    cancelled: bool, autojump_clock: trio.abc.Clock
) -> None:
    store = MemoryStore()
    access, handler = AccessControl(), Recorder()
    m: Any = StubMessage("u", store=store)
    if cancelled:
        m.hang_reply = True
        with trio.move_on_after(5) as scope:
            await access.guard(handler)(m)
        assert scope.cancelled_caught
    else:
        m.fail_reply = OSError("send failed")
        with pytest.raises(OSError, match="send failed"):
            await access.guard(handler)(m)
    assert await AccessBook(store, ACCOUNT).pending() == []  # the next message tries again
    assert access.statistics().codes_issued == 0
    again = msg("u", store)
    await access.guard(handler)(again)
    assert len(again.replies) == 1  # type: ignore[attr-defined]


async def test_a_message_without_store_is_a_clear_error() -> None:
    with pytest.raises(NoStoreError, match="store="):
        await AccessControl("allowlist").guard(Recorder())(msg("u", None))


async def test_explicit_store_is_used_over_the_messages() -> None:
    store = MemoryStore()
    await AccessBook(store, ACCOUNT).allow("u")
    handler = Recorder()
    await AccessControl("allowlist", store=store).guard(handler)(msg("u", None))
    assert handler.seen == ["u"]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="policy"):
        AccessControl("closed")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="code_ttl"):
        AccessControl(code_ttl=0)
    with pytest.raises(ValueError, match="code"):
        AccessControl(pairing_reply="no code here")


async def test_as_middleware_it_calls_call_next_without_arguments() -> None:
    calls: list[str] = []

    async def call_next() -> None:
        await trio.lowlevel.checkpoint()
        calls.append("next")

    access = AccessControl("allowlist", allow=["u"], denied_reply="no")
    await access(msg("u", None), call_next)
    refused = msg("x", MemoryStore())
    await access(refused, call_next)
    assert calls == ["next"]
    assert refused.replies == ["no"]  # type: ignore[attr-defined]


def test_guard_keeps_the_handlers_name() -> None:
    async def my_handler(msg: Message) -> None:
        """Doc."""

    guarded = AccessControl().guard(my_handler)
    assert guarded.__name__ == "my_handler"
    assert guarded.__doc__ == "Doc."
