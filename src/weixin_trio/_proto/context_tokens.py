"""Per-user context tokens of one account (PROTOCOL §4.7), kept in memory.

The monitor records the latest token of each user as messages arrive and the store
persists them with each journaled batch; sends look them up here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = ["ContextTokens"]


@final
class ContextTokens:
    """The latest ``context_token`` per peer user. Values never appear in ``repr``."""

    def __init__(self, initial: Mapping[str, str] | None = None) -> None:
        self._tokens: dict[str, str] = dict(initial or {})

    def __repr__(self) -> str:
        return f"<ContextTokens users={len(self._tokens)}>"

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._tokens

    def __iter__(self) -> Iterator[str]:
        return iter(self._tokens)

    def get(self, user_id: str) -> str | None:
        """The latest token of ``user_id``, or ``None``."""
        return self._tokens.get(user_id)

    def set(self, user_id: str, token: str) -> bool:
        """Record ``token`` for ``user_id``; return whether it changed anything."""
        if not token or self._tokens.get(user_id) == token:
            return False
        self._tokens[user_id] = token
        return True

    def update(self, tokens: Mapping[str, str]) -> None:
        """Record several tokens at once."""
        for user_id, token in tokens.items():
            self.set(user_id, token)

    def snapshot(self) -> dict[str, str]:
        """A copy of every token, for persistence."""
        return dict(self._tokens)
