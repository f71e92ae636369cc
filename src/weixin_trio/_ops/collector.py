"""``weixin_trio_*`` metrics for Prometheus, read from a running process at scrape time.

Each scrape takes a `Sample` (in the trio thread) and turns it into metric
families, so handling a message costs nothing more than the counters the monitor keeps
anyway (and the send counters: one ``bisect`` per send). `OpsCollector` is the live
custom collector (it samples at each collect, in the trio thread); the ``/metrics``
endpoint instead takes the sample in the trio thread and `render`s it in a worker
thread (`SampleCollector` in a registry of its own per scrape, never the global one),
because formatting thousands of samples takes ``prometheus_client`` a while and the
event loop should not wait for it.

Per account (label ``account``): polls and poll errors, messages accepted, handled,
failed, dead-lettered, pending and in flight, stale tokens, the send-latency
histogram, throttles (``ret -2``) and sends refused by a closed send window, whether
the account is paused and whether it is ready. In Redis mode: whether this node
(label ``node``) holds each account's lease (1, or 0 once released). A fan-out
worker: its handler counters (label ``node``), and the send metrics of the accounts
it replied for (label ``account``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry

from .readiness import account_problem
from .sample import Sample, take_sample

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from prometheus_client.metrics_core import Metric

__all__ = [
    "LeaseMemory",
    "OpsCollector",
    "SampleCollector",
    "metric_families",
    "render",
]

_ACCOUNT = ["account"]

#: ``(name without _total, help, MonitorStatistics attribute)`` of the per-account counters.
_COUNTERS = (
    ("weixin_trio_polls", "getupdates calls started.", "polls"),
    ("weixin_trio_poll_errors", "Failed polls.", "poll_failures"),
    ("weixin_trio_messages_accepted", "Messages journaled and dispatched.", "accepted"),
    ("weixin_trio_messages_handled", "Handler runs that returned normally.", "handled"),
    (
        "weixin_trio_messages_failed",
        "Handler runs that raised or timed out (every attempt counts).",
        "failed",
    ),
    (
        "weixin_trio_messages_dead_lettered",
        "Messages given up after max_attempts (kept as dead letters).",
        "dead_lettered",
    ),
    ("weixin_trio_stale_tokens", "Answers -14 (stale token) seen.", "stale_tokens"),
)
_GAUGES = (
    (
        "weixin_trio_messages_pending",
        "Accepted messages not finished (queued + running).",
        "pending",
    ),
    ("weixin_trio_messages_in_flight", "Handlers running now.", "in_flight"),
)
#: What a fan-out worker counts: ``(name, help, FanoutStatistics attribute, counter?)``.
_WORKER = (
    ("weixin_trio_worker_messages_handled", "Handler runs that returned.", "handled", True),
    ("weixin_trio_worker_messages_failed", "Handler runs that raised.", "failed", True),
    (
        "weixin_trio_worker_messages_dead_lettered",
        "Messages given up after max_attempts.",
        "dead_lettered",
        True,
    ),
    ("weixin_trio_worker_partitions_held", "Partitions this worker holds.", "partitions", False),
    (
        "weixin_trio_worker_messages_in_flight",
        "Entries read, not acknowledged.",
        "in_flight",
        False,
    ),
)


class OpsCollector(Collector):
    """The ``weixin_trio_*`` metrics of one running process, read at each collect.

    Args:
        running: What ``weixin-trio run``/``worker`` runs (see `take_sample`).
        clock: The trio clock's current time (for pauses); ``trio.current_time`` by
            default, so it must be collected in the trio thread.
    """

    def __init__(self, running: Any, *, clock: Callable[[], float] | None = None) -> None:
        self._running = running
        self._clock = clock or trio.current_time
        self.leases = LeaseMemory()

    def collect(self) -> Iterator[Metric]:
        """The metric families of one scrape."""
        sample = take_sample(self._running)
        yield from metric_families(sample, self._clock(), self.leases.update(sample))


class SampleCollector(Collector):
    """The metric families of one sample taken earlier (rendered in a worker thread)."""

    def __init__(self, sample: Sample, now: float, ever_held: frozenset[str]) -> None:
        self._args = (sample, now, ever_held)

    def collect(self) -> Iterator[Metric]:
        """The metric families of the sample."""
        return metric_families(*self._args)


class LeaseMemory:
    """The accounts this node ever held, so that a released lease reads 0, not nothing."""

    def __init__(self) -> None:
        self._held: set[str] = set()

    def update(self, sample: Sample) -> frozenset[str]:
        """Remember the accounts ``sample`` holds; every account ever held."""
        if sample.leased:
            self._held.update(a.account_id for a in sample.accounts)
        return frozenset(self._held)


def render(sample: Sample, now: float, ever_held: frozenset[str], accept: str) -> tuple[bytes, str]:
    """The exposition of one sample in the format ``accept`` asks for, and its type.

    A registry of its own per scrape (never ``prometheus_client``'s global one); safe
    to run in a worker thread, since the sample is a copy.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SampleCollector(sample, now, ever_held))
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


