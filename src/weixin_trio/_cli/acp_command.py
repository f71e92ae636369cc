"""``weixin-trio acp -- COMMAND [ARGS...]``: each WeChat user talks to an ACP agent.

(The parser is final; ``cmd_acp`` is being written in this round.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .common import CliError

if TYPE_CHECKING:
    import argparse

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
    """``weixin-trio acp``."""
    raise CliError("acp: not built yet")
