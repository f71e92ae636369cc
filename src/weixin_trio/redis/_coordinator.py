"""``LeaseCoordinator``: hold a fair share of named resources through Redis leases.

Pollers lease accounts and fan-out workers lease stream partitions; both use this
module. Two loops run every ``ttl / 3`` seconds:

- renewals: every held lease is renewed at once; on success the resource's safe end
  moves to *renewal sent + 0.8 TTL* (a trio deadline: if renewals stop succeeding, the
  resource stops before its lease can expire); a refused renewal means the lease was
  lost;
- planning: a heartbeat reads the live nodes of the group, then the resources are
  read, planned (`plan_leases`), the excess is drained and released,
  and free resources are claimed up to the fair share.

What a resource *is* lives in a `LeaseTarget`.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, final

import attrs
import trio

from .._util import unwrap_single_error
from ..store._base import StoreError
from ._balance import plan_leases

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

    from ._lease_table import Leases

__all__ = ["SAFE_FRACTION", "LeaseCoordinator", "LeaseTarget", "open_coordinator"]

log = logging.getLogger("weixin_trio.leases")

#: Part of the TTL a resource may keep running after its last renewal was *sent*.
SAFE_FRACTION = 0.8

R = TypeVar("R")


class LeaseTarget(Protocol[R]):
    """What the coordinator drives: the resources and how to run and stop them."""

    async def resources(self) -> Mapping[str, R]:
        """Every resource that should be served by some node, by name."""
        ...

    def start(self, name: str, resource: R, token: str, deadline: float) -> None:
        """Start serving a newly claimed resource until ``deadline`` (moved by extend)."""
        ...

    def extend(self, name: str, deadline: float) -> bool:
        """Move a running resource's deadline; ``False`` if it does not run any more."""
        ...

    def stop_now(self, name: str) -> None:
        """The lease is lost: stop serving at once."""
        ...

    async def drain(self, name: str) -> None:
        """Stop serving gracefully and wait until it has stopped."""
        ...

    def released(self, name: str) -> None:
        """The lease was given up (after `drain`)."""
        ...


@attrs.define
class _Held:
    token: str
    releasing: bool = False


