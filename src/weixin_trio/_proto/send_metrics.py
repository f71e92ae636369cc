"""Counters of one account's sends: a latency histogram, throttles, closed windows (sans-IO).

The sender tasks and the send-window check bump these plain integers (a few hundred
nanoseconds per send: one ``bisect`` and three additions); the metrics exporter
(`weixin_trio._ops`) reads them when it is scraped. Nothing here allocates per send.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Final, final

__all__ = ["SEND_LATENCY_BUCKETS", "SendMetrics"]

#: Upper bounds (seconds) of the send-latency histogram's buckets; ``+Inf`` is implied.
#: A loopback send takes about a millisecond, the live server 0.1-1 s, and a send gives
#: up after 60 s (``SEND_DEADLINE``).
SEND_LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)


@final
class SendMetrics:
    """Send counters of one account (mutable, read at scrape time).

    Attributes:
        bounds: The histogram's finite bucket bounds (seconds, ascending).
        bucket_counts: Attempts per bucket, *not* cumulative: ``bucket_counts[i]`` counts
            latencies in ``(bounds[i-1], bounds[i]]``, the last one those above
            ``bounds[-1]``.
        latency_count: ``sendmessage`` attempts that got an answer or failed.
        latency_sum: Their total duration (seconds).
        throttled: ``ret -2`` answers.
        windows_closed: Sends refused before going out because the user's send window
            was closed.
    """

    __slots__ = (
        "bounds",
        "bucket_counts",
        "latency_count",
        "latency_sum",
        "throttled",
        "windows_closed",
    )

    def __init__(self, bounds: tuple[float, ...] = SEND_LATENCY_BUCKETS) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError("bucket bounds must be distinct and ascending")
        self.bounds = bounds
        self.bucket_counts = [0] * (len(bounds) + 1)
        self.latency_count = 0
        self.latency_sum = 0.0
        self.throttled = 0
        self.windows_closed = 0

    def observe(self, seconds: float) -> None:
        """Count one send attempt that took ``seconds``."""
        self.bucket_counts[bisect_left(self.bounds, seconds)] += 1
        self.latency_count += 1
        self.latency_sum += seconds

    def copy(self) -> SendMetrics:
        """A snapshot (for reading in another thread while sends go on)."""
        twin = SendMetrics.__new__(SendMetrics)
        twin.bounds = self.bounds
        twin.bucket_counts = list(self.bucket_counts)
        twin.latency_count = self.latency_count
        twin.latency_sum = self.latency_sum
        twin.throttled = self.throttled
        twin.windows_closed = self.windows_closed
        return twin

    def cumulative_buckets(self) -> list[tuple[float, int]]:
        """``(upper bound, attempts at or below it)`` pairs, ending with ``(inf, count)``."""
        total = 0
        out = []
        for bound, count in zip((*self.bounds, float("inf")), self.bucket_counts, strict=True):
            total += count
            out.append((bound, total))
        return out

    def __repr__(self) -> str:
        return (
            f"<SendMetrics sends={self.latency_count} throttled={self.throttled}"
            f" windows_closed={self.windows_closed}>"
        )
