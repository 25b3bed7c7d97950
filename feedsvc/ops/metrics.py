"""feedsvc's Prometheus metrics, all named ``feedsvc_*``, through prometheus_client. No Flask.

The metric objects live here and the code that changes a state counts it where it changes it: the worker
(sent, failed, retried), the outbox queue (claims, lease expiries), the SMTP transport (reply latency), the
subscription workflow (sign-ups, confirmations, unsubscribes, counted when their transaction commits), the
web shell (requests). `QueueDepth` counts outbox rows per state from the database at scrape time.
`exposition` writes the text format for the web app's ``/metrics`` and the worker's ``--metrics-port``.

The metrics are made on first use (`metrics.MESSAGES_SENT` and the others, from METRICS), so prometheus_client
is imported only by a process that counts. A process that serves no metrics (`feedsvc worker` without
``--metrics-port``) calls `discard` first: every metric is then a stand-in that counts nothing, and
prometheus_client is never loaded (2 MiB of the worker's memory).

Several processes (gunicorn's workers) share their counters through prometheus_client's multiprocess mode
when ``PROMETHEUS_MULTIPROC_DIR`` is set before the first metric is made: every process writes its values to
files there, and a scrape of any one of them sums all (deploy/gunicorn.conf.py empties the folder when
gunicorn starts and marks exited workers). Importing this module opens no database; the database modules are
imported only by a scrape or a count on commit.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from feedsvc.db.engine import Database

__all__ = ["METRICS", "QueueDepth", "count_on_commit", "discard", "exposition", "multiprocess_dir", "observe_smtp"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SMTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: module attribute -> (prometheus_client class, metric name, help, labels, histogram buckets).
METRICS: dict[str, tuple[str, str, str, tuple[str, ...], tuple[float, ...]]] = {
    # -- sending (feedsvc.outbox.worker, feedsvc.outbox.queue, feedsvc.mail.transport)
    "MESSAGES_SENT": (
        "Counter",
        "feedsvc_messages_sent",
        "Messages the mail server accepted (or the mail folder stored), by outbox kind.",
        ("kind",),
        (),
    ),
    "MESSAGES_FAILED": (
        "Counter",
        "feedsvc_messages_failed",
        "Outbox rows recorded as failed (not retried), by kind.",
        ("kind",),
        (),
    ),
    "MESSAGES_RETRIED": (
        "Counter",
        "feedsvc_messages_retried",
        "Outbox rows put back in the queue after a temporary failure, by kind.",
        ("kind",),
        (),
    ),
    "SMTP_REPLY_SECONDS": (
        "Histogram",
        "feedsvc_smtp_reply_seconds",
        "Seconds from a message's MAIL FROM to the server's final reply, by outcome "
        "(accepted, temporary, permanent, no_reply: the connection broke).",
        ("outcome",),
        SMTP_BUCKETS,
    ),
    "CLAIMS": ("Counter", "feedsvc_claims", "Outbox rows claimed (leased) by workers.", (), ()),
    "LEASE_EXPIRIES": (
        "Counter",
        "feedsvc_lease_expiries",
        "Outbox rows re-queued because their worker's lease expired (the worker died).",
        (),
        (),
    ),
    # -- readers (feedsvc.subscribers, feedsvc.bounces)
    "SIGNUPS": ("Counter", "feedsvc_signups", "New addresses signed up (pending until they confirm).", (), ()),
    "CONFIRMATIONS": (
        "Counter",
        "feedsvc_confirmations",
        "Subscriptions confirmed: a pending or ended one became active.",
        (),
        (),
    ),
    "UNSUBSCRIBES": (
        "Counter",
        "feedsvc_unsubscribes",
        "Subscriptions ended by the reader, by how (one-click, unsubscribe page …).",
        ("how",),
        (),
    ),
    "BOUNCES": ("Counter", "feedsvc_bounces", "Bounces received, by kind (hard, soft, policy).", ("kind",), ()),
    "COMPLAINTS": (
        "Counter",
        "feedsvc_complaints",
        "Spam complaints (ARF reports, provider feedback) received.",
        (),
        (),
    ),
    # -- the web app (feedsvc.web.metrics)
    "HTTP_REQUESTS": (
        "Counter",
        "feedsvc_http_requests",
        "HTTP requests answered, by Flask endpoint (none: no route matched) and status.",
        ("endpoint", "status"),
        (),
    ),
    "HTTP_SECONDS": (
        "Histogram",
        "feedsvc_http_request_duration_seconds",
        "Seconds from a request's start to its response, by Flask endpoint.",
        ("endpoint",),
        HTTP_BUCKETS,
    ),
}
_making = threading.Lock()


def __getattr__(name: str) -> Any:
    """`metrics.NAME`: the metric NAME of METRICS (all of them are made, once, on the first use of any);
    `metrics.CONTENT_TYPE`: the exposition's content type."""
    if name == "CONTENT_TYPE":
        from prometheus_client import CONTENT_TYPE_LATEST

        return CONTENT_TYPE_LATEST
    if name not in METRICS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _making:
        if name not in globals():
            import prometheus_client

            for attribute, (kind, metric, text, labels, buckets) in METRICS.items():
                options: dict[str, Any] = {"buckets": buckets} if buckets else {}
                globals()[attribute] = getattr(prometheus_client, kind)(metric, text, labels, **options)
    return globals()[name]


