"""The route decorators are typed precisely: mypy --strict rejects a wrong handler.

mypy checks this file with ``warn_unused_ignores`` (strict): each ``type: ignore``
below must be needed, so a decorator that accepted the wrong signature fails the
type check. At run time the registrations are fine (the functions are async).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import weixin_trio as wx

if TYPE_CHECKING:
    import re

    from weixin_trio._router.signatures import CallNext


async def plain(msg: wx.Message) -> None:
    pass


async def with_command(msg: wx.Message, cmd: wx.Command) -> None:
    pass


async def with_match(msg: wx.Message, match: re.Match[str]) -> None:
    pass


async def middleware(msg: wx.Message, call_next: CallNext) -> None:
    await call_next(msg)


async def on_error(msg: wx.Message, exc: Exception) -> bool:
    return False


async def on_error_without_answer(msg: wx.Message, exc: Exception) -> None:
    pass


def test_right_signatures_type_check() -> None:
    router = wx.Router()
    assert router.command("a")(with_command) is with_command
    assert router.text("a")(with_match) is with_match
    assert router.media()(plain) is plain
    assert router.message(lambda m: True)(plain) is plain
    assert router.fallback(plain) is plain
    assert router.use(middleware) is middleware
    assert router.error(on_error) is on_error


def test_wrong_signatures_are_type_errors() -> None:
    router = wx.Router()
    router.command("a")(plain)  # type: ignore[type-var]
    router.command("a")(with_match)  # type: ignore[type-var]
    router.text("a")(with_command)  # type: ignore[type-var]
    router.media()(with_command)  # type: ignore[type-var]
    router.message(lambda m: True)(with_match)  # type: ignore[type-var]
    router.use(plain)  # type: ignore[type-var]
    router.error(on_error_without_answer)  # type: ignore[type-var]
