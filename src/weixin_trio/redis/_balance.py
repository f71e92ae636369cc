"""Sans-IO lease planning: which accounts a process should claim or release.

Every live process runs the same pure function on the same inputs (the sorted account
ids and the sorted live process ids), so they agree on each one's fair share without
talking to each other. Rendezvous hashing (highest random weight) gives every account
a preferred process: a process first claims the accounts that prefer it and gives up
those that prefer another, so accounts settle where they belong and move as little as
possible when a process joins or leaves.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

__all__ = ["LeasePlan", "fair_share", "plan_leases", "preferred_node", "weight"]


def weight(node: str, item: str) -> int:
    """The rendezvous weight of ``item`` on ``node`` (stable across processes)."""
    digest = hashlib.blake2b(f"{node}\x00{item}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def preferred_node(item: str, nodes: Sequence[str]) -> str:
    """The node ``item`` prefers (the highest weight)."""
    return max(nodes, key=lambda node: (weight(node, item), node))


def fair_share(items: int, nodes: Sequence[str], me: str) -> int:
    """How many of ``items`` the node ``me`` should hold.

    ``items // len(nodes)`` each, and one more for the first ``items % len(nodes)``
    nodes in sorted order, so the shares always add up to ``items``.
    """
    ordered = sorted(set(nodes) | {me})
    base, extra = divmod(items, len(ordered))
    return base + (1 if ordered.index(me) < extra else 0)


@attrs.frozen
class LeasePlan:
    """What one planning round decided.

    Attributes:
        target: This node's fair share.
        claim: Accounts to try to claim, best first (stop once ``target`` are held).
        release: Held accounts to give up (drained first, then released).
    """

    target: int
    claim: tuple[str, ...]
    release: tuple[str, ...]


def plan_leases(
    items: Collection[str], nodes: Sequence[str], me: str, held: Collection[str]
) -> LeasePlan:
    """Plan one round for ``me``, which holds ``held`` among ``items``.

    Held accounts that no longer exist are released first. Above the fair share, the
    accounts that prefer another node are released; below it, unheld accounts are
    claimed, those that prefer ``me`` first.
    """
    live = sorted(set(nodes) | {me})
    wanted = set(items)
    target = fair_share(len(wanted), live, me)
    gone = sorted(a for a in held if a not in wanted)
    kept = [a for a in held if a in wanted]
    # Release the accounts this node cares least about: preferring others, low weight.
    kept.sort(key=lambda a: (preferred_node(a, live) == me, weight(me, a)))
    excess = max(0, len(kept) - target)
    release = tuple(gone + kept[:excess])
    claim: tuple[str, ...] = ()
    if len(kept) < target:
        candidates = sorted(
            (a for a in wanted if a not in held),
            key=lambda a: (preferred_node(a, live) != me, -weight(me, a)),
        )
        claim = tuple(candidates)
    return LeasePlan(target, claim, release)
