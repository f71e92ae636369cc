"""What the multi-process tests share: injecting numbered rounds, checking the replies."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from weixin_trio.redis import RedisStore
    from weixin_trio.testing import FakeAccount, FakeILinkServer


async def save_accounts(store: RedisStore, accounts: list[FakeAccount], base_url: str) -> None:
    """Store the fake's accounts the way ``weixin-trio login`` would."""
    for account in accounts:
        data = {"token": account.token, "base_url": base_url, "created_at": 0.0}
        await store.save_account(account.bot_id, data)


class Conversation:
    """Users writing numbered messages (``"<user> #<n>"``) to several fake accounts."""

    def __init__(self, fake: FakeILinkServer, accounts: list[FakeAccount], users: int) -> None:
        self.fake = fake
        self.accounts = accounts
        self.users = [f"user{i}@im.wechat" for i in range(users)]
        self.injected: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._seq = Counter[tuple[str, str]]()

    @property
    def total(self) -> int:
        """Messages injected so far."""
        return sum(len(ids) for ids in self.injected.values())

    def inject_round(self) -> None:
        """One message from every user to every account."""
        for account in self.accounts:
            for user in self.users:
                key = (account.bot_id, user)
                self._seq[key] += 1
                mid = self.fake.inject_text(user, f"{user} #{self._seq[key]}", account=account)
                self.injected[key].append(mid)

    def check_replies(self, handled: set[int]) -> int:
        """Assert: accepted ⊆ handled, no reply shown twice, each user's replies in order.

        Returns:
            How many messages the fake saw acknowledged (accepted by a poller).
        """
        accepted_total = 0
        for account in self.accounts:
            accepted = self.fake.acknowledged_message_ids(account=account)
            accepted_total += len(accepted)
            assert accepted <= handled, f"accepted, never handled: {sorted(accepted - handled)}"
            ours = {
                m for (bot, _), ids in self.injected.items() if bot == account.bot_id for m in ids
            }
            assert ours - accepted <= self.fake.in_transit_message_ids(account=account)
            shown = [s.text for s in self.fake.sent(account=account)]
            duplicates = {t: n for t, n in Counter(shown).items() if n > 1}
            assert not duplicates, f"replies shown twice: {duplicates}"
            for user in self.users:
                numbers = [int(m.group(1)) for t in shown if (m := re.search(f"{user} #(\\d+)", t))]
                assert numbers == sorted(numbers), (
                    f"{account.bot_id}/{user} out of order: {numbers}"
                )
                assert numbers, f"{account.bot_id}/{user}: no reply shown"
        return accepted_total