def metric_families(sample: Sample, now: float, ever_held: frozenset[str]) -> Iterator[Metric]:
    """Every ``weixin_trio_*`` family of ``sample`` at ``now`` (trio clock)."""
    yield from _account_metrics(sample, now)
    if sample.leased and sample.worker is None:
        yield _leases(sample, ever_held)
    if sample.worker is not None:
        yield from _worker_metrics(sample)


def _account_metrics(sample: Sample, now: float) -> Iterator[Metric]:
    stats = [(a.account_id, a.statistics) for a in sample.accounts if a.statistics]
    for name, text, attr in _COUNTERS:
        counter = CounterMetricFamily(name, text, labels=_ACCOUNT)
        for account_id, s in stats:
            counter.add_metric([account_id], getattr(s, attr))
        yield counter
    for name, text, attr in _GAUGES:
        gauge = GaugeMetricFamily(name, text, labels=_ACCOUNT)
        for account_id, s in stats:
            gauge.add_metric([account_id], getattr(s, attr))
        yield gauge
    paused = GaugeMetricFamily(
        "weixin_trio_account_paused",
        "1 while polling is paused after a stale token (-14).",
        labels=_ACCOUNT,
    )
    ready = GaugeMetricFamily(
        "weixin_trio_account_ready",
        "1 when the account polls and is not paused (see /readyz).",
        labels=_ACCOUNT,
    )
    for account in sample.accounts:
        until = account.statistics.paused_until if account.statistics else None
        is_paused = until is not None and until > now
        paused.add_metric([account.account_id], float(is_paused))
        ready.add_metric([account.account_id], float(account_problem(account, now) is None))
    yield paused
    yield ready
    yield from _send_metrics(sample)


def _leases(sample: Sample, ever_held: frozenset[str]) -> Metric:
    held = {a.account_id for a in sample.accounts}
    gauge = GaugeMetricFamily(
        "weixin_trio_lease_held",
        "1 while this node holds the account's lease (Redis mode), 0 after it let go.",
        labels=["account", "node"],
    )
    for account_id in sorted(ever_held | held):
        gauge.add_metric([account_id, sample.node_id or ""], float(account_id in held))
    return gauge


def _send_metrics(sample: Sample) -> Iterator[Metric]:
    latency = HistogramMetricFamily(
        "weixin_trio_send_latency_seconds",
        "Duration of sendmessage attempts that got an answer or failed.",
        labels=_ACCOUNT,
    )
    throttled = CounterMetricFamily(
        "weixin_trio_send_throttled",
        "Sends the server throttled (ret -2).",
        labels=_ACCOUNT,
    )
    closed = CounterMetricFamily(
        "weixin_trio_send_window_closed",
        "Sends refused before going out: the user's send window was closed.",
        labels=_ACCOUNT,
    )
    for account_id, sends in sample.send_counters():
        buckets = [(_le(bound), count) for bound, count in sends.cumulative_buckets()]
        latency.add_metric([account_id], buckets, sends.latency_sum)
        throttled.add_metric([account_id], sends.throttled)
        closed.add_metric([account_id], sends.windows_closed)
    yield latency
    yield throttled
    yield closed


def _worker_metrics(sample: Sample) -> Iterator[Metric]:
    node = [sample.node_id or ""]
    for name, text, attr, is_counter in _WORKER:
        family: Metric
        if is_counter:
            family = CounterMetricFamily(name, text, labels=["node"])
        else:
            family = GaugeMetricFamily(name, text, labels=["node"])
        family.add_metric(node, getattr(sample.worker, attr))
        yield family


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
