"""A clean stop stays clean, with real worker processes.

SIGTERM in the middle of a 1,500-message send on PostgreSQL: the worker finishes what is in hand, hands back what it had
not started, exits 0, and a second worker takes the rest at once (the lease is 300 s: nothing waits for it),
with no duplicate. A second SIGTERM (or SIGINT) during the drain stops the worker at once with exit status
128 + the signal number; the rows it still held are taken by another worker once their lease expires
(SIGINT after SIGTERM on SQLite, SIGTERM twice on PostgreSQL).
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest
from delivery.delivery_support import by_state, subscribe_many
from ops_support import publish_seed, start_worker, wait_until
from smtp_misbehaving import MisbehavingSmtp

from feedsvc.config import Settings
from feedsvc.content.model import Issue
from feedsvc.db.engine import Database

pytestmark = pytest.mark.slow
TOTAL = 1500


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # the fleet's database; SQLite below
def test_sigterm_mid_send_drains_exits_0_and_a_second_worker_takes_the_rest_at_once(
    db: Database, settings: Settings, seed_issue: Issue, tmp_path: Path
) -> None:
    addresses = set(subscribe_many(db, TOTAL, ["industry", "research"]))
    publish_seed(db, seed_issue)
    log = tmp_path / "worker.log"
    env = {"FEEDSVC_LEASE_SECONDS": "300", "FEEDSVC_SEND_RATE": "300"}
    with MisbehavingSmtp() as server:
        first = start_worker(settings, server.url, log, "--concurrency", "4", env=env)
        wait_until(lambda: server.total_accepted >= 300 or first.poll() is not None, 120, "300 messages sent")
        first.send_signal(signal.SIGTERM)
        output = first.communicate(timeout=30)[0].decode()
        after_stop = by_state(db)
        accepted_by_first = server.total_accepted
        second = start_worker(settings, server.url, log, "--concurrency", "4", env=env)
        # Before the 300 s lease could expire: nothing the first worker held waits for it (none is `sending`).
        wait_until(lambda: by_state(db) == {"sent": TOTAL}, 240, "the second worker finishing the send")
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    sent_by_first = int(re.search(r"sent (\d+),", output).group(1))  # type: ignore[union-attr]
    assert first.returncode == 0
    assert 300 <= sent_by_first < TOTAL  # stopped in the middle
    assert after_stop.get("sending", 0) == 0  # everything in hand was recorded or handed back: no lease to wait for
    assert after_stop.get("sent", 0) == sent_by_first == accepted_by_first
    assert set(server.accepted) == addresses and set(server.accepted.values()) == {1}  # 0 duplicates
    text = log.read_text(encoding="utf-8")
    assert "SIGTERM: finishing the messages in hand" in text and "Traceback" not in text


def test_a_second_signal_during_the_drain_stops_at_once_and_the_lease_gives_its_rows_back(
    db: Database, settings: Settings, seed_issue: Issue, tmp_path: Path
) -> None:
    again = signal.SIGINT if db.dialect == "sqlite" else signal.SIGTERM  # each signal once, each database once
    total = 40
    addresses = set(subscribe_many(db, total, ["industry"]))
    publish_seed(db, seed_issue)
    log = tmp_path / "worker.log"
    lease = 3
    # A slow relay (2 s a message): the drain waits on the messages in hand, and the second signal lands in it.
    with MisbehavingSmtp(reply_delay=2.0) as slow:
        worker = start_worker(settings, slow.url, log, "--concurrency", "4", env={"FEEDSVC_LEASE_SECONDS": str(lease)})
        wait_until(lambda: by_state(db).get("sending", 0) > 0, 120, "rows in hand")
        time.sleep(0.5)  # the threads are in DATA, waiting on the relay
        worker.send_signal(signal.SIGTERM)
        wait_until(lambda: "finishing the messages in hand" in log.read_text(encoding="utf-8"), 30, "the drain")
        worker.send_signal(again)
        exit_code = worker.wait(15)
        left = by_state(db)
    assert exit_code == 128 + again  # at once, and not 0: the drain did not finish
    assert left.get("sending", 0) > 0  # its rows are still leased to it
    assert f"{signal.Signals(again).name} again: stopping at once" in log.read_text(encoding="utf-8")
    with MisbehavingSmtp() as server:
        taker = start_worker(settings, server.url, log, "--concurrency", "4", env={"FEEDSVC_LEASE_SECONDS": "3"})
        wait_until(lambda: by_state(db) == {"sent": total}, 180, "another worker taking the rows after the lease")
        taker.send_signal(signal.SIGTERM)
        assert taker.wait(30) == 0
    assert set(slow.accepted) | set(server.accepted) == addresses  # everyone got it, after the lease at the latest
