"""`AccessBook`: one account's allow list, pending codes and denied users in a store.

Shared by [`AccessControl`][weixin_trio.AccessControl] (the bot) and
``weixin-trio pair`` (the owner). Every record is one key of a key-value namespace
(the user id), so the bot and the command line, in different processes, never
overwrite each other's changes of other users.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .codes import (
    ALLOW_NAMESPACE,
    DENY_NAMESPACE,
    PENDING_NAMESPACE,
    Pending,
    new_code,
    normalize_code,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..store._kv import KeyValueStore

__all__ = ["AccessBook"]


class AccessBook:
    """The access records of ``account`` in ``store`` (see the module docstring).

    Args:
        store: Any store with the key-value API.
        account: The bot account.
        clock: Wall-clock time (``time.time``), for code expiry.
    """

    def __init__(
        self, store: KeyValueStore, account: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.account = account
        self._clock = clock

    async def is_allowed(self, user_id: str) -> bool:
        """Whether ``user_id`` is on the stored allow list."""
        return await self.store.kv_get(self.account, ALLOW_NAMESPACE, user_id) is not None

    async def is_denied(self, user_id: str) -> bool:
        """Whether the owner denied ``user_id``'s code (no new codes until allowed)."""
        return await self.store.kv_get(self.account, DENY_NAMESPACE, user_id) is not None

    async def allowed(self) -> dict[str, dict[str, Any]]:
        """Every allowed user and how they got there (``{"at": time, "via": how}``)."""
        items = await self.store.kv_items(self.account, ALLOW_NAMESPACE)
        return {u: v if isinstance(v, dict) else {} for u, v in sorted(items.items())}

    async def denied(self) -> list[str]:
        """Every denied user."""
        return sorted(await self.store.kv_items(self.account, DENY_NAMESPACE))

    async def pending(self) -> list[Pending]:
        """Every code still waiting (expired ones too), oldest first."""
        items = await self.store.kv_items(self.account, PENDING_NAMESPACE)
        found = [Pending.from_json(user, data) for user, data in items.items()]
        return sorted((p for p in found if p is not None), key=lambda p: p.requested_at)

    async def pending_of(self, user_id: str) -> Pending | None:
        """``user_id``'s code, if one was issued (it may have expired)."""
        data = await self.store.kv_get(self.account, PENDING_NAMESPACE, user_id)
        return None if data is None else Pending.from_json(user_id, data)

    async def issue(self, user_id: str, ttl: float) -> Pending:
        """Store a new code for ``user_id``, valid for ``ttl`` seconds."""
        now = self._clock()
        pending = Pending(user_id, new_code(), now, now + ttl)
        await self.store.kv_put(self.account, PENDING_NAMESPACE, user_id, pending.to_json())
        return pending

    async def withdraw(self, user_id: str) -> bool:
        """Forget ``user_id``'s code; whether there was one."""
        return await self.store.kv_delete(self.account, PENDING_NAMESPACE, user_id)

    async def find(self, code: str) -> Pending | None:
        """The unexpired pending request with ``code`` (compared as `normalize_code`)."""
        wanted = normalize_code(code)
        now = self._clock()
        for pending in await self.pending():
            if pending.code == wanted and not pending.expired(now):
                return pending
        return None

    async def allow(self, user_id: str, *, via: str = "owner") -> None:
        """Put ``user_id`` on the allow list (and forget its code and any denial)."""
        record = {"at": self._clock(), "via": via}
        await self.store.kv_put(self.account, ALLOW_NAMESPACE, user_id, record)
        await self.store.kv_delete(self.account, PENDING_NAMESPACE, user_id)
        await self.store.kv_delete(self.account, DENY_NAMESPACE, user_id)

    async def revoke(self, user_id: str) -> bool:
        """Take ``user_id`` off the allow list; whether it was on it."""
        return await self.store.kv_delete(self.account, ALLOW_NAMESPACE, user_id)

    async def approve(self, code: str) -> Pending | None:
        """Allow the user of an unexpired ``code``; the request, or ``None`` if unknown."""
        pending = await self.find(code)
        if pending is not None:
            await self.allow(pending.user_id, via=f"code {pending.code}")
        return pending

    async def deny(self, code: str) -> Pending | None:
        """Refuse the user of ``code``: no access and no new codes until allowed."""
        pending = await self.find(code)
        if pending is not None:
            record = {"at": self._clock(), "code": pending.code}
            await self.store.kv_put(self.account, DENY_NAMESPACE, pending.user_id, record)
            await self.withdraw(pending.user_id)
        return pending
