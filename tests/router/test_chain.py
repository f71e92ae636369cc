"""Middleware (order, skip, raise, nesting) and error handlers of a router."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import pytest
import trio

import weixin_trio as wx
from weixin_trio import filters

from ._messages import message

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from weixin_trio._router.signatures import CallNext, Middleware


def layered(log: list[str], name: str) -> Middleware:
    async def middleware(msg: wx.Message, call_next: CallNext) -> None:
        log.append(f"{name} in")
        await call_next(msg)
        log.append(f"{name} out")

    return middleware


async def test_middleware_runs_outer_to_inner_in_registration_order() -> None:
    router, log = wx.Router(), list[str]()

    async def outer(msg: wx.Message, call_next: Callable[[], Awaitable[None]]) -> None:
        log.append("outer in")
        await call_next()
        log.append("outer out")

    async def inner(msg: wx.Message, call_next: Callable[[wx.Message], Awaitable[None]]) -> None:
        log.append("inner in")
        await call_next(msg)
        log.append("inner out")

    assert router.use(outer) is outer
    router.use(inner)

    @router.command("go")
    async def go(msg: wx.Message, cmd: wx.Command) -> None:
        log.append("route")

    await router(message("/go"))
    assert log == ["outer in", "inner in", "route", "inner out", "outer out"]


async def test_middleware_that_skips_call_next_finishes_the_message() -> None:
    router, log = wx.Router(), list[str]()

    async def only_bob(msg: wx.Message, call_next: CallNext) -> None:
        if msg.from_user_id == "bob@im.wechat":
            await call_next()

    router.use(only_bob)

    @router.fallback
    async def fallback(msg: wx.Message) -> None:
        log.append(msg.from_user_id)

    await router(message("x"))
    await router(message("x", user="bob@im.wechat"))
    assert log == ["bob@im.wechat"]


async def test_middleware_errors_propagate_unchanged_and_call_next_runs_once() -> None:
    router = wx.Router()
    boom = KeyError("boom")

    async def twice(msg: wx.Message, call_next: CallNext) -> None:
        await call_next(msg)
        if msg.text == "raise":
            raise boom
        await call_next(msg)

    router.use(twice)

    @router.fallback
    async def fallback(msg: wx.Message) -> None:
        pass

    with pytest.raises(KeyError) as caught:
        await router(message("raise"))
    assert caught.value is boom
    with pytest.raises(RuntimeError, match=r"call_next\(\) awaited twice"):
        await router(message("twice"))


async def test_route_errors_propagate_unchanged() -> None:
    router = wx.Router()
    boom = ValueError("boom")

    @router.fallback
    async def fallback(msg: wx.Message) -> None:
        raise boom

    with pytest.raises(ValueError, match="boom") as caught:
        await router(message("x"))
    assert caught.value is boom


async def test_a_childs_middleware_wraps_only_its_own_routes() -> None:
    root, log = wx.Router(), list[str]()
    root.use(layered(log, "root"))
    child = root.include(wx.Router())
    child.use(layered(log, "child"))

    @child.command("child")
    async def in_child(msg: wx.Message, cmd: wx.Command) -> None:
        log.append("child route")

    @root.command("root")
    async def in_root(msg: wx.Message, cmd: wx.Command) -> None:
        log.append("root route")

    await root(message("/child"))
    assert log == ["root in", "child in", "child route", "child out", "root out"]
    log.clear()
    await root(message("/root"))
    assert log == ["root in", "root route", "root out"]
    log.clear()
    await root(message("no route"))
    assert log == ["root in", "root out"]  # the root's middleware sees every message


async def test_error_handler_true_finishes_false_reraises() -> None:
    router, seen = wx.Router(), list[object]()

    @router.error
    async def on_error(msg: wx.Message, exc: Exception) -> bool:
        seen.append(repr(exc))
        return isinstance(exc, KeyError)

    @router.text("key")
    async def key(msg: wx.Message, match: object) -> None:
        raise KeyError("k")

    @router.fallback
    async def other(msg: wx.Message) -> None:
        raise ValueError("v")

    await router(message("key"))  # handled
    with pytest.raises(ValueError, match="v"):
        await router(message("other"))
    assert seen == ["KeyError('k')", "ValueError('v')"]


async def test_error_handler_sees_middleware_errors_and_its_own_error_propagates() -> None:
    router = wx.Router()

    async def broken(msg: wx.Message, call_next: CallNext) -> None:
        raise KeyError("mw")

    router.use(broken)

    @router.error
    async def on_error(msg: wx.Message, exc: Exception) -> bool:
        raise RuntimeError(f"handler of {exc!r} failed")

    @router.fallback
    async def fallback(msg: wx.Message) -> None:
        pass

    with pytest.raises(RuntimeError, match="handler of KeyError") as caught:
        await router(message("x"))
    assert isinstance(caught.value.__context__, KeyError)


async def test_error_handlers_run_innermost_first() -> None:
    root, seen = wx.Router(), list[str]()
    child = root.include(wx.Router(filter=filters.text_matches("child")))

    @child.error
    async def child_error(msg: wx.Message, exc: Exception) -> bool:
        seen.append("child")
        return False

    @root.error
    async def root_error(msg: wx.Message, exc: Exception) -> bool:
        seen.append("root")
        return True

    @child.fallback
    async def fails(msg: wx.Message) -> None:
        raise ValueError

    await root(message("child"))
    assert seen == ["child", "root"]


async def test_cancellation_is_not_given_to_error_handlers(autojump_clock: trio.abc.Clock) -> None:
    router, seen = wx.Router(), list[object]()

    @router.error
    async def on_error(msg: wx.Message, exc: Exception) -> bool:  # pragma: no cover
        seen.append(exc)
        return True

    @router.fallback
    async def slow(msg: wx.Message) -> None:
        await trio.sleep_forever()

    with trio.move_on_after(5) as scope:
        await router(message("x"))
    assert scope.cancelled_caught
    assert seen == []


async def test_middleware_may_pass_on_another_message() -> None:
    router, seen = wx.Router(), list[str]()

    async def shout(msg: wx.Message, call_next: CallNext) -> None:
        await call_next(attrs.evolve(msg, text=msg.text.upper()))

    router.use(shout)

    @router.command("say")
    async def say(msg: wx.Message, cmd: wx.Command) -> None:
        seen.append(f"{msg.text} {cmd.args}")

    await router(message("/say hi"))
    assert seen == ["/SAY HI ('hi',)"]  # the route was chosen for the message as sent
