"""Sans-IO lease planning: fair shares, plans, and a simulation of nodes sharing accounts.

No Redis and no event loop: the planner is a pure function, so the whole protocol of
"every node applies its plan in turn against the shared leases" is simulated with a
dict (claim succeeds only if the account is free; release frees it).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING

from hypothesis import given, strategies as st

from weixin_trio.redis import fair_share, plan_leases
from weixin_trio.redis._balance import preferred_node, weight

if TYPE_CHECKING:
    import random
    from collections.abc import Sequence

NODE_NAMES = st.text(alphabet="abcdefgh0123456789-", min_size=1, max_size=8)
NODE_SETS = st.lists(NODE_NAMES, min_size=1, max_size=6, unique=True)
ACCOUNTS = st.lists(st.sampled_from([f"acct{i}@im.bot" for i in range(40)]), unique=True)


def accounts(n: int) -> list[str]:
    return [f"{i:04x}@im.bot" for i in range(n)]


# --- fair_share -------------------------------------------------------------------------


@given(items=st.integers(0, 500), nodes=NODE_SETS)
def test_fair_shares_add_up_and_differ_by_at_most_one(items: int, nodes: list[str]) -> None:
    shares = [fair_share(items, nodes, me) for me in nodes]
    assert sum(shares) == items
    assert max(shares) - min(shares) <= 1
    assert min(shares) == items // len(nodes)


@given(items=st.integers(0, 500), nodes=NODE_SETS, me=NODE_NAMES, shuffle=st.randoms())
def test_fair_share_counts_me_and_ignores_order_and_duplicates(
    items: int, nodes: list[str], me: str, shuffle: random.Random
) -> None:
    # a node not (yet) in the heartbeat set counts itself in
    assert fair_share(items, nodes, me) == fair_share(items, [*nodes, me], me)
    mixed = [*nodes, *nodes, me]
    shuffle.shuffle(mixed)
    everyone = sorted(set(mixed))
    shares = {n: fair_share(items, nodes, n) for n in nodes}
    assert {n: fair_share(items, mixed, n) for n in nodes} == {
        n: fair_share(items, everyone, n) for n in nodes
    }
    if me in nodes:
        assert {n: fair_share(items, mixed, n) for n in nodes} == shares


def test_fair_share_gives_the_extra_to_the_first_nodes_in_sorted_order() -> None:
    assert [fair_share(5, ["c", "a", "b"], me) for me in "abc"] == [2, 2, 1]
    assert [fair_share(0, ["a", "b"], me) for me in "ab"] == [0, 0]
    assert fair_share(7, [], "solo") == 7


# --- preferred_node -----------------------------------------------------------------------


@given(item=st.text(max_size=20), nodes=NODE_SETS, shuffle=st.randoms())
def test_preferred_node_is_the_highest_weight_whatever_the_order(
    item: str, nodes: list[str], shuffle: random.Random
) -> None:
    best = preferred_node(item, nodes)
    assert best in nodes
    assert all(weight(best, item) >= weight(n, item) for n in nodes)
    mixed = list(nodes)
    shuffle.shuffle(mixed)
    assert preferred_node(item, mixed) == best


def test_weight_is_stable_across_processes() -> None:
    # blake2b, not hash(): every process (any PYTHONHASHSEED) computes the same value
    assert weight("node-a", "bot@im.bot") == weight("node-a", "bot@im.bot")
    assert weight("node-a", "bot@im.bot") != weight("node-b", "bot@im.bot")
    assert weight("a", "bc") != weight("ab", "c")  # the separator keeps pairs apart


# --- plan_leases --------------------------------------------------------------------------


def test_plan_releases_accounts_that_no_longer_exist() -> None:
    items = accounts(4)
    plan = plan_leases(items, ["me"], "me", ["gone@im.bot", items[0]])
    assert plan.target == 4
    assert plan.release == ("gone@im.bot",)
    assert set(plan.claim) == set(items[1:])


def test_plan_releases_vanished_accounts_even_below_the_target() -> None:
    plan = plan_leases([], ["me", "other"], "me", ["old1", "old2"])
    assert plan.target == 0
    assert sorted(plan.release) == ["old1", "old2"]
    assert plan.claim == ()


@given(items=ACCOUNTS, nodes=NODE_SETS, data=st.data())
def test_plan_never_claims_held_or_unknown_accounts(
    items: list[str], nodes: list[str], data: st.DataObject
) -> None:
    me = data.draw(st.sampled_from(nodes))
    held = data.draw(st.lists(st.sampled_from([*items, "ghost@im.bot"]), unique=True))
    plan = plan_leases(items, nodes, me, held)
    assert plan.target == fair_share(len(items), nodes, me)
    assert not set(plan.claim) & set(held)
    assert set(plan.claim) <= set(items)
    assert len(set(plan.claim)) == len(plan.claim)
    assert set(plan.release) <= set(held)
    assert len(set(plan.release)) == len(plan.release)
    kept = [a for a in held if a in items]
    if "ghost@im.bot" in held:
        assert plan.release[0] == "ghost@im.bot"  # vanished accounts go first
    # exactly the excess is released; claims only when below the target
    assert len(plan.release) == held.count("ghost@im.bot") + max(0, len(kept) - plan.target)
    if len(kept) < plan.target:
        assert set(plan.claim) == set(items) - set(held)
    else:
        assert plan.claim == ()


@given(items=ACCOUNTS, nodes=NODE_SETS, data=st.data())
def test_plan_below_target_claims_preferred_accounts_first(
    items: list[str], nodes: list[str], data: st.DataObject
) -> None:
    me = data.draw(st.sampled_from(nodes))
    plan = plan_leases(items, nodes, me, [])
    if plan.target == 0:
        assert plan.claim == ()
        return
    mine = [preferred_node(a, nodes) == me for a in plan.claim]
    assert mine == sorted(mine, reverse=True)  # every preferred one before any other
    assert sum(mine) == sum(preferred_node(a, nodes) == me for a in items)


def test_plan_claims_preferred_first_in_a_fixed_example() -> None:
    items = accounts(30)
    nodes = ["n1", "n2", "n3"]
    plan = plan_leases(items, nodes, "n2", [])
    preferred = {a for a in items if preferred_node(a, nodes) == "n2"}
    assert preferred  # the example is meaningful
    assert set(plan.claim[: len(preferred)]) == preferred
    assert plan.target == 10


@given(items=ACCOUNTS, nodes=NODE_SETS, data=st.data())
def test_plan_above_target_releases_accounts_preferring_others_first(
    items: list[str], nodes: list[str], data: st.DataObject
) -> None:
    me = data.draw(st.sampled_from(nodes))
    held = data.draw(st.lists(st.sampled_from(items), unique=True)) if items else []
    plan = plan_leases(items, nodes, me, held)
    released = set(plan.release)
    others = {a for a in held if preferred_node(a, nodes) != me}
    if any(preferred_node(a, nodes) == me for a in released):
        assert others <= released  # a preferred one goes only after every other one
    else:
        assert released <= others
    assert len(held) - len(released) == min(len(held), plan.target)


def test_plan_above_target_keeps_preferred_accounts_in_a_fixed_example() -> None:
    items = accounts(12)
    nodes = ["n1", "n2"]
    # n1 held everything alone; n2 joined: n1 gives up exactly the accounts preferring n2
    plan = plan_leases(items, nodes, "n1", items)
    assert plan.target == 6
    to_n2 = {a for a in items if preferred_node(a, nodes) == "n2"}
    if len(to_n2) >= 6:
        assert set(plan.release) <= to_n2
    else:
        assert to_n2 <= set(plan.release)
    assert len(plan.release) == 6
    assert plan.claim == ()


# --- the simulation -----------------------------------------------------------------------


class Cluster:
    """Shared leases (account -> owner) and the nodes that apply their plans in turn."""

    def __init__(self, items: Sequence[str], nodes: Sequence[str]) -> None:
        self.items = list(items)
        self.nodes = list(nodes)
        self.owner: dict[str, str] = {}
        self.claims = 0

    def held(self, node: str) -> list[str]:
        return [a for a, n in self.owner.items() if n == node]

    def round(self) -> None:
        live = sorted(self.nodes)
        for node in self.nodes:  # in turn, each with a fresh view of the shared leases
            held = self.held(node)
            plan = plan_leases(self.items, live, node, held)
            for name in plan.release:
                assert self.owner.pop(name) == node  # release: only the holder frees it
            active = len(held) - len(plan.release)
            for name in plan.claim:
                if active >= plan.target:
                    break
                if name not in self.owner:  # claim: NX
                    self.owner[name] = node
                    self.claims += 1
                    active += 1

    def balanced(self) -> bool:
        """Every account owned by a live node, and every node holds its fair share."""
        if set(self.owner) != set(self.items) or not set(self.owner.values()) <= set(self.nodes):
            return False
        counts = Counter(self.owner.values())
        return all(counts[n] == fair_share(len(self.items), self.nodes, n) for n in self.nodes)

    def loads(self) -> list[int]:
        counts = Counter(self.owner.values())
        return [counts[n] for n in self.nodes]

    def converge(self, max_rounds: int = 2) -> int:
        """Run rounds until balanced; returns how many it took."""
        for done in range(max_rounds + 1):
            if self.balanced():
                return done
            self.round()
        raise AssertionError(f"not balanced after {max_rounds} rounds: {self.owner}")

    def join(self, node: str) -> None:
        self.nodes.append(node)

    def leave(self, node: str) -> None:
        self.nodes.remove(node)
        for name in self.held(node):  # leaving releases every lease
            del self.owner[name]


@given(
    n_accounts=st.integers(0, 60),
    pool=st.lists(NODE_NAMES, min_size=7, max_size=9, unique=True),
    data=st.data(),
)
def test_simulated_nodes_converge_balanced_and_move_little(
    n_accounts: int, pool: list[str], data: st.DataObject
) -> None:
    first = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=6, unique=True))
    cluster = Cluster(accounts(n_accounts), first)
    cluster.converge()
    for _ in range(data.draw(st.integers(1, 5), label="events")):
        outside = [n for n in pool if n not in cluster.nodes]
        joining = len(cluster.nodes) < 6 and (
            len(cluster.nodes) == 1 or data.draw(st.booleans(), label="join?")
        )
        if joining:
            node = data.draw(st.sampled_from(outside), label="joins")
            before = dict(cluster.owner)
            claims = cluster.claims
            cluster.join(node)
            cluster.converge()
            moved = {a for a in cluster.items if before.get(a) != cluster.owner[a]}
            bound = math.ceil(n_accounts / len(cluster.nodes)) + 1
            assert len(moved) <= bound
            assert cluster.claims - claims <= bound  # no account bounced on the way
            assert len(cluster.held(node)) == fair_share(n_accounts, cluster.nodes, node)
        else:
            node = data.draw(st.sampled_from(cluster.nodes), label="leaves")
            cluster.leave(node)
            before = dict(cluster.owner)
            cluster.converge()
            # accounts of the nodes that stayed move only to even the load out
            stayed = [a for a in before if before[a] != cluster.owner[a]]
            assert len(stayed) <= len(cluster.nodes)
        assert sorted(cluster.owner) == cluster.items  # owned exactly once (a dict)
        assert max(cluster.loads()) - min(cluster.loads()) <= 1
        # once balanced, the plans are stable: nobody claims or releases any more
        claims = cluster.claims
        snapshot = dict(cluster.owner)
        cluster.round()
        assert cluster.owner == snapshot
        assert cluster.claims == claims


@given(n_accounts=st.integers(0, 60), nodes=NODE_SETS, data=st.data())
def test_simulation_converges_from_any_ownership(
    n_accounts: int, nodes: list[str], data: st.DataObject
) -> None:
    """Whatever the leases look like (a crash, a partition healing), two rounds fix it."""
    cluster = Cluster(accounts(n_accounts), nodes)
    for name in cluster.items:
        owner = data.draw(st.sampled_from([None, *nodes]))
        if owner is not None:
            cluster.owner[name] = owner
    order = data.draw(st.permutations(nodes))
    cluster.nodes = list(order)
    assert cluster.converge(max_rounds=2) <= 2
    assert cluster.balanced()
    assert max(cluster.loads()) - min(cluster.loads()) <= 1
