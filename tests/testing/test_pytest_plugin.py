"""The opt-in pytest plugin, used the way a bot author would (checked with ``pytester``).

The inner runs are subprocesses with plugin autoloading off, so exactly ``pytest-trio``
(``-p trio``) and our plugin (from the user's ``conftest.py``) are active, under
``filterwarnings = error`` like this project's own configuration.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

CONFTEST = 'pytest_plugins = ["weixin_trio.testing.pytest_plugin"]\n'
INI = """
[pytest]
trio_mode = true
filterwarnings = error
addopts = --strict-markers --strict-config
"""

USER_TESTS = """
import pytest
import trio
import weixin_trio as wx
from weixin_trio.testing import FakeILinkServer


async def test_echo_round_trip(fake_ilink, ilink_client):
    assert isinstance(fake_ilink, FakeILinkServer)
    assert isinstance(ilink_client, wx.ILinkClient)
    message_id = fake_ilink.inject_text("alice@im.wechat", "hi")
    updates = await ilink_client.get_updates("")
    [msg] = updates.msgs
    assert msg.message_id == message_id
    text = msg.item_list[0].text_item.text
    result = await ilink_client.send_text(
        msg.from_user_id, "echo " + text, context_token=msg.context_token
    )
    assert result.confirmed
    assert fake_ilink.sent_texts("alice@im.wechat") == ["echo hi"]
    assert fake_ilink.rejections == []
    assert fake_ilink.deviations == []


async def test_fresh_fake_per_test(fake_ilink, ilink_client):
    # The previous test sent a message; this fake has seen nothing.
    assert fake_ilink.sends == []
    assert fake_ilink.requests == []


async def test_long_poll_under_autojump(fake_ilink, ilink_client, autojump_clock):
    start = trio.current_time()
    updates = await ilink_client.get_updates("")
    assert updates.msgs == ()
    assert trio.current_time() - start >= fake_ilink.hold


async def test_stale_token(fake_ilink, ilink_client):
    fake_ilink.revoke_token()
    try:
        await ilink_client.notify_start()
    except wx.StaleTokenError:
        pass
    else:
        raise AssertionError("expected StaleTokenError")


async def test_an_off_protocol_request_fails_the_test_at_teardown(fake_ilink, ilink_client):
    await ilink_client.send_text("carol@im.wechat", "hi", context_token="made-up")


@pytest.mark.allow_protocol_issues
async def test_the_marker_allows_protocol_issues(fake_ilink, ilink_client):
    await ilink_client.send_text("carol@im.wechat", "hi", context_token="made-up")
    assert [i.category for i in fake_ilink.protocol_issues] == ["unknown-context-token"]


async def test_a_failing_bot_test_is_reported(fake_ilink, ilink_client):
    fake_ilink.inject_text("bob@im.wechat", "x")
    updates = await ilink_client.get_updates("")
    assert updates.msgs == ()  # wrong on purpose: the inner run must report it
"""


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.RunResult:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return pytester.runpytest_subprocess("-p", "trio", "-p", "no:cacheprovider", "-v")


def test_user_project_with_fixtures(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI)
    pytester.makepyfile(test_user_bot=USER_TESTS)
    result = _run(pytester, monkeypatch)
    result.assert_outcomes(passed=6, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_echo_round_trip PASSED*",
            "*test_fresh_fake_per_test PASSED*",
            "*test_long_poll_under_autojump PASSED*",
            "*test_stale_token PASSED*",
            "*test_an_off_protocol_request_fails_the_test_at_teardown ERROR*",
            "*test_the_marker_allows_protocol_issues PASSED*",
            "*test_a_failing_bot_test_is_reported FAILED*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*sendmessage: unknown-context-token at $.msg.context_token*", "*allow_protocol_issues*"]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_fixtures_need_the_plugin(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_user_bot="async def test_x(fake_ilink):\n    pass\n")
    result = _run(pytester, monkeypatch)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'fake_ilink' not found*"])
