"""Test kit: an in-memory iLink server, fault injection and pytest fixtures.

Write bot tests with ``pytest-trio`` and no WeChat account::

    from weixin_trio.testing import FakeILinkServer

    async def test_echo(autojump_clock):
        fake = FakeILinkServer()
        async with wx.open_client(token=fake.token, base_url=fake.base_url,
                                  transport=fake.transport()) as client:
            async with wx.open_monitor(client, echo):
                fake.inject_text("alice@im.wechat", "hi")
                await fake.wait_for_sent(1, user="alice@im.wechat")
        assert fake.sent_texts("alice@im.wechat") == ["echo hi"]

The fixtures ``fake_ilink`` and ``ilink_client`` come from the opt-in plugin: add
``pytest_plugins = ["weixin_trio.testing.pytest_plugin"]`` to your ``conftest.py``.
"""

from ._fake_lenient import ProtocolIssue as ProtocolIssue
from ._fake_model import (
    FakeAccount as FakeAccount,
    FakeRequest as FakeRequest,
    FakeResponse as FakeResponse,
    Fault as Fault,
    RecordedRequest as RecordedRequest,
    RecordedSend as RecordedSend,
)
from ._fake_server import FakeILinkServer as FakeILinkServer

__all__ = [
    "FakeAccount",
    "FakeILinkServer",
    "FakeRequest",
    "FakeResponse",
    "Fault",
    "ProtocolIssue",
    "RecordedRequest",
    "RecordedSend",
]
