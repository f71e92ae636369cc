"""The typing-ticket cache (sans-IO)."""

from __future__ import annotations

from weixin_trio._proto.typing_tickets import ConfigCache


def test_caches_share_one_generator_by_default() -> None:
    # A parked account must stay small: no random.Random (~2.9 KiB) per account.
    assert ConfigCache().rng is ConfigCache().rng
