"""Backpressure in time: the collector's view of how fast the processor clears its backlog."""

from __future__ import annotations

from personify.events.backpressure import DrainRate


def test_no_rate_until_the_processor_was_busy_for_a_window() -> None:
    drain = DrainRate(window=0.5)
    drain.observe(0, lag=0, now=10.0)
    drain.observe(100, lag=0, now=11.0)  # idle: nothing to learn from
    assert drain.rate is None
    assert drain.limit(3000, 0.5, 1000) == 3000  # only the message cap applies


def test_rate_is_measured_while_busy_and_bounds_the_backlog_in_time() -> None:
    drain = DrainRate(window=0.5)
    drain.observe(0, lag=5000, now=0.0)
    drain.observe(1000, lag=5000, now=0.25)  # shorter than the window: not yet
    assert drain.rate is None
    drain.observe(2000, lag=5000, now=0.5)
    assert drain.rate == 4000.0
    assert drain.limit(3000, 0.5, 1000) == 2000  # half a second at 4,000/s
    drain.observe(3000, lag=5000, now=1.0)  # slowed to 2,000/s: the estimate follows
    assert drain.rate == 3000.0
    assert drain.limit(3000, 0.1, 1000) == 1000  # never below the floor
    assert drain.limit(3000, 0.0, 1000) == 3000  # 0 turns the time bound off
    drain.observe(100_000, lag=5000, now=2.0)  # fast again: capped by the message limit
    assert drain.limit(3000, 0.5, 1000) == 3000