@final
class LeaseCoordinator(Generic[R]):
    """Runs the lease rounds of one node; obtain it from `open_coordinator`."""

    def __init__(self, leases: Leases, target: LeaseTarget[R]) -> None:
        self._leases = leases
        self._target = target
        self._nursery: trio.Nursery | None = None
        self._held: dict[str, _Held] = {}
        self._idle: dict[str, float] = {}  # stopped, lease still ours: renewal time
        self._changed = trio.Event()
        self.nodes: list[str] = []
        self.lost = 0

    @property
    def node_id(self) -> str:
        """This node's id."""
        return self._leases.node_id

    @property
    def held(self) -> list[str]:
        """Names whose lease this node holds (sorted)."""
        return sorted(self._held)

    async def wait_changed(self) -> None:
        """Wait until the set of held names changes.

        Cancellation:
            Safe.
        """
        await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _safe_end(self, sent: float) -> float:
        return sent + SAFE_FRACTION * self._leases.ttl

    async def tick(self) -> None:
        """One round: renew, then plan (heartbeat, release, claim).

        Raises:
            StoreError: Redis failed (the round is retried later).
        """
        await self._renew_all()
        await self.plan()

    async def plan(self) -> None:
        """Heartbeat, restart what stopped while still ours, release and claim.

        Raises:
            StoreError: Redis failed (the round is retried later).
        """
        sent = trio.current_time()
        self.nodes = await self._leases.heartbeat()
        resources = await self._target.resources()
        for name, renewed_at in sorted(self._idle.items()):
            del self._idle[name]
            held = self._held.get(name)
            if held is not None and not held.releasing and name in resources:
                # It stopped at its safe end (renewals were late) but the lease is still
                # ours: serve it again, until the safe end of its last renewal.
                log.warning("%s: renewals of %s were late; serving it again", self.node_id, name)
                end = self._safe_end(renewed_at)
                self._target.start(name, resources[name], held.token, end)
        plan = plan_leases(resources, self.nodes, self.node_id, self._held)
        for name in plan.release:
            held = self._held[name]
            if not held.releasing and self._nursery is not None:
                held.releasing = True
                self._nursery.start_soon(self._hand_over, name, held)
        active = sum(1 for h in self._held.values() if not h.releasing)
        for name in plan.claim:
            if active >= plan.target:
                break
            token = await self._leases.claim(name)
            if token is None:
                continue
            active += 1
            self._held[name] = _Held(token)
            log.info("%s: claimed %s", self.node_id, name)
            self._target.start(name, resources[name], token, self._safe_end(sent))
            self._notify()

    async def _renew_all(self) -> None:
        """Renew every held lease at once and move each one's safe end.

        All renewals go out together, each timed from its own send, so a busy event
        loop (CPU-bound handlers) delays them once, not once per lease. Leases found
        to be someone else's are lost; resources that stopped although their lease is
        still ours are noted for `plan` to restart. If Redis failed, this raises
        after the successful renewals were applied.

        Raises:
            StoreError: A renewal failed (Redis unreachable).
        """
        renewed: dict[str, float] = {}
        lost: list[str] = []
        errors: list[StoreError] = []

        async def renew(name: str, token: str) -> None:
            sent = trio.current_time()
            try:
                ok = await self._leases.renew(name, token)
            except StoreError as exc:
                errors.append(exc)
                return
            if ok:
                renewed[name] = sent
            else:
                lost.append(name)

        async with trio.open_nursery() as nursery:
            for name, held in list(self._held.items()):
                nursery.start_soon(renew, name, held.token)
        for name in lost:
            self._lose(name)
        for name, sent in renewed.items():
            if name in self._held and not self._target.extend(name, self._safe_end(sent)):
                self._idle[name] = sent
        if errors:
            raise errors[0]

    def _lose(self, name: str) -> None:
        held = self._held.pop(name, None)
        if held is None:
            return
        self.lost += 1
        log.warning("%s: lost the lease of %s; stopping it", self.node_id, name)
        self._target.stop_now(name)
        self._target.released(name)
        self._notify()

    async def _hand_over(self, name: str, held: _Held) -> None:
        """Drain ``name``, then free its lease for another node."""
        log.info("%s: handing over %s", self.node_id, name)
        await self._target.drain(name)
        if self._held.get(name) is held:
            del self._held[name]
            self._target.released(name)
            try:
                await self._leases.release(name, held.token)
            except StoreError as exc:
                log.warning("%s: could not release %s (%s); it expires", self.node_id, name, exc)
            self._notify()

    async def run(self, interval: float) -> None:
        """Renew and plan every ``interval`` seconds, forever, in two loops.

        Renewals have a loop of their own, so slow planning (reading the resources,
        claiming, on a busy event loop) never delays them. A failed round is logged
        and retried.
        """
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._every, interval, self._renew_all, "renewal")
            nursery.start_soon(self._every, interval, self.plan, "lease round")

    async def _every(self, interval: float, step: Callable[[], Awaitable[None]], what: str) -> None:
        next_at = trio.current_time()
        while True:
            next_at += interval
            await trio.sleep_until(next_at)
            stall = trio.current_time() - next_at
            if stall > interval:
                log.warning(
                    "%s: the event loop was blocked for %.1fs: leases lapse when stalls"
                    " approach 0.8 x TTL (run CPU-bound handlers in threads or workers)",
                    self.node_id,
                    stall,
                )
            try:
                await step()
            except StoreError as exc:
                log.warning("%s: %s failed: %s", self.node_id, what, exc)
            next_at = max(next_at, trio.current_time() - interval)

    async def leave(self, drain_timeout: float) -> None:
        """Drain every held resource, release the leases and leave the node set.

        Shielded: it runs on the way out, also under cancellation.
        """
        with trio.CancelScope(shield=True):
            with trio.move_on_after(drain_timeout):
                async with trio.open_nursery() as nursery:
                    for name in list(self._held):
                        nursery.start_soon(self._target.drain, name)
            with trio.move_on_after(3.0):
                for name, held in list(self._held.items()):
                    self._target.released(name)
                    try:
                        await self._leases.release(name, held.token)
                    except StoreError as exc:
                        log.warning("%s: could not release %s: %s", self.node_id, name, exc)
                        break
                self._held.clear()
                try:
                    await self._leases.heartbeat(leaving=True)
                except StoreError as exc:
                    log.warning("%s: could not leave the node set: %s", self.node_id, exc)


@asynccontextmanager
async def open_coordinator(
    leases: Leases, target: LeaseTarget[R], *, drain_timeout: float = 30.0
) -> AsyncIterator[LeaseCoordinator[R]]:
    """Run lease rounds for ``target`` while the block runs.

    The first round runs before the block starts (a Redis failure there raises).
    Leaving the block drains every held resource (at most ``drain_timeout`` seconds),
    releases the leases and leaves the node set, so other nodes take over at once.

    Raises:
        StoreError: The first round failed (e.g. Redis unreachable).

    Cancellation:
        Cancelling the block still drains and releases (shielded, bounded).
    """
    coordinator = LeaseCoordinator(leases, target)
    with unwrap_single_error():
        try:
            await coordinator.tick()  # nothing is held yet, so it hands nothing over
            async with trio.open_nursery() as nursery:
                coordinator._nursery = nursery
                nursery.start_soon(coordinator.run, leases.ttl / 3)
                try:
                    yield coordinator
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            await coordinator.leave(drain_timeout)
