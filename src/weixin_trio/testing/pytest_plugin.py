"""Opt-in pytest fixtures for testing bots against `FakeILinkServer`.

Enable in your ``conftest.py``::

    pytest_plugins = ["weixin_trio.testing.pytest_plugin"]

Fixtures:

- ``fake_ilink``: a fresh [`FakeILinkServer`][weixin_trio.testing.FakeILinkServer]. At teardown
  the test fails when requests made during it caused protocol issues (requests that
  differ from what the official client sends: see ``FakeILinkServer.protocol_issues``),
  so a client that drifts from the protocol fails its tests although the lenient fake
  served it. Mark a test ``@pytest.mark.allow_protocol_issues`` to opt out (e.g. one
  that sends odd requests on purpose).
- ``ilink_client``: an [`ILinkClient`][weixin_trio.ILinkClient] connected to ``fake_ilink``
  in-process (no sockets, so it works with ``autojump_clock``).

Both need ``pytest-trio`` (``trio_mode = true`` or ``@pytest.mark.trio``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .._client.open import open_client
from ._fake_server import FakeILinkServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from .._client.ilink_client import ILinkClient

__all__ = ["fake_ilink", "ilink_client"]


MARKER = "allow_protocol_issues"


def pytest_configure(config: pytest.Config) -> None:
    """Register the opt-out marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers", f"{MARKER}: requests of this test may differ from the official client's"
    )


@pytest.fixture
def fake_ilink(request: pytest.FixtureRequest) -> Iterator[FakeILinkServer]:
    """A fresh in-memory iLink server with one bot account.

    The test fails at teardown if its requests caused protocol issues, unless it is
    marked ``@pytest.mark.allow_protocol_issues``.
    """
    fake = FakeILinkServer(seed=0)
    yield fake
    if fake.protocol_issues and request.node.get_closest_marker(MARKER) is None:
        lines = "\n".join(
            f"  {i.endpoint}: {i.category} at {i.field}: {i.detail}" for i in fake.protocol_issues
        )
        pytest.fail(
            f"requests to the fake iLink server caused protocol issues:\n{lines}\n"
            f"(mark the test @pytest.mark.{MARKER} if that is intended)",
            pytrace=False,
        )


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
