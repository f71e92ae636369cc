"""``weixin-trio mcp``: serve one stored account as MCP tools over stdio.

stdout carries the protocol, so everything else (logs, errors) goes to stderr.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .._client.open import open_client
from .._monitor.open import open_monitor
from .commands import _client_options
from .common import EXIT_OK, CliError
from .one_account import hold_one_account
from .stores import _open_store

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
    async with (
        _open_store(args) as store,
        hold_one_account(args, store, command="mcp") as account,
    ):
        inbox = await Inbox.load(store, account.account_id)

        async def journal(msg: Message) -> None:
            at = msg.create_time.timestamp() if msg.create_time is not None else None
            await inbox.add(msg.from_user_id, msg.text, msg.message_id, at)

        async with (
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
