"""One rate for the fleet: three worker processes under FEEDSVC_SEND_RATE=50 send at 50/s together, not 50/s each.

600 messages (issue 13 asks 1,500 in 30 s; 12 s keeps the point: per-worker rates would take 4 s). Runs on
SQLite (one machine) and PostgreSQL (the `db` fixture)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from delivery_support import subscribe_many
from smtp_misbehaving import MisbehavingSmtp
from test_delivery_crash import by_state, start_worker, wait_for

from feedsvc.config import Settings
from feedsvc.content.model import Issue
from feedsvc.db.engine import Database
from feedsvc.outbox import sends
from feedsvc.outbox.rate import FleetBucket, reserve_slots

pytestmark = pytest.mark.slow


def test_three_workers_share_one_rate(db: Database, settings: Settings, seed_issue: Issue) -> None:
    total, rate = 600, 50
    subscribe_many(db, total, ["industry"])
    with db.session() as session:
        sends.publish(session, seed_issue, Path(seed_issue.source).read_text(encoding="utf-8"))
    with MisbehavingSmtp() as server:
        workers = [start_worker(settings, server.url, "--concurrency", "4", "--rate", str(rate)) for _ in range(3)]
        try:  # timed from the first message, so the processes' start-up is not counted
            wait_for(lambda: server.total_accepted >= 1, timeout=60)
            started = time.monotonic()
            wait_for(lambda: server.total_accepted >= total, timeout=60)
            elapsed = time.monotonic() - started
        finally:
            for process in workers:
                process.terminate()
                process.wait(timeout=30)
    expected = (total - 1) / rate
    assert expected * 0.9 <= elapsed <= expected * 1.1, f"{total} messages took {elapsed:.1f} s, not {expected:.0f} s"
    assert by_state(db).get("sent") == total


def test_reservations_are_disjoint_and_follow_the_rate(db: Database) -> None:
    first, now = reserve_slots(db, rate=10, count=5)
    second, _ = reserve_slots(db, rate=10, count=5)
    assert first >= now - 0.01
    assert second - first == pytest.approx(0.5, abs=1e-6)


def test_the_bucket_paces_alone_while_the_database_is_out_of_reach() -> None:
    unreachable = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    bucket = FleetBucket(unreachable, rate=10, batch=2)
    waits = [bucket.reserve() for _ in range(4)]
    assert bucket.reservations == 0
    assert waits[1:] == pytest.approx([0.1, 0.2, 0.3], abs=0.05)
