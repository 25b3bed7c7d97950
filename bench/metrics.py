"""Benchmark: what the metrics cost a message, and what a scrape costs, each against a baseline of the same run.

* per message: the counting the send path does (sent counter, SMTP histogram) against one SMTP transaction
  to an aiosmtpd sink on loopback (the cheapest real relay there is);
* per scrape: `/metrics` text (prometheus_client and the outbox GROUP BY on SQLite with `ROWS` outbox rows)
  against a scrape of prometheus_client's metrics alone.

Run: .venv/bin/python bench/metrics.py [ROWS]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from prometheus_client import generate_latest  # noqa: E402
from smtp_support import SmtpSink  # noqa: E402
from sqlalchemy import text  # noqa: E402

from feedsvc.db.engine import Database  # noqa: E402
from feedsvc.mail.transport import Envelope, SmtpTransport  # noqa: E402
from feedsvc.ops import metrics  # noqa: E402


def per_call(step: Callable[[], object], count: int) -> float:
    """Median seconds per call over 5 rounds of `count` calls."""
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(count):
            step()
        rounds.append((time.perf_counter() - start) / count)
    return statistics.median(rounds)


def count_one_message() -> None:
    started = time.perf_counter()
    metrics.MESSAGES_SENT.labels("issue").inc()
    metrics.observe_smtp(started, "accepted")


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    data = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: x\r\nMessage-ID: <x@example.org>\r\n\r\nhello\r\n"
    envelope = Envelope("a@example.org", ("b@example.org",), "<x@example.org>")
    with SmtpSink() as sink, SmtpTransport(sink.url) as transport:
        smtp = per_call(lambda: transport.send(envelope, data), 200)
    counting = per_call(count_one_message, 20_000)
    print(
        f"per message: counting {counting * 1e6:.2f} µs, one loopback SMTP transaction {smtp * 1e6:.0f} µs, "
        f"ratio {counting / smtp:.4f}"
    )
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{Path(folder) / 'bench.db'}")
        db.upgrade()
        with db.session() as session:
            session.execute(
                text(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows) "
                    "INSERT INTO outbox (kind, priority, recipient, state, attempts, next_attempt_at, created_at, "
                    "updated_at) SELECT 'issue', 100, 'r' || i || '@example.org', "
                    "CASE WHEN i % 10 = 0 THEN 'queued' ELSE 'sent' END, 1, "
                    "'2026-01-01 00:00:00', '2026-01-01 00:00:00', '2026-01-01 00:00:00' FROM n"
                ),
                {"rows": rows},
            )
        bare = per_call(lambda: generate_latest(metrics.collector(None, own_process=True)), 50)  # type: ignore[arg-type]
        full = per_call(lambda: metrics.exposition(db), 10)
        db.dispose()
    print(
        f"per scrape with {rows} outbox rows: {full * 1e3:.1f} ms, prometheus_client alone {bare * 1e3:.2f} ms, "
        f"ratio {full / bare:.1f}"
    )


if __name__ == "__main__":
    main()
