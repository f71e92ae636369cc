"""A snapshot of what a running ``run`` or ``worker`` knows, taken at scrape time.

`take_sample` reads what exists already (in the trio thread; the sample is immutable,
so it can be rendered in another thread): each running monitor's
[`MonitorStatistics`][weixin_trio.MonitorStatistics], each client's send counters
(`SendMetrics`), the leases a Redis-mode process holds, a fan-out
worker's counters. It costs nothing between scrapes.
"""

from __future__ import annotations

from typing import Any

import attrs

from .._client.state import send_metrics_of
from .._monitor.accounts import AccountRunner
from .._monitor.values import MonitorStatistics
from .._proto.send_metrics import SendMetrics

__all__ = ["AccountSample", "Sample", "take_sample"]


@attrs.frozen
class AccountSample:
    """One account of the process.

    Attributes:
        account_id: The account.
        statistics: Its monitor's statistics, or ``None`` while the monitor (re)starts.
        sends: A copy of its client's send counters, or ``None``.
    """

    account_id: str
    statistics: MonitorStatistics | None
    sends: SendMetrics | None


@attrs.frozen
class Sample:
    """What the process reports at one scrape.

    Attributes:
        accounts: The accounts this process runs (in Redis mode: those it holds).
        node_id: This process's id in Redis mode, else ``None``.
        leased: Whether accounts are leased (Redis mode).
        worker: A fan-out worker's statistics (``weixin_trio.redis.FanoutStatistics``).
        worker_sends: A fan-out worker's send counters per account (copies).
    """

    accounts: tuple[AccountSample, ...] = ()
    node_id: str | None = None
    leased: bool = False
    worker: Any = None
    worker_sends: tuple[tuple[str, SendMetrics], ...] = ()

    def send_counters(self) -> list[tuple[str, SendMetrics]]:
        """Each account's send counters: its monitor's client's, or a worker's client's."""
        own = [(a.account_id, a.sends) for a in self.accounts if a.sends is not None]
        return own + list(self.worker_sends)


def take_sample(running: Any, *, sends: bool = True) -> Sample:
    """Read ``running``: an `AccountRunner`, leased accounts, or a fan-out worker.

    Args:
        running: What ``run``/``worker`` runs.
        sends: Also copy the send counters (``/readyz`` does not need them).
    """
    if isinstance(running, AccountRunner):
        return Sample(_accounts(running, running.account_ids, sends))
    runner = getattr(running, "runner", None)
    if isinstance(runner, AccountRunner):  # LeasedAccounts: the accounts it holds
        held = running.account_ids if running.coordinator is not None else []
        return Sample(_accounts(runner, held, sends), node_id=running.node_id, leased=True)
    if hasattr(running, "statistics"):  # a fan-out worker
        node = getattr(running, "node_id", None) or None
        clients = getattr(running, "clients", {}) if sends else {}
        copies = tuple((k, send_metrics_of(c).copy()) for k, c in sorted(clients.items()))
        return Sample(node_id=node, leased=True, worker=running.statistics(), worker_sends=copies)
    return Sample()


def _accounts(
    runner: AccountRunner, account_ids: list[str], sends: bool
) -> tuple[AccountSample, ...]:
    out = []
    for account_id in account_ids:
        monitor = runner.monitor(account_id)
        if monitor is None:
            out.append(AccountSample(account_id, None, None))
        else:
            copy = send_metrics_of(monitor.client).copy() if sends else None
            out.append(AccountSample(account_id, monitor.statistics(), copy))
    return tuple(out)
