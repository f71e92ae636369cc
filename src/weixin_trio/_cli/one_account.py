"""The one stored account that ``mcp`` and ``acp`` serve, held so nobody else polls it."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from ..store import FileStore, StoreError, StoreLockedError
from .account_lease import account_lease
from .common import CliError
from .stores import _accounts, _where

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ..login import Account
    from .stores import AnyStore

__all__ = ["hold_one_account"]


@asynccontextmanager
async def hold_one_account(args: Any, store: AnyStore, *, command: str) -> AsyncIterator[Account]:
    """The account chosen by ``--account`` (or the only one), held while the block runs.

    With a `FileStore` it takes the account's writer lock (as ``run`` does); on Redis it
    holds the account's lease (as ``run --redis`` does), so no second process polls it.

    Raises:
        CliError: No account, several without ``--account``, or the account is in use.

    Cancellation:
        Releases the Redis lease (shielded, with a short deadline).
    """
    accounts = await _accounts(store, [args.account] if args.account else None)
    if not accounts:
        raise CliError(f"no accounts in {_where(store)}; run `weixin-trio login` first")
    if len(accounts) > 1:
        raise CliError("several accounts: choose one with --account")
    account = accounts[0]
    if isinstance(store, FileStore):
        try:
            await store.load(account.account_id)  # the writer lock, before anything runs
        except StoreLockedError as exc:
            raise CliError(f"{exc}: is a `weixin-trio run` using it?") from None
        except StoreError as exc:
            raise CliError(str(exc)) from None
        yield account
        return
    async with account_lease(store, account.account_id, command=command):
        yield account
