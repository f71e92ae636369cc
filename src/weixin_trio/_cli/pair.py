"""``weixin-trio pair``: the owner's side of access control (pairing codes, allow list).

It changes the account's key-value documents only (never the journal), so it works
while a bot runs on the same state directory or Redis: the bot sees the change with
the user's next message.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .common import EXIT_OK, CliError

if TYPE_CHECKING:
    import argparse

    from .._access.book import AccessBook

__all__ = ["ACTIONS", "add_pair_parser", "check_pair_args", "cmd_pair"]

#: ``pair`` actions and what their argument is.
ACTIONS = {"list": None, "approve": "CODE", "deny": "CODE", "allow": "USER", "revoke": "USER"}

_DESCRIPTION = """\
Who may talk to a bot that runs with AccessControl("pairing") or ("allowlist").
An unknown user who writes to the bot gets a pairing code; approve it here.

  pair list            pending codes, allowed and denied users
  pair approve CODE    allow the user who was sent CODE
  pair deny CODE       refuse that user (no new codes until allowed)
  pair allow USER      allow a user id (xxx@im.wechat) directly
  pair revoke USER     take a user off the allow list

Safe while the bot runs: it sees the change with the user's next message."""


def add_pair_parser(sub: Any, parents: list[Any]) -> argparse.ArgumentParser:
    """Add ``pair`` to the command line's subcommands."""
    import argparse

    pair: argparse.ArgumentParser = sub.add_parser(
        "pair",
        parents=parents,
        help="approve pairing codes; list, allow or revoke users",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pair.add_argument(
        "action", nargs="?", choices=list(ACTIONS), default="list", help="what to do (default list)"
    )
    pair.add_argument("target", nargs="?", metavar="CODE|USER", help="the code or user id")
    pair.add_argument("--account", default=None, help="the bot account (if several)")
    return pair


def check_pair_args(args: Any) -> str | None:
    """A usage mistake of ``pair`` (exit 2), or ``None``."""
    wanted = ACTIONS[args.action]
    if wanted is None and args.target:
        return f"pair {args.action} takes no argument"
    if wanted is not None and not (args.target or "").strip():
        return f"pair {args.action} needs a {wanted}"
    return None


async def cmd_pair(args: Any) -> int:
    """``weixin-trio pair [list|approve CODE|deny CODE|allow USER|revoke USER]``."""
    from .._access.book import AccessBook
    from .stores import _accounts, _open_store, _where

    async with _open_store(args, read_only=args.action == "list") as store:
        accounts = await _accounts(store, [args.account] if args.account else None)
        if not accounts:
            raise CliError(f"no accounts in {_where(store)}; run `weixin-trio login`")
        if len(accounts) > 1:
            names = ", ".join(a.account_id for a in accounts)
            raise CliError(f"several accounts ({names}): choose one with --account")
        account = accounts[0]
        book = AccessBook(store, account.account_id)
        if args.action == "list":
            await _list(book, account.user_id)
            return EXIT_OK
        target = args.target.strip()
        print(await _change(book, args.action, target))
    return EXIT_OK


async def _change(book: AccessBook, action: str, target: str) -> str:
    if action in ("approve", "deny"):
        pending = await (book.approve(target) if action == "approve" else book.deny(target))
        if pending is None:
            raise CliError(
                f"no pending request with code {target!r} for {book.account} (an expired"
                " code cannot be used: the user gets a new one with their next message)"
            )
        if action == "approve":
            return f"approved {pending.user_id}: their next message reaches the bot"
        return f"denied {pending.user_id}: no access and no new codes (pair allow undoes it)"
    if action == "allow":
        await book.allow(target, via="pair allow")
        return f"allowed {target}"
    if not await book.revoke(target):
        raise CliError(f"{target} is not on the allow list of {book.account}")
    return f"revoked {target}: their messages are refused from now on"


async def _list(book: AccessBook, owner: str | None) -> None:
    from .commands import _date, _table

    now = time.time()
    pending = [p for p in await book.pending() if not p.expired(now)]
    allowed = await book.allowed()
    denied = await book.denied()
    print(f"account {book.account} (owner {owner or 'unknown'}, always allowed)")
    rows: list[tuple[str, ...]]
    if pending:
        rows = [(p.code, p.user_id, _date(p.requested_at), _date(p.expires_at)) for p in pending]
        _table(("code", "user", "requested", "expires"), rows)
    else:
        print("no pending codes")
    if allowed:
        rows = [
            (user, _date(float(r.get("at", 0.0))), str(r.get("via", "-")))
            for user, r in allowed.items()
        ]
        _table(("allowed user", "since", "via"), rows)
    else:
        print("no allowed users")
    if denied:
        print("denied: " + ", ".join(denied))
