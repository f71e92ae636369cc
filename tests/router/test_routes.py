"""Routing: every route kind, registration order, commands first, nesting, fallbacks."""

from __future__ import annotations

import re

import pytest

import weixin_trio as wx
from weixin_trio import filters
from weixin_trio.media import MediaKind

from ._messages import message


def recording() -> tuple[wx.Router, list[object]]:
    return wx.Router(), []


async def test_command_gets_the_parsed_command() -> None:
    router, seen = recording()

    @router.command("ping", "p")
    async def ping(msg: wx.Message, cmd: wx.Command) -> None:
        seen.append(cmd)

    await router(message("/PING a 'b c'"))
    await router(message("@bot /p"))
    await router(message("ping"))  # not a command
    assert seen == [wx.Command("ping", ("a", "b c"), "a 'b c'"), wx.Command("p", mention="bot")]


async def test_decorators_return_the_function_and_work_as_plain_calls() -> None:
    router, seen = recording()

    async def ping(msg: wx.Message, cmd: wx.Command) -> None:
        seen.append(cmd.name)

    assert router.command("/Ping")(ping) is ping
    await router(message("/ping"))
    assert seen == ["ping"]


async def test_text_route_searches_and_passes_the_match() -> None:
    router, seen = recording()

    @router.text(r"(\d+) apples")
    async def apples(msg: wx.Message, match: re.Match[str]) -> None:
        seen.append(match.group(1))

    @router.text(re.compile("pear", re.I))
    async def pears(msg: wx.Message, match: re.Match[str]) -> None:
        seen.append(match.group(0))

    await router(message("I want 12 apples please"))
    await router(message("A PEAR"))
    await router(message("nothing"))
    assert seen == ["12", "PEAR"]


async def test_media_route_by_kind_name_or_any() -> None:
    router, seen = recording()

    @router.media("image")
    async def image(msg: wx.Message) -> None:
        seen.append("image")

    @router.media(MediaKind.FILE)
    async def file(msg: wx.Message) -> None:
        seen.append("file")

    @router.media()
    async def other(msg: wx.Message) -> None:
        seen.append("other")

    await router(message(media=("image",)))
    await router(message(media=("video", "file")))
    await router(message(media=("video",)))
    await router(message("no media"))
    assert seen == ["image", "file", "other"]
    with pytest.raises(ValueError, match="unknown media kind 'gif'"):
        router.media("gif")


async def test_message_route_with_a_filter_or_a_plain_predicate() -> None:
    router, seen = recording()

    @router.message(filters.from_user("bob@im.wechat"))
    async def bob(msg: wx.Message) -> None:
        seen.append("bob")

    @router.message(lambda m: m.text.endswith("?"))
    async def question(msg: wx.Message) -> None:
        seen.append("question")

    await router(message("hi", user="bob@im.wechat"))
    await router(message("why?"))
    await router(message("hi"))
    assert seen == ["bob", "question"]


async def test_first_match_wins_in_registration_order_and_commands_come_first() -> None:
    router, seen = recording()

    @router.text("/ping")
    async def text(msg: wx.Message, match: re.Match[str]) -> None:
        seen.append("text")

    @router.message(lambda m: True)
    async def anything(msg: wx.Message) -> None:
        seen.append("anything")

    @router.command("ping")
    async def first(msg: wx.Message, cmd: wx.Command) -> None:
        seen.append("first")

    @router.command("ping")
    async def second(msg: wx.Message, cmd: wx.Command) -> None:
        seen.append("second")

    await router(message("/ping"))  # the command, although registered after the text
    await router(message("say /ping"))
    await router(message("/other"))  # an unknown command goes on to the other routes
    assert seen == ["first", "text", "anything"]


async def test_fallback_runs_when_nothing_matched() -> None:
    router, seen = recording()

    @router.command("known")
    async def known(msg: wx.Message, cmd: wx.Command) -> None:
        seen.append("known")

    @router.fallback
    async def fallback(msg: wx.Message) -> None:
        seen.append(f"fallback {msg.text}")

    await router(message("/known"))
    await router(message("/unknown"))
    assert seen == ["known", "fallback /unknown"]
    with pytest.raises(ValueError, match="fallback already"):
        router.fallback(fallback)


async def test_nothing_matched_and_no_fallback_finishes_the_message() -> None:
    router, _ = recording()
    await router(message("hello"))  # no error


async def test_included_routes_are_tried_in_place() -> None:
    root, seen = recording()

    @root.text("a")
    async def root_a(msg: wx.Message, match: re.Match[str]) -> None:
        seen.append("root a")

    child = root.include(wx.Router())

    @child.text("[ab]")
    async def child_ab(msg: wx.Message, match: re.Match[str]) -> None:
        seen.append("child ab")

    @child.command("deep")
    async def deep(msg: wx.Message, cmd: wx.Command) -> None:
        seen.append("child deep")

    @root.text("[abc]")
    async def root_abc(msg: wx.Message, match: re.Match[str]) -> None:
        seen.append("root abc")

    @root.command("deep")
    async def shadowed(msg: wx.Message, cmd: wx.Command) -> None:
        seen.append("root deep")

    for text in ["a", "b", "c", "/deep"]:
        await root(message(text))
    assert seen == ["root a", "child ab", "root abc", "child deep"]


async def test_a_child_filter_lets_other_messages_go_on() -> None:
    root, seen = recording()
    admin = root.include(wx.Router(filter=filters.from_user("admin@im.wechat")))

    @admin.command("stop")
    async def admin_stop(msg: wx.Message, cmd: wx.Command) -> None:
        seen.append("admin stop")

    @admin.fallback
    async def admin_fallback(msg: wx.Message) -> None:
        seen.append("admin fallback")

    @root.command("stop")
    async def user_stop(msg: wx.Message, cmd: wx.Command) -> None:
        seen.append("user stop")

    @root.fallback
    async def root_fallback(msg: wx.Message) -> None:
        seen.append("root fallback")

    await root(message("/stop", user="admin@im.wechat"))
    await root(message("/stop"))
    await root(message("hi", user="admin@im.wechat"))  # the child's fallback is nearer
    await root(message("hi"))
    assert seen == ["admin stop", "user stop", "admin fallback", "root fallback"]


async def test_a_root_filter_drops_what_it_does_not_pass() -> None:
    router = wx.Router(filter=filters.is_private)
    seen: list[str] = []

    @router.fallback
    async def fallback(msg: wx.Message) -> None:
        seen.append(msg.text)

    await router(message("group", group="g@chatroom"))
    await router(message("private"))
    assert seen == ["private"]


def test_include_refuses_cycles_and_second_parents() -> None:
    root, child, other = wx.Router(), wx.Router(), wx.Router()
    root.include(child)
    with pytest.raises(ValueError, match="elsewhere"):
        other.include(child)
    with pytest.raises(ValueError, match="itself or one of its parents"):
        child.include(root)
    with pytest.raises(ValueError, match="itself"):
        other.include(other)


def test_registration_refuses_bad_names_and_plain_functions() -> None:
    router = wx.Router()
    with pytest.raises(ValueError, match="not a command name"):
        router.command("two words")
    with pytest.raises(ValueError, match="not a command name"):
        router.command("a@b")

    def plain(msg: wx.Message) -> None:
        pass

    with pytest.raises(TypeError, match="plain function"):
        router.fallback(plain)  # type: ignore[type-var]


async def test_a_router_is_a_monitor_handler() -> None:
    from weixin_trio._monitor.values import check_handler

    check_handler(wx.Router())  # no TypeError
