"""Opt-in pytest fixtures for testing bots against :class:`FakeILinkServer`.

Enable in your ``conftest.py``::

    pytest_plugins = ["weixin_trio.testing.pytest_plugin"]

Fixtures:

- ``fake_ilink``: a fresh :class:`~weixin_trio.testing.FakeILinkServer`.
- ``ilink_client``: an :class:`~weixin_trio.ILinkClient` connected to ``fake_ilink``
  in-process (no sockets, so it works with ``autojump_clock``).

Both need ``pytest-trio`` (``trio_mode = true`` or ``@pytest.mark.trio``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .._client import open_client
from ._fake_server import FakeILinkServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from .._api import ILinkClient

__all__ = ["fake_ilink", "ilink_client"]


@pytest.fixture
def fake_ilink() -> FakeILinkServer:
    """A fresh in-memory iLink server with one bot account."""
    return FakeILinkServer(seed=0)


@pytest.fixture
async def ilink_client(fake_ilink: FakeILinkServer) -> AsyncIterator[ILinkClient]:
    """A client of ``fake_ilink``'s default account, talking to it in-process.

    Pacing is off (the fake does not throttle unless told to); everything else is as
    in production, including the send window check and the markdown filter.
    """
    async with open_client(
        token=fake_ilink.token,
        base_url=fake_ilink.base_url,
        cdn_base_url=fake_ilink.cdn_base_url,
        transport=fake_ilink.transport(),
        account_id=fake_ilink.default.bot_id,
        pacing=None,
    ) as client:
        yield client
