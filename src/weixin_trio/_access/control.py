"""`AccessControl`: who may talk to a bot, as Router middleware or a handler wrapper."""

from __future__ import annotations

import functools
import logging
import time
from typing import TYPE_CHECKING, Final, Literal, final, get_args

import attrs
import trio

from .._errors import NoStoreError
from ..store._base import Store
from ..store._kv import KeyValueStore
from .book import AccessBook

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from .._client.message import Message

    Handler = Callable[[Message], Awaitable[None]]
    CallNext = Callable[[], Awaitable[None]]

__all__ = ["DEFAULT_PAIRING_REPLY", "AccessControl", "AccessStatistics", "Policy"]

log = logging.getLogger("weixin_trio.access")

#: The access policies.
Policy = Literal["open", "allowlist", "pairing"]

#: What an unknown user is sent with ``pairing`` (``{code}`` is the pairing code).
DEFAULT_PAIRING_REPLY: Final = (
    "This bot only talks to people its owner approved. Your pairing code is {code}."
    " Send it to the owner, who approves it with: weixin-trio pair approve {code}"
)

#: Seconds the cleanup of a failed code reply may take.
_CLEANUP_DEADLINE: Final = 5.0


@attrs.frozen
class AccessStatistics:
    """What an [`AccessControl`][weixin_trio.AccessControl] decided so far.

    Attributes:
        passed: Messages that reached the handler.
        denied: Messages refused (acknowledged without running the handler).
        codes_issued: Pairing codes sent to unknown users.
    """

    passed: int
    denied: int
    codes_issued: int


