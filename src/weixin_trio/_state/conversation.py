"""`ConversationState`: one user's state with one account, kept in the store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, final

from .._errors import NoStoreError
from ..store._kv import KeyValueStore

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["STATE_NAMESPACE", "ConversationState", "conversation_state"]

#: The key-value namespace of conversation state (one key per user).
STATE_NAMESPACE: Final = "state"


@final
class ConversationState:
    """A user's conversation state: a JSON object, per account, kept in the store.

    ``msg.state`` gives the state of the message's sender. Every call reads or
    writes the store (nothing is cached), so the state survives restarts and is the
    same in every process that shares the store. Each call is atomic; a read-modify-
    write (`update`) is not atomic against another writer of the same user, which the
    monitor's per-user lanes avoid.

    Values are anything JSON can express (see
    [`KeyValueStore`][weixin_trio.KeyValueStore]); the key ``_flow`` is used by
    [`Flow`][weixin_trio.Flow].

    Args:
        store: A store with the key-value API.
        account: The bot account.
        user_id: The user.
    """

    def __init__(self, store: KeyValueStore, account: str, user_id: str) -> None:
        self.store = store
        self.account = account
        self.user_id = user_id

    def __repr__(self) -> str:
        return f"<ConversationState {self.account} {self.user_id}>"

    async def get(self) -> dict[str, Any]:
        """The state (``{}`` when none).

        Cancellation:
            Propagates.
        """
        value = await self.store.kv_get(self.account, STATE_NAMESPACE, self.user_id)
        return value if isinstance(value, dict) else {}

    async def set(self, mapping: Mapping[str, Any]) -> None:
        """Replace the state with ``mapping`` (an empty one clears it).

        Raises:
            UnencodableError: JSON cannot express a value (the state is unchanged).

        Cancellation:
            Propagates; the write is then made or not.
        """
        if mapping:
            await self.store.kv_put(self.account, STATE_NAMESPACE, self.user_id, dict(mapping))
        else:
            await self.clear()

    async def update(self, **values: Any) -> dict[str, Any]:
        """Merge ``values`` into the state; returns the new state.

        Raises:
            UnencodableError: JSON cannot express a value (the state is unchanged).

        Cancellation:
            Propagates; the write is then made or not.
        """
        state = {**await self.get(), **values}
        await self.set(state)
        return state

    async def clear(self) -> None:
        """Forget the state.

        Cancellation:
            Propagates; the removal is then made or not.
        """
        await self.store.kv_delete(self.account, STATE_NAMESPACE, self.user_id)


def conversation_state(store: object, account: str, user_id: str) -> ConversationState:
    """``user_id``'s state with ``account`` in ``store`` (``msg.state``).

    Raises:
        NoStoreError: ``store`` is ``None`` or has no key-value API.
    """
    if not isinstance(store, KeyValueStore):
        raise NoStoreError(
            "msg.state needs the store of the message's account: this message has"
            " none (it was not delivered by a monitor; build it with"
            " ReplyContext(client, store=...))"
        )
    return ConversationState(store, account, user_id)
