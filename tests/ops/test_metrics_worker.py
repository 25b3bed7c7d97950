"""A real `feedsvc worker` process sends an issue to an SMTP sink; its /metrics says exactly what happened.
SQLite and PostgreSQL (the `database_url` fixture)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from delivery.delivery_support import by_state, subscribe_many
from metrics_support import run_worker, value, wait_for
from ops_support import publish_seed
from smtp_misbehaving import MisbehavingSmtp

from feedsvc.config import Settings
from feedsvc.content.model import Issue
from feedsvc.db.engine import Database

pytestmark = pytest.mark.slow


def test_sent_counter_equals_what_the_sink_received(db: Database, settings: Settings, seed_issue: Issue) -> None:
    total = 120
    subscribe_many(db, total, ["industry"])
    publish_seed(db, seed_issue)
    with MisbehavingSmtp() as sink, run_worker(settings, sink.url) as worker:
        wait_for(lambda: sink.total_accepted >= total, what="the sink to receive the issue")
        wait_for(lambda: value(worker.scrape(), "feedsvc_queue_depth", state="sending") == 0, what="recorded")
        samples = worker.scrape()
        received = sink.total_accepted
        assert worker.stop() == 0
    assert received == total
    assert value(samples, "feedsvc_messages_sent_total", kind="issue") == received
    assert value(samples, "feedsvc_queue_depth", state="queued") == 0
    assert by_state(db) == {"sent": total}
    assert value(samples, "feedsvc_messages_failed_total", kind="issue") == 0
    assert value(samples, "feedsvc_messages_retried_total", kind="issue") == 0
    assert value(samples, "feedsvc_claims_total") == total
    assert value(samples, "feedsvc_smtp_reply_seconds_count", outcome="accepted") == received
    assert value(samples, "feedsvc_lease_expiries_total") == 0


def test_failed_and_retried_counters_follow_a_misbehaving_server(
    db: Database, settings: Settings, seed_issue: Issue
) -> None:
    total = 150
    addresses = list(subscribe_many(db, total, ["industry"]))
    refused = set(addresses[:7])
    publish_seed(db, seed_issue)
    server = MisbehavingSmtp(reject=refused, temp_fail_rate=0.15, drop_rate=0.05, seed=13)
    with server, run_worker(settings, server.url, FEEDSVC_RETRY_BASE_SECONDS="0.2") as worker:
        done = total - len(refused)
        wait_for(lambda: server.total_accepted >= done, 120, "every good address to be delivered")

        def settled() -> bool:
            samples = worker.scrape()
            return all(value(samples, "feedsvc_queue_depth", state=s) == 0 for s in ("queued", "sending"))

        wait_for(settled, what="the queue to empty")
        samples = worker.scrape()
        assert worker.stop() == 0
    temporary = sum(server.temporary.values()) + server.dropped
    assert temporary > 0 and sum(server.rejected.values()) == len(refused)  # the server did misbehave
    assert value(samples, "feedsvc_messages_sent_total", kind="issue") == server.total_accepted == done
    assert value(samples, "feedsvc_messages_failed_total", kind="issue") == len(refused)
    assert value(samples, "feedsvc_messages_retried_total", kind="issue") == temporary
    assert by_state(db) == {"sent": done, "failed": len(refused)}
    assert value(samples, "feedsvc_smtp_reply_seconds_count", outcome="permanent") == len(refused)
    replies = value(samples, "feedsvc_smtp_reply_seconds_count", outcome="temporary") + value(
        samples, "feedsvc_smtp_reply_seconds_count", outcome="no_reply"
    )
    assert replies == temporary
    # The log names the failures with the server's reply, and sums each send up without a line per message.
    records = worker.records()
    failures = [r for r in records if "smtp_reply" in r]
    assert any("550" in r["smtp_reply"] and r["issue"] == seed_issue.number for r in failures)
    assert len(failures) <= 2 * 3 * 10  # distinct replies per report period, not one line per message
    summaries = [r for r in records if "sent" in r and r.get("issue") == seed_issue.number]
    assert sum(r["sent"] for r in summaries) == done
    assert sum(r["failed"] for r in summaries) == len(refused)


# A scrape of the worker's /metrics as `feedsvc worker --metrics-port` serves it, in a fresh interpreter: the queue
# depth is read in Core, so a worker that is scraped still never loads the ORM.
SCRAPE = """
import sys
from prometheus_client import generate_latest
from feedsvc.db.engine import Database
from feedsvc.ops import metrics
text = generate_latest(metrics.collector(Database(sys.argv[1]), own_process=True)).decode()
assert 'feedsvc_queue_depth{state="queued"} 3.0' in text, text
print("sqlalchemy.orm" in sys.modules)
"""


def test_a_scrape_counts_the_queue_without_loading_the_orm(db: Database, settings: Settings, seed_issue: Issue) -> None:
    subscribe_many(db, 3, ["industry"])
    publish_seed(db, seed_issue)
    done = subprocess.run(
        [sys.executable, "-c", SCRAPE, db.url], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
