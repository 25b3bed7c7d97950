"""PostgreSQL restarted in the middle of a send (stop, a few seconds, start), under a real worker process: the
worker rides it out, says so in two log lines, and the send ends complete with no duplicates beyond the
rows it held when the database went away."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from builders import make_settings
from delivery.delivery_support import by_state, subscribe_many
from ops_support import publish_seed, start_worker, wait_until
from pg_cluster import PrivateCluster
from smtp_misbehaving import MisbehavingSmtp

from feedsvc.content.model import Issue
from feedsvc.db.engine import Database

pytestmark = pytest.mark.slow
TOTAL = 1000
OUTAGE_SECONDS = 3.0


def test_a_postgres_restart_mid_send_loses_nothing_and_the_log_says_what_happened(
    pg_cluster: PrivateCluster, private_url: str, private_db: Database, tmp_path: Path, seed_issue: Issue
) -> None:
    settings = make_settings(tmp_path, private_url)
    addresses = set(subscribe_many(private_db, TOTAL, ["industry"]))
    publish_seed(private_db, seed_issue)
    log = tmp_path / "worker.log"
    # At most 150/s: the send lasts 6.7 s or more, so the restart falls in its middle; the lease outlasts the outage.
    env = {"FEEDSVC_SEND_RATE": "150", "FEEDSVC_LEASE_SECONDS": "60", "FEEDSVC_RETRY_BASE_SECONDS": "1"}
    with MisbehavingSmtp() as server:
        worker = start_worker(settings, server.url, log, "--concurrency", "4", env=env)
        try:
            wait_until(lambda: server.total_accepted >= 200 or worker.poll() is not None, 180, "200 messages sent")
            held = by_state(private_db).get("sending", 0)
            pg_cluster.stop()  # fast shutdown: the worker's connections are cut
            at_stop = server.total_accepted
            time.sleep(OUTAGE_SECONDS)
            sent_while_away = server.total_accepted - at_stop
            assert worker.poll() is None, "the worker exited while the database was away"
            pg_cluster.start()
            wait_until(lambda: by_state(private_db) == {"sent": TOTAL}, 240, "every row sent")
            assert worker.poll() is None
        finally:
            worker.send_signal(signal.SIGTERM)
            exit_code = worker.wait(30)
    text = log.read_text(encoding="utf-8")
    print(f"\nheld at the stop {held}, sent while away {sent_while_away}, duplicates {server.total_accepted - TOTAL}")
    assert exit_code == 0
    assert at_stop < TOTAL  # the restart really fell in the middle of the send
    assert set(server.accepted) == addresses  # every recipient got the issue
    assert by_state(private_db) == {"sent": TOTAL}  # nothing left queued or sending
    assert server.total_accepted - TOTAL <= held  # duplicates: at most what was in flight
    assert text.count("database unreachable") == 1 and text.count("database is back after") == 1
    assert "Traceback" not in text
    assert "alembic" not in text.lower()  # the operator's log: no migration-tool chatter
