"""The sans-IO send counters: bucket edges, cumulative buckets."""

from __future__ import annotations

import pytest

from weixin_trio._proto.send_metrics import SendMetrics


def test_buckets_hold_values_up_to_their_bound() -> None:
    metrics = SendMetrics((0.1, 1.0))
    for seconds in (0.0, 0.1, 0.5, 1.0, 1.5, 100.0):
        metrics.observe(seconds)
    assert metrics.bucket_counts == [2, 2, 2]
    assert metrics.cumulative_buckets() == [(0.1, 2), (1.0, 4), (float("inf"), 6)]
    assert metrics.latency_count == 6
    assert metrics.latency_sum == pytest.approx(103.1)
    assert "sends=6" in repr(metrics)


def test_bounds_must_ascend() -> None:
    with pytest.raises(ValueError, match="ascending"):
        SendMetrics((1.0, 0.5))
    with pytest.raises(ValueError, match="ascending"):
        SendMetrics(())
