"""A long database outage: the backoff stays at its longest wait however many tries have failed (no overflow)."""

from __future__ import annotations

from feedsvc.ops.outage import DatabaseOutage


def test_the_wait_stays_at_its_longest_after_thousands_of_failed_tries() -> None:
    outage = DatabaseOutage()
    waits = [outage.failed("claim", OSError("connection refused")) for _ in range(5000)]
    assert waits[:5] == [0.5, 1.0, 2.0, 4.0, 5.0]
    assert set(waits[4:]) == {DatabaseOutage.LONGEST_WAIT}
    outage.succeeded()
    assert outage.failed("claim", OSError("connection refused")) == DatabaseOutage.FIRST_WAIT
