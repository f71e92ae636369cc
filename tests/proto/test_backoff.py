from __future__ import annotations

import random

import pytest

from weixin_trio import Backoff


def test_reference_schedule() -> None:
    backoff = Backoff()
    delays = [backoff.next_delay() for _ in range(7)]
    assert delays == [2.0, 2.0, 30.0, 2.0, 2.0, 30.0, 2.0]
    assert backoff.consecutive_failures == 7


def test_reset_starts_a_new_streak() -> None:
    backoff = Backoff()
    backoff.next_delay()
    backoff.next_delay()
    backoff.reset()
    assert backoff.consecutive_failures == 0
    assert [backoff.next_delay() for _ in range(3)] == [2.0, 2.0, 30.0]


def test_configurable() -> None:
    backoff = Backoff(retry_delay=0.5, backoff_delay=10.0, max_failures=2)
    assert [backoff.next_delay() for _ in range(4)] == [0.5, 10.0, 0.5, 10.0]


def test_jitter_stays_in_bounds_and_is_seeded() -> None:
    a = Backoff(jitter=0.25, rng=random.Random(7))
    b = Backoff(jitter=0.25, rng=random.Random(7))
    seq_a = [a.next_delay() for _ in range(30)]
    assert seq_a == [b.next_delay() for _ in range(30)]
    for i, delay in enumerate(seq_a):
        base = 30.0 if i % 3 == 2 else 2.0
        assert base * 0.75 <= delay <= base * 1.25
    assert len(set(seq_a)) > 3


@pytest.mark.parametrize(
    "kwargs", [{"jitter": 1.0}, {"jitter": -0.1}, {"max_failures": 0}, {"retry_delay": -1}]
)
def test_rejects_bad_configuration(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        Backoff(**kwargs)  # type: ignore[arg-type]
