"""A handler that cannot be awaited is refused when it is passed in, not per message."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.lowlevel

import weixin_trio as wx
from weixin_trio._monitor.values import check_handler

if TYPE_CHECKING:
    from weixin_trio.testing import FakeILinkServer


def sync_handler(msg: wx.Message) -> None:
    del msg


async def async_handler(msg: wx.Message, *, prefix: str = "") -> None:
    await msg.reply(prefix + msg.text)


class AsyncCallable:
    async def __call__(self, msg: wx.Message) -> None:
        await msg.reply(msg.text)


class Bot:
    def handle(self, msg: wx.Message) -> None:
        del msg


@pytest.mark.parametrize(
    "handler",
    [sync_handler, Bot().handle, print, functools.partial(sync_handler), "not callable", None],
    ids=["def", "method", "builtin", "partial-of-def", "string", "none"],
)
def test_handlers_that_cannot_be_awaited_are_refused(handler: Any) -> None:
    with pytest.raises(TypeError, match="async"):
        check_handler(handler)


@pytest.mark.parametrize(
    "handler",
    [
        async_handler,
        functools.partial(async_handler, prefix="> "),
        AsyncCallable(),
        lambda msg: trio.lowlevel.checkpoint(),  # noqa: ASYNC105 - returns the awaitable
    ],
    ids=["async-def", "partial", "async-call", "lambda"],
)
def test_awaitable_handlers_are_accepted(handler: Any) -> None:
    check_handler(handler)


async def test_open_monitor_refuses_a_sync_handler_before_it_starts(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient
) -> None:
    with pytest.raises(TypeError, match="sync_handler is a plain function"):
        async with wx.open_monitor(ilink_client, sync_handler):  # type: ignore[arg-type]
            raise AssertionError("the monitor must not start")
    assert fake_ilink.requests_to("getupdates") == []


async def test_open_accounts_refuses_a_sync_handler() -> None:
    with pytest.raises(TypeError, match="plain function"):
        async with wx.open_accounts(sync_handler, [], store=wx.MemoryStore()):  # type: ignore[arg-type]
            raise AssertionError("must not start")
