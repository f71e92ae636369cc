"""The opt-in pytest plugin works in a fresh project (checked with ``pytester``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

pytest_plugins = ["pytester"]

USER_TEST = """
import trio
import weixin_trio as wx


async def test_bot(fake_ilink, ilink_client, autojump_clock):
    fake_ilink.inject_text("alice@im.wechat", "hi")
    updates = await ilink_client.get_updates("")
    [msg] = updates.msgs
    await ilink_client.send_text(msg.from_user_id, "hello", context_token=msg.context_token)
    assert fake_ilink.sent_texts("alice@im.wechat") == ["hello"]


async def test_monitor(fake_ilink, ilink_client, autojump_clock):
    async def echo(msg):
        await msg.reply("echo " + msg.text)

    async with wx.open_monitor(ilink_client, echo):
        fake_ilink.inject_text("bob@im.wechat", "x")
        await fake_ilink.wait_for_sent(1)
    assert fake_ilink.sent_texts("bob@im.wechat") == ["echo x"]


def test_fake_is_fresh(fake_ilink):
    assert fake_ilink.sends == []
"""


def test_plugin_fixtures_in_a_user_project(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["weixin_trio.testing.pytest_plugin"]\n')
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(test_user_bot=USER_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_plugin_is_opt_in(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(test_user_bot="def test_x(fake_ilink):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'fake_ilink' not found*"])
