"""The lease rounds without Redis: a stub ``Leases`` and a recording target (autojump)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pytest
import trio

from weixin_trio.redis import LeaseCoordinator
from weixin_trio.redis._coordinator import SAFE_FRACTION
from weixin_trio.store import StoreUnavailableError

if TYPE_CHECKING:
    from weixin_trio.redis import Leases

TTL = 3.0


class StubLeases:
    """Leases that always succeed, except for the names marked stolen or failing."""

    node_id = "me"
    ttl = TTL

    def __init__(self) -> None:
        self.stolen: set[str] = set()
        self.failing: set[str] = set()
        self.released: list[str] = []

    async def heartbeat(self, *, leaving: bool = False) -> list[str]:
        await trio.lowlevel.checkpoint()
        return [] if leaving else ["me"]

    async def claim(self, name: str) -> str | None:
        await trio.lowlevel.checkpoint()
        return f"token-{name}"

    async def renew(self, name: str, token: str) -> bool:
        await trio.sleep(0.1)  # one round trip
        if name in self.failing:
            raise StoreUnavailableError("Redis unavailable while renewing")
        return name not in self.stolen

    async def release(self, name: str, token: str) -> bool:
        await trio.lowlevel.checkpoint()
        self.released.append(name)
        return True


class Target:
    """Records what the coordinator asks for."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.running: dict[str, float] = {}  # name -> deadline
        self.started: list[tuple[str, float]] = []
        self.stopped: list[str] = []

    async def resources(self) -> dict[str, int]:
        await trio.lowlevel.checkpoint()
        return {name: i for i, name in enumerate(self.names)}

    def start(self, name: str, resource: int, token: str, deadline: float) -> None:
        self.running[name] = deadline
        self.started.append((name, deadline))

    def extend(self, name: str, deadline: float) -> bool:
        if name not in self.running:
            return False
        self.running[name] = deadline
        return True

    def stop_now(self, name: str) -> None:
        self.running.pop(name, None)
        self.stopped.append(name)

    async def drain(self, name: str) -> None:
        await trio.lowlevel.checkpoint()
        self.running.pop(name, None)

    def released(self, name: str) -> None:
        pass


def coordinator(leases: StubLeases, target: Target) -> LeaseCoordinator[int]:
    return LeaseCoordinator(cast("Leases", leases), cast("Any", target))


async def test_claims_then_each_renewal_moves_the_safe_end_from_its_own_send(
    autojump_clock: trio.abc.Clock,
) -> None:
    leases, target = StubLeases(), Target(["a", "b"])
    coord = coordinator(leases, target)
    await coord.tick()
    assert coord.held == ["a", "b"]
    assert sorted(target.started) == [("a", SAFE_FRACTION * TTL), ("b", SAFE_FRACTION * TTL)]
    await trio.sleep(1.0)
    await coord.tick()
    # both renewals went out together at t=1 (not one round trip after the other)
    assert target.running == {"a": 1.0 + SAFE_FRACTION * TTL, "b": 1.0 + SAFE_FRACTION * TTL}


async def test_a_stopped_resource_restarts_with_the_safe_end_of_its_renewal(
    autojump_clock: trio.abc.Clock,
) -> None:
    leases, target = StubLeases(), Target(["a"])
    coord = coordinator(leases, target)
    await coord.tick()
    target.running.clear()  # it reached its safe end meanwhile
    await trio.sleep(10.0)
    await coord._renew_all()  # the lease is still ours, renewed at t=10
    await trio.sleep(1.5)
    await coord.plan()
    # served again until 10 + 0.8 TTL, not until the plan's time + 0.8 TTL
    name, deadline = target.started[-1]
    assert name == "a"
    assert deadline == pytest.approx(10.0 + SAFE_FRACTION * TTL)


async def test_a_stolen_lease_stops_at_once_and_counts(autojump_clock: trio.abc.Clock) -> None:
    leases, target = StubLeases(), Target(["a", "b"])
    coord = coordinator(leases, target)
    await coord.tick()
    leases.stolen.add("a")
    await coord._renew_all()
    assert target.stopped == ["a"]
    assert coord.lost == 1
    assert coord.held == ["b"]


async def test_a_failed_renewal_raises_after_the_others_were_extended(
    autojump_clock: trio.abc.Clock,
) -> None:
    leases, target = StubLeases(), Target(["a", "b"])
    coord = coordinator(leases, target)
    await coord.tick()
    await trio.sleep(1.0)
    leases.failing.add("a")
    with pytest.raises(StoreUnavailableError):
        await coord._renew_all()
    assert target.running["b"] == pytest.approx(1.0 + SAFE_FRACTION * TTL)
    assert target.running["a"] == pytest.approx(SAFE_FRACTION * TTL)  # not extended
    assert coord.held == ["a", "b"]  # unknown, not lost: its deadline decides


async def test_leaving_drains_then_releases_everything(autojump_clock: trio.abc.Clock) -> None:
    leases, target = StubLeases(), Target(["a", "b"])
    coord = coordinator(leases, target)
    await coord.tick()
    await coord.leave(drain_timeout=5.0)
    assert target.running == {}
    assert sorted(leases.released) == ["a", "b"]
    assert coord.held == []
