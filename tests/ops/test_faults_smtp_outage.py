"""The mail relay gone in the middle of a send, for longer than several retry intervals, under a real worker on
a real PostgreSQL: the messages are retried, delivered once the relay is back, and none is failed.

The retry delays are set short through the settings (FEEDSVC_RETRY_BASE_SECONDS=1, doubling, capped at 3 s),
so an outage of 12 s spans four or more retry intervals while the test stays short; with the defaults (60 s
doubling) the same holds for a relay gone for many minutes.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from builders import make_settings
from delivery.delivery_support import by_state, subscribe_many
from ops_support import publish_seed, start_worker, wait_until
from smtp_misbehaving import MisbehavingSmtp
from sqlalchemy import func, select

from feedsvc.content.model import Issue
from feedsvc.db.engine import Database
from feedsvc.db.models import OutboxMessage

pytestmark = pytest.mark.slow
TOTAL = 300
OUTAGE_SECONDS = 12.0
RETRY = {
    "FEEDSVC_RETRY_BASE_SECONDS": "1",
    "FEEDSVC_RETRY_FACTOR": "2",
    "FEEDSVC_RETRY_MAX_SECONDS": "3",
    "FEEDSVC_RETRY_DEADLINE_SECONDS": "600",
}


def test_a_relay_outage_mid_send_is_retried_and_delivered_when_it_returns(
    private_url: str, private_db: Database, tmp_path: Path, seed_issue: Issue
) -> None:
    settings = make_settings(tmp_path, private_url)
    addresses = set(subscribe_many(private_db, TOTAL, ["industry"]))
    publish_seed(private_db, seed_issue)
    log = tmp_path / "worker.log"
    env = {"FEEDSVC_SEND_RATE": "50", "FEEDSVC_LEASE_SECONDS": "60", **RETRY}
    first = MisbehavingSmtp().start()
    worker = start_worker(settings, first.url, log, "--concurrency", "4", env=env)
    second: MisbehavingSmtp | None = None
    try:
        wait_until(lambda: first.total_accepted >= 75 or worker.poll() is not None, 180, "75 messages sent")
        first.stop()  # the relay is gone: connections refused
        time.sleep(OUTAGE_SECONDS)
        during = by_state(private_db)
        assert worker.poll() is None
        second = MisbehavingSmtp(port=first.port).start()  # back, where it was
        wait_until(lambda: by_state(private_db) == {"sent": TOTAL}, 240, "every row sent")
    finally:
        worker.send_signal(signal.SIGTERM)
        exit_code = worker.wait(30)
        if second is not None:
            second.stop()
    with private_db.session(readonly=True) as session:
        most_attempts = session.scalar(select(func.max(OutboxMessage.attempts)))
        retried = session.scalar(select(func.count()).where(OutboxMessage.attempts > 1))
    assert second is not None
    accepted = first.accepted + second.accepted
    print(
        f"\nrelay outage: before {first.total_accepted}, after {second.total_accepted}, during {during}, "
        f"rows retried {retried}, most attempts {most_attempts}"
    )
    assert exit_code == 0
    assert first.total_accepted < TOTAL and second.total_accepted > 0  # the outage fell in the middle
    assert during.get("failed", 0) == 0 and by_state(private_db) == {"sent": TOTAL}  # none failed, none stuck
    assert set(accepted) == addresses  # delivered, everyone
    assert most_attempts is not None and most_attempts >= 3  # retried across several intervals of the outage
    assert retried and retried > 0
    assert "Traceback" not in log.read_text(encoding="utf-8")