class Discarded:
    """A metric that counts nothing: what every metric is in a process that serves none (`discard`)."""

    def labels(self, *_values: str, **_named: str) -> Discarded:
        return self

    def inc(self, amount: float = 1.0) -> None:
        """Count nothing."""

    def observe(self, amount: float) -> None:
        """Record nothing."""


def discard() -> None:
    """This process serves no metrics: what it counts from now on is dropped, and prometheus_client stays unloaded."""
    with _making:
        for attribute in METRICS:
            globals().setdefault(attribute, Discarded())


def observe_smtp(started: float, outcome: str) -> None:
    """Record one SMTP transaction begun at `started` (time.perf_counter) and ended with `outcome`."""
    histogram = globals().get("SMTP_REPLY_SECONDS") or __getattr__("SMTP_REPLY_SECONDS")  # no lock once made
    histogram.labels(outcome).observe(time.perf_counter() - started)


# -- counting what a transaction changed, once it commits

_PENDING = "feedsvc.ops.metrics.pending"
_listening = False


def count_on_commit(session: Session, counter: Any, amount: float = 1.0) -> None:
    """Increment `counter` (a metric or a labelled child) when `session`'s transaction commits; never on rollback."""
    _listen()
    session.info.setdefault(_PENDING, []).append((counter, amount))


def _listen() -> None:
    global _listening
    if _listening:
        return
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    def committed(session: Session) -> None:
        for counter, amount in session.info.pop(_PENDING, ()):
            counter.inc(amount)

    def rolled_back(session: Session) -> None:
        session.info.pop(_PENDING, None)

    event.listen(Session, "after_commit", committed)
    event.listen(Session, "after_rollback", rolled_back)
    _listening = True


# -- the queue, counted at scrape time


class QueueDepth:
    """``feedsvc_queue_depth{state}``: outbox rows queued and sending, counted in the database at every scrape.

    Only the two live states: each count reads its partial index (ix_outbox_claim, ix_outbox_lease), so a
    scrape stays cheap however many rows were sent; what left the queue is in the ``feedsvc_messages_*``
    counters. A scrape while the database is down leaves the metric out (alert on its absence).
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        from feedsvc.db.tables import QUEUED, SENDING

        family = GaugeMetricFamily(
            "feedsvc_queue_depth", "Outbox rows queued or sending, counted at scrape time.", labels=["state"]
        )
        try:
            with self.db.transaction(readonly=True) as connection:  # Core: a scrape of a worker loads no ORM
                sqlite = self.db.dialect == "sqlite"
                for state, index in ((QUEUED, "ix_outbox_claim"), (SENDING, "ix_outbox_lease")):
                    # SQLite's planner would scan a covering index of every row; the partial one holds only these.
                    hint = f" INDEXED BY {index}" if sqlite else ""
                    counted = f"SELECT count(*) FROM outbox{hint} WHERE state = '{state}'"  # noqa: S608 - constants
                    family.add_metric([state], int(connection.scalar(text(counted)) or 0))
        except SQLAlchemyError:
            return
        yield family

    def describe(self) -> Iterable[Any]:
        return []  # collected live only: registering it must not query the database


# -- exposition


def multiprocess_dir() -> str:
    """The folder of prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR), or '' when off."""
    return os.environ.get(MULTIPROC_ENV, "")


class _Joined:
    """Several collectors scraped as one (prometheus_client asks a collector for `collect` only)."""

    def __init__(self, parts: Iterable[Any]) -> None:
        self.parts = list(parts)

    def collect(self) -> Iterator[Any]:
        for part in self.parts:
            yield from part.collect()


def collector(db: Database | None, *, own_process: bool = False) -> Any:
    """What a scrape reads: this process's metrics (or, in multiprocess mode, every process's), plus the
    queue depth of `db`. `own_process` reads this process only even in multiprocess mode (the worker)."""
    from prometheus_client import REGISTRY

    __getattr__("CLAIMS")  # the metrics exist (at zero) before the first scrape, not only once counted
    parts: list[Any] = [REGISTRY]
    if multiprocess_dir() and not own_process:
        from prometheus_client import CollectorRegistry, multiprocess

        summed = CollectorRegistry()
        multiprocess.MultiProcessCollector(summed)
        parts = [summed]
    if db is not None:
        parts.append(QueueDepth(db))
    return _Joined(parts)


def exposition(db: Database | None) -> bytes:
    """The text exposition of `collector(db)`, for a /metrics answer (content type CONTENT_TYPE)."""
    from prometheus_client import generate_latest

    return generate_latest(collector(db))