@final
class AccessControl:
    """Lets only allowed users reach a handler; refuses the others and counts them.

    Use it as [`Router`][weixin_trio.Router] middleware (``router.use(access)``: it is
    ``async (msg, call_next)``), or wrap a plain handler with `guard`. A refused
    message is acknowledged: the handler wrapper returns normally, so the monitor marks
    it done (it is not redelivered).

    Policies:

    - ``"open"``: everyone passes.
    - ``"allowlist"``: the owner, the users given in ``allow`` and the users on the
      stored allow list pass; others get ``denied_reply`` (default: nothing).
    - ``"pairing"``: as ``"allowlist"``, and an unknown user is sent a one-time pairing
      code, once: more messages from that user get no reply until the code expires
      (``code_ttl``). The owner approves it with ``weixin-trio pair approve CODE``
      (see `weixin_trio.access.AccessBook`); the user's next message passes.

    The owner is the WeChat user who scanned the account's QR code, read from the
    stored account (``Account.user_id``) unless ``owner`` is given; ``allow_owner=False``
    treats the owner like anyone else.

    Everything is kept in the store's key-value API (per account): the message's store
    (the monitor's), or ``store``.

    Args:
        policy: ``"open"``, ``"allowlist"`` or ``"pairing"``.
        allow: Users who always pass (besides the stored allow list).
        owner: The owner's user id (default: from the stored account).
        allow_owner: Whether the owner always passes.
        store: Where the lists are kept (default: the store of each message).
        code_ttl: Seconds a pairing code stays valid.
        pairing_reply: The text sent with a new code (``{code}`` is replaced).
        denied_reply: The text sent to a refused user under ``"allowlist"`` (``None``:
            no reply).
        clock: Wall-clock time, for code expiry.
    """

    def __init__(
        self,
        policy: Policy = "pairing",
        *,
        allow: Iterable[str] = (),
        owner: str | None = None,
        allow_owner: bool = True,
        store: KeyValueStore | None = None,
        code_ttl: float = 3600.0,
        pairing_reply: str = DEFAULT_PAIRING_REPLY,
        denied_reply: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if policy not in get_args(Policy):
            raise ValueError(f"unknown access policy {policy!r}: use open, allowlist or pairing")
        if not code_ttl > 0:
            raise ValueError(f"code_ttl must be positive, not {code_ttl!r}")
        if policy == "pairing" and "{code}" not in pairing_reply:
            raise ValueError("pairing_reply must contain {code}")
        self.policy: Policy = policy
        self.allow = frozenset(allow)
        self.owner = owner
        self.allow_owner = allow_owner
        self.code_ttl = code_ttl
        self.pairing_reply = pairing_reply
        self.denied_reply = denied_reply
        self._store = store
        self._clock = clock
        self._owners: dict[str, str | None] = {}
        self._issuing: set[tuple[str, str]] = set()
        self._passed = 0
        self._denied = 0
        self._codes = 0

    def __repr__(self) -> str:
        return f"<AccessControl policy={self.policy!r} denied={self._denied}>"

    def statistics(self) -> AccessStatistics:
        """Counts of passed and refused messages and of issued codes."""
        return AccessStatistics(self._passed, self._denied, self._codes)

    def book(self, message: Message) -> AccessBook:
        """The access records of ``message``'s account.

        Raises:
            NoStoreError: No ``store`` was given and the message has none.
        """
        return AccessBook(self._kv(message), message.client.account_id, clock=self._clock)

    def _kv(self, message: Message) -> KeyValueStore:
        store = self._store if self._store is not None else message.store
        if not isinstance(store, KeyValueStore):
            raise NoStoreError(
                "access control needs a store with the key-value API: this message has"
                " none (it was not delivered by a monitor); pass AccessControl(store=...)"
            )
        return store

    async def __call__(self, message: Message, call_next: CallNext) -> None:
        """Run ``call_next()`` (the rest of the chain) if the sender may talk to the bot.

        Otherwise the message is refused: counted, answered as the policy says, and
        finished (this returns normally).

        Raises:
            NoStoreError: The lists cannot be read: no store.
            StoreError: The store failed (the message is redelivered later).

        Cancellation:
            Propagates. A code whose reply was cut short is withdrawn (in a shielded
            scope with a short deadline), so the next message gets a new one.
        """
        if await self.permits(message):
            self._passed += 1
            await call_next()
            return
        self._denied += 1
        if self.policy == "pairing":
            await self._pair(message)
        elif self.denied_reply is not None:
            await message.reply(self.denied_reply)

    def guard(self, handler: Handler) -> Handler:
        """``handler`` behind this access control (for use without a Router)."""

        async def guarded(message: Message) -> None:
            await self(message, functools.partial(handler, message))

        guarded.__name__ = getattr(handler, "__name__", "guarded")
        guarded.__doc__ = getattr(handler, "__doc__", None)
        return guarded

    async def permits(self, message: Message) -> bool:
        """Whether ``message``'s sender may reach the handler.

        Cancellation:
            Propagates.
        """
        user = message.from_user_id
        if self.policy == "open" or user in self.allow:
            await trio.lowlevel.checkpoint()
            return True
        if self.allow_owner and user and user == await self._owner(message):
            return True
        return bool(user) and await self.book(message).is_allowed(user)

    async def _owner(self, message: Message) -> str | None:
        if self.owner is not None:
            await trio.lowlevel.checkpoint()
            return self.owner
        account = message.client.account_id
        if account not in self._owners:
            store = self._store if self._store is not None else message.store
            owner = None
            if isinstance(store, Store):
                for data in await store.load_accounts():
                    if data.get("account_id") == account and isinstance(data.get("user_id"), str):
                        owner = data["user_id"]
            self._owners[account] = owner
        return self._owners[account]

    async def _pair(self, message: Message) -> None:
        user = message.from_user_id
        book = self.book(message)
        key = (book.account, user)
        if not user or key in self._issuing or await book.is_denied(user):
            return
        pending = await book.pending_of(user)
        if pending is not None and not pending.expired(self._clock()):
            return  # the user has a code already: one reply per code
        self._issuing.add(key)
        try:
            pending = await book.issue(user, self.code_ttl)
            try:
                await message.reply(self.pairing_reply.format(code=pending.code))
            except BaseException:
                with trio.CancelScope(
                    shield=True, deadline=trio.current_time() + _CLEANUP_DEADLINE
                ):
                    await book.withdraw(user)
                raise
            self._codes += 1
            log.info("%s: sent a pairing code to %s", book.account, user)
        finally:
            self._issuing.discard(key)
