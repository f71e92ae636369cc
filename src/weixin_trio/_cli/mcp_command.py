"""``weixin-trio mcp``: serve one stored account as MCP tools over stdio.

stdout carries the protocol, so everything else (logs, errors) goes to stderr.
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from .._client.open import open_client
from .._monitor.open import open_monitor
from ..store import FileStore, StoreError, StoreLockedError
from .account_lease import account_lease
from .commands import _client_options
from .common import EXIT_OK, CliError
from .stores import _accounts, _open_store, _where

if TYPE_CHECKING:
    from .._client.message import Message

log = logging.getLogger("weixin_trio.cli")


async def cmd_mcp(args: Any) -> int:
    """``weixin-trio mcp``: the account's monitor fills the inbox; stdin EOF stops."""
    try:
        from .._mcp.inbox import Inbox
        from .._mcp.server import build_server, serve_stdio
    except ImportError:
        raise CliError("mcp needs the mcp extra: pip install 'weixin-trio[mcp]'") from None
    async with _open_store(args) as store:
        accounts = await _accounts(store, [args.account] if args.account else None)
        if not accounts:
            raise CliError(f"no accounts in {_where(store)}; run `weixin-trio login` first")
        if len(accounts) > 1:
            raise CliError("several accounts: choose one with --account")
        account = accounts[0]
        one_poller: AbstractAsyncContextManager[object] = nullcontext()
        if isinstance(store, FileStore):
            try:
                await store.load(account.account_id)  # the writer lock, before anything runs
            except StoreLockedError as exc:
                raise CliError(f"{exc}: is a `weixin-trio run` using it?") from None
            except StoreError as exc:
                raise CliError(str(exc)) from None
        else:  # Redis: the account's lease, as `run --redis` takes it
            one_poller = account_lease(store, account.account_id, command="mcp")
        inbox = await Inbox.load(store, account.account_id)

        async def journal(msg: Message) -> None:
            at = msg.create_time.timestamp() if msg.create_time is not None else None
            await inbox.add(msg.from_user_id, msg.text, msg.message_id, at)

        async with (
            one_poller,
            open_client(
                token=account.token,
                base_url=args.base_url or account.base_url,
                account_id=account.account_id,
                **_client_options(args),
            ) as client,
            open_monitor(client, journal, store=store),
        ):
            log.info(
                "mcp: account %s, %d unread, %d dropped",
                account.account_id,
                inbox.unread,
                inbox.dropped,
            )
            await serve_stdio(build_server(client, inbox))
    return EXIT_OK
