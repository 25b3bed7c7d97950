"""The outbox worker for transactional mail: claiming, leases, outcomes, retries, bounces (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage

from smtp_support import SmtpSink
from sqlalchemy import select

from feedsvc import delivery, subscriptions
from feedsvc.config import Settings
from feedsvc.db import Database, utcnow
from feedsvc.delivery import Worker
from feedsvc.models import (
    BOUNCED,
    FAILED,
    QUEUED,
    SENDING,
    SENT,
    SKIPPED,
    UNSUBSCRIBED,
    OutboxMessage,
    Subscriber,
)
from feedsvc.transport import PermanentFailure, TemporaryFailure


class FakeTransport:
    """Accepts messages, or raises the failures it is given, one per send."""

    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.failures = list(failures or [])
        self.sent: list[EmailMessage] = []
        self.closed = 0

    def send(self, message: EmailMessage) -> str:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)
        return str(message["Message-ID"])

    def close(self) -> None:
        self.closed += 1


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def worker(
    db: Database,
    settings: Settings,
    transport: FakeTransport,
    clock: Callable[[], datetime] = utcnow,
    **options: object,
) -> Worker:
    return Worker(db, settings, transport_factory=lambda _s: transport, clock=clock, **options)  # type: ignore[arg-type]


def rows(db: Database) -> list[OutboxMessage]:
    with db.session(readonly=True) as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def signup(db: Database, settings: Settings, email: str, now: datetime | None = None) -> None:
    with db.session() as s:
        subscriptions.subscribe(s, settings, email, ["industry"], now=now)


def add_issue_row(db: Database, subscriber_id: int, email: str, now: datetime) -> None:
    with db.session() as s:
        s.add(
            OutboxMessage(
                kind="issue",
                subscriber_id=subscriber_id,
                issue_number=398,
                sections="industry",
                recipient=email,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )


def test_confirmation_goes_out_over_smtp_and_is_recorded(db: Database, settings: Settings) -> None:
    signup(db, settings, "reader@example.org")
    with SmtpSink() as sink:
        stats = Worker(db, settings.with_overrides(smtp_url=sink.url)).drain()
        [received] = sink.wait_for(1)
    assert stats.sent == 1
    assert received.rcpt_tos == ["reader@example.org"]
    assert "/confirm/" in received.message.get_body(("plain",)).get_content()
    [row] = rows(db)
    assert (row.state, row.attempts, row.lease_owner, row.message) == (SENT, 1, None, None)
    assert row.message_id == received.message["Message-ID"]
    assert row.sent_at is not None


def test_temporary_failure_is_retried_with_backoff(db: Database, settings: Settings) -> None:
    signup(db, settings, "reader@example.org")
    clock = Clock()
    transport = FakeTransport([TemporaryFailure(451, "try later"), TemporaryFailure(0, "connection dropped")])
    w = worker(db, settings, transport, clock)
    assert w.run_once() == 1
    [row] = rows(db)
    assert (row.state, row.attempts) == (QUEUED, 1)
    assert "451" in (row.last_error or "")
    assert row.next_attempt_at == clock.now + delivery.backoff(1)
    assert w.run_once() == 0  # not due yet
    clock.now += delivery.backoff(1)
    assert w.run_once() == 1
    assert rows(db)[0].next_attempt_at == clock.now + delivery.backoff(2)
    clock.now += delivery.backoff(2)
    w.drain()
    [row] = rows(db)
    assert (row.state, row.attempts) == (SENT, 3)
    assert len(transport.sent) == 1


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [delivery.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert delivery.backoff(20) == delivery.BACKOFF_MAX


def test_gives_up_after_max_attempts(db: Database, settings: Settings) -> None:
    signup(db, settings, "reader@example.org")
    clock = Clock()
    transport = FakeTransport([TemporaryFailure(421, "busy")] * delivery.MAX_ATTEMPTS)
    w = worker(db, settings, transport, clock)
    for _ in range(delivery.MAX_ATTEMPTS):
        assert w.run_once() == 1
        clock.now += delivery.BACKOFF_MAX
    [row] = rows(db)
    assert (row.state, row.attempts) == (FAILED, delivery.MAX_ATTEMPTS)
    assert "gave up" in (row.last_error or "")
    assert transport.sent == []


def test_permanent_failure_fails_the_row_and_counts_a_bounce(db: Database, settings: Settings) -> None:
    start = utcnow()
    for n in range(2):
        at = start + timedelta(minutes=11 * n)
        signup(db, settings, "gone@example.org", now=at)
        transport = FakeTransport([PermanentFailure(550, "5.1.1 no such user")])
        worker(db, settings, transport, clock=lambda at=at: at, bounce_limit=2).drain()
    assert [r.state for r in rows(db)] == [FAILED, FAILED]
    with db.session(readonly=True) as s:
        sub = s.scalars(select(Subscriber)).one()
        assert (sub.status, sub.bounce_count) == (BOUNCED, 2)


def test_an_expired_lease_is_taken_over_and_the_late_outcome_is_ignored(db: Database, settings: Settings) -> None:
    signup(db, settings, "reader@example.org")
    clock = Clock()
    with db.session() as s:
        [claimed] = delivery.claim(s, "dead-worker", limit=10, lease_seconds=60, now=clock.now)
    assert rows(db)[0].state == SENDING
    transport = FakeTransport()
    w = worker(db, settings, transport, clock)
    assert w.run_once() == 0  # the lease still holds
    clock.now += timedelta(seconds=61)
    assert w.run_once() == 1
    [row] = rows(db)
    assert (row.state, row.attempts, row.lease_owner) == (SENT, 2, None)
    with db.session() as s:  # the first worker wakes up and tries to record its outcome
        assert not delivery.mark_sent(s, claimed, "dead-worker", "<late@x>", clock.now)
    assert rows(db)[0].message_id != "<late@x>"


def test_transactional_mail_is_claimed_before_bulk_mail(db: Database, settings: Settings) -> None:
    now = utcnow()
    signup(db, settings, "a@example.org", now=now)
    with db.session(readonly=True) as s:
        sub_id = s.scalars(select(Subscriber.id)).one()
    add_issue_row(db, sub_id, "a@example.org", now - timedelta(hours=1))  # older, but bulk
    signup(db, settings, "b@example.org", now=now)
    with db.session() as s:
        claimed = delivery.claim(s, "w", limit=10, lease_seconds=60, now=now)
    assert [c.kind for c in claimed] == ["confirm", "confirm", "issue"]


def test_mail_the_subscriber_no_longer_wants_is_skipped(db: Database, settings: Settings) -> None:
    now = utcnow()
    signup(db, settings, "reader@example.org", now=now)
    with db.session(readonly=True) as s:
        sub = s.scalars(select(Subscriber)).one()
    with db.session() as s:  # confirmed through an earlier link before this confirmation went out
        subscriptions.confirm(s, settings, subscriptions.make_token(settings, "confirm", sub.id, 1))
    add_issue_row(db, sub.id, sub.email, now)
    with db.session() as s:  # unsubscribed after the issue was queued, and before it was sent
        s.execute(Subscriber.__table__.update().values(status=UNSUBSCRIBED))
    transport = FakeTransport()
    stats = worker(db, settings, transport, kinds=("confirm", "manage", "issue")).drain()
    assert stats.skipped == 2
    assert transport.sent == []
    assert [(r.kind, r.state, r.last_error) for r in rows(db)] == [
        ("confirm", SKIPPED, "subscriber is unsubscribed"),
        ("issue", SKIPPED, "subscriber is unsubscribed"),
    ]


def test_an_unexpected_error_keeps_the_row_for_a_retry(db: Database, settings: Settings) -> None:
    signup(db, settings, "reader@example.org")
    transport = FakeTransport([RuntimeError("bug")])
    stats = worker(db, settings, transport).drain()
    assert stats.retried == 1
    assert rows(db)[0].state == QUEUED
    assert transport.closed >= 1


def test_run_stops_when_asked_and_closes_the_transport(db: Database, settings: Settings) -> None:
    signup(db, settings, "a@example.org")
    stop = threading.Event()

    class StopAfterOne(FakeTransport):
        def send(self, message: EmailMessage) -> str:
            stop.set()
            return super().send(message)

    transport = StopAfterOne()
    stats = worker(db, settings, transport, poll_interval=0.01).run(stop)
    assert stats.sent == 1
    assert transport.closed >= 1


def test_housekeeping_forgets_old_rows(db: Database, settings: Settings) -> None:
    old = utcnow() - timedelta(days=120)
    signup(db, settings, "reader@example.org", now=old)
    worker(db, settings, FakeTransport(), clock=lambda: old).drain()
    w = worker(db, settings, FakeTransport())
    w.housekeeping()
    assert rows(db) == []  # the sent confirmation is past its keep time
    with db.session(readonly=True) as s:  # and the never-confirmed sign-up with it
        assert s.scalars(select(Subscriber)).all() == []


def test_concurrent_workers_never_claim_a_row_twice(db: Database, settings: Settings) -> None:
    workers = 4
    now = utcnow()
    for n in range(40):
        signup(db, settings, f"r{n}@example.org", now=now)
    barrier = threading.Barrier(workers)
    claimed: list[list[int]] = [[] for _ in range(workers)]

    def run(index: int) -> None:
        barrier.wait()
        while True:
            with db.session() as s:
                batch = delivery.claim(s, f"w{index}", limit=3, lease_seconds=60, now=now)
            if not batch:
                return
            claimed[index].extend(c.id for c in batch)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [row_id for batch in claimed for row_id in batch]
    assert sorted(every) == sorted({r.id for r in rows(db)})
    assert len(every) == len(set(every)) == 40
    assert {r.state for r in rows(db)} == {SENDING}
    assert {r.lease_owner for r in rows(db)} <= {f"w{i}" for i in range(workers)}


def test_the_default_worker_leaves_kinds_it_cannot_render_alone(db: Database, settings: Settings) -> None:
    now = utcnow()
    signup(db, settings, "reader@example.org", now=now)
    with db.session(readonly=True) as s:
        sub_id = s.scalars(select(Subscriber.id)).one()
    add_issue_row(db, sub_id, "reader@example.org", now)
    transport = FakeTransport()
    stats = worker(db, settings, transport).drain()
    assert stats.sent == 1
    assert [(r.kind, r.state) for r in rows(db)] == [("confirm", SENT), ("issue", QUEUED)]
