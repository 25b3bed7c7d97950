"""Transactional mail through the sending worker: recorded over SMTP, sent only to whom it may still go,
and forgotten by housekeeping (SQLite and PostgreSQL). The ledger itself (leases, retries, bounces,
several workers, crashes) is tested under tests/delivery/."""

from __future__ import annotations

from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from smtp_support import SmtpSink
from sqlalchemy import select

from feedsvc.config import Settings
from feedsvc.db.engine import Database, utcnow
from feedsvc.db.models import ACTIVE, SENT, SKIPPED, UNSUBSCRIBED, OutboxMessage, Subscriber
from feedsvc.mail.transport import Envelope
from feedsvc.outbox import housekeeping
from feedsvc.outbox.worker import SendWorker, WorkerStats
from feedsvc.subscribers import subscriptions, tokens


class Recorder:
    """A transport that accepts every message and keeps it."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    def send(self, envelope: Envelope, data: bytes) -> None:
        parsed = BytesParser(policy=policy.default).parsebytes(data)
        assert isinstance(parsed, EmailMessage)
        self.sent.append(parsed)

    def close(self) -> None:
        pass


def drain(db: Database, settings: Settings, transport: Recorder | None = None) -> WorkerStats:
    factory = (lambda: transport) if transport is not None else None
    worker = SendWorker(db, settings, concurrency=1, poll_interval=0, transport_factory=factory)
    return worker.run(until_idle=True)


def rows(db: Database) -> list[OutboxMessage]:
    with db.session(readonly=True) as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def signup(db: Database, settings: Settings, email: str, now: datetime | None = None) -> int:
    with db.session() as s:
        subscriptions.subscribe(s, settings, email, ["industry"], now=now)
    with db.session(readonly=True) as s:
        return s.scalars(select(Subscriber.id).where(Subscriber.email == email)).one()


def test_confirmation_goes_out_over_smtp_and_is_recorded(db: Database, settings: Settings) -> None:
    signup(db, settings, "reader@example.org")
    with SmtpSink() as sink:
        stats = drain(db, settings.with_overrides(smtp_url=sink.url))
        [received] = sink.wait_for(1)
    assert stats.sent == 1
    assert received.rcpt_tos == ["reader@example.org"]
    assert "/confirm/" in received.message.get_body(("plain",)).get_content()
    [row] = rows(db)
    assert (row.state, row.attempts, row.lease_owner) == (SENT, 1, None)
    assert row.message_id == received.message["Message-ID"]
    assert row.sent_at is not None


def test_a_confirmation_is_skipped_once_the_reader_confirmed_and_a_manage_link_still_goes(
    db: Database, settings: Settings
) -> None:
    subscriber_id = signup(db, settings, "reader@example.org", now=utcnow() - timedelta(hours=1))
    with db.session() as s:  # confirmed through an earlier link before this confirmation went out
        subscriptions.confirm(s, settings, tokens.make_token(settings, "confirm", subscriber_id, 1))
    with db.session() as s:  # then unsubscribed, and asked for a manage link to download their data
        s.execute(Subscriber.__table__.update().values(status=UNSUBSCRIBED))
    with db.session() as s:
        subscriptions.request_manage_link(s, settings, "reader@example.org")
    transport = Recorder()
    stats = drain(db, settings, transport)
    assert (stats.sent, stats.skipped) == (1, 2)
    # the welcome mail queued on confirming is skipped too: it goes to active readers only
    assert [(r.kind, r.state) for r in rows(db)] == [("confirm", SKIPPED), ("welcome", SKIPPED), ("manage", SENT)]
    assert "/manage/" in transport.sent[0].get_body(("plain",)).get_content()


def test_housekeeping_forgets_old_rows_and_unconfirmed_sign_ups(db: Database, settings: Settings) -> None:
    old = utcnow() - timedelta(days=120)
    signup(db, settings, "stale@example.org", now=old)
    recent = signup(db, settings, "recent@example.org")
    drain(db, settings, Recorder())
    with db.session() as s:
        s.execute(
            OutboxMessage.__table__.update()
            .where(OutboxMessage.recipient == "stale@example.org")
            .values(updated_at=old)
        )
        s.execute(Subscriber.__table__.update().where(Subscriber.id == recent).values(status=ACTIVE))
    with db.session() as s:
        housekeeping.housekeeping(s, utcnow())
    assert [r.recipient for r in rows(db)] == ["recent@example.org"]  # the old sent confirmation is gone
    with db.session(readonly=True) as s:  # and so is the sign-up never confirmed in 30 days
        assert s.scalars(select(Subscriber.email)).all() == ["recent@example.org"]
