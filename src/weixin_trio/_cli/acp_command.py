"""``weixin-trio acp -- COMMAND [ARGS...]``: each WeChat user talks to an ACP agent.

(The parser is final; ``cmd_acp`` is being written in this round.)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

log = logging.getLogger("weixin_trio.cli")

__all__ = ["APPROVALS", "add_acp_parser", "check_acp_args", "cmd_acp"]

#: ``--approve`` policies for the agent's permission requests.
APPROVALS = ("all", "read-only", "ask")


def add_acp_parser(sub: Any, parents: list[Any]) -> argparse.ArgumentParser:
    """Add ``acp`` to the command line's subcommands."""
    import argparse

    acp: argparse.ArgumentParser = sub.add_parser(
        "acp",
        parents=parents,
        help="bridge each WeChat user to an ACP agent subprocess (the acp extra)",
        description="Run COMMAND as an Agent Client Protocol agent (JSON-RPC on its"
        " stdio) and give each WeChat user one session of it.",
        usage="weixin-trio acp [options] -- COMMAND [ARGS...]",
    )
    acp.add_argument("--account", default=None, help="the account to serve (if several)")
    acp.add_argument(
        "--approve",
        choices=APPROVALS,
        default="ask",
        help="the agent's permission requests: allow all, allow reads only, or ask the"
        " user in the chat (default ask)",
    )
    acp.add_argument(
        "--workspace",
        default=None,
        help="root of the per-user working directories (default: under the state directory)",
    )
    acp.add_argument(
        "--no-pacing", action="store_true", help="switch the send governor off (fake servers)"
    )
    acp.add_argument("agent", nargs=argparse.REMAINDER, metavar="COMMAND", help="the agent")
    return acp


def check_acp_args(args: Any) -> str | None:
    """A usage mistake of ``acp`` (exit 2), or ``None``."""
    agent = list(args.agent)
    if agent[:1] == ["--"]:
        agent = agent[1:]
    args.agent = agent
    if not agent:
        return "give the agent command after --, e.g. weixin-trio acp -- my-agent --acp"
    return None


async def cmd_acp(args: Any) -> int:
    """``weixin-trio acp``: run the account's monitor; each user's messages go to an agent."""
    import signal
    from pathlib import Path

    import trio

    from .._acp.bridge import open_bridge
    from .._acp.user_agent import AcpConfig
    from .._client.open import open_client
    from .._monitor.open import open_monitor
    from .commands import _client_options
    from .common import EXIT_OK, default_state_dir
    from .one_account import hold_one_account
    from .stores import _open_store

    async with (
        _open_store(args) as store,
        hold_one_account(args, store, command="acp") as account,
    ):
        root = Path(args.workspace) if args.workspace else None
        if root is None:
            root = Path(args.state_dir or default_state_dir()) / "acp"
        config = AcpConfig(
            command=tuple(args.agent),
            store=store,
            account_id=account.account_id,
            approve=args.approve,
        )
        async with (
            open_client(
                token=account.token,
                base_url=args.base_url or account.base_url,
                account_id=account.account_id,
                markdown=False,  # the bridge filters the stream itself
                **_client_options(args),
            ) as client,
            open_bridge(config, root.resolve()) as bridge,
            open_monitor(
                client, bridge.handle, store=store, control=bridge.is_control, max_attempts=1
            ) as monitor,
        ):
            log.info(
                "acp: account %s, agent %s, workspaces under %s, approve %s",
                account.account_id,
                args.agent[0],
                root,
                args.approve,
            )
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    monitor.stop()  # drains the running prompts, then the agents stop
                    break
    return EXIT_OK
