"""Data protection: download my data, erase me, the suppression list, the CSV export of subscribers. No Flask.

An erased address leaves only a SHA-256 hash in `suppressions`, so that nothing (an import, a sign-up
without confirmation) can silently bring it back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, selectinload

from feedsvc.bounces.classify import BouncePolicy
from feedsvc.bounces.models import Bounce, BounceReport
from feedsvc.bounces.scoring import current_score
from feedsvc.db.engine import insert_for, utcnow
from feedsvc.db.models import OutboxMessage, Subscriber, SubscriberEvent, Suppression
from feedsvc.outbox import sends
from feedsvc.subscribers.addresses import normalise_email, unicode_form
from feedsvc.subscribers.csvfile import csv_writer
from feedsvc.subscribers.removal import delete_subscribers, purge_unconfirmed  # noqa: F401 - re-exported

SUPPRESSION_PREFIX = b"feedsvc-suppression:"
EXPORT_COLUMNS = ("email", "status", "sections", "bounce_score")


def email_hash(email: str) -> str:
    """SHA-256 of a normalised address: what a suppression entry keeps instead of the address.

    Not keyed with the secret key: a suppression list must outlive key rotation. Someone holding the
    database can test whether a known address is suppressed, which is exactly what the list is for.
    The domain is hashed in Unicode, as addresses were stored before IDNA domains, so old entries hold.
    """
    return hashlib.sha256(SUPPRESSION_PREFIX + unicode_form(email).encode("utf-8")).hexdigest()


def export(session: Session, subscriber: Subscriber) -> dict[str, Any]:
    """Everything kept about one subscriber, as JSON-ready data ("download my data")."""

    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    events = session.scalars(
        select(SubscriberEvent).where(SubscriberEvent.subscriber_id == subscriber.id).order_by(SubscriberEvent.id)
    )
    messages = session.scalars(
        select(OutboxMessage).where(sends.rows_of(session, [subscriber.id])).order_by(OutboxMessage.id)
    )
    return {
        "email": subscriber.email,
        "status": subscriber.status,
        "sections": subscriber.section_slugs,
        "language": subscriber.lang,
        "source": subscriber.source,
        "created_at": when(subscriber.created_at),
        "confirmed_at": when(subscriber.confirmed_at),
        "unsubscribed_at": when(subscriber.unsubscribed_at),
        "bounced_at": when(subscriber.bounced_at),
        "bounce_count": subscriber.bounce_count,
        "events": [{"at": when(e.at), "event": e.kind, "detail": e.detail} for e in events],
        "mail": [
            {
                "kind": m.kind,
                "issue": m.issue_number,
                "sections": m.sections.split(";") if m.sections else None,
                "state": m.state,
                "queued_at": when(m.created_at),
                "sent_at": when(m.sent_at),
                "message_id": m.message_id,
            }
            for m in messages
        ],
    }


def export_json(session: Session, subscriber: Subscriber) -> str:
    """`export` as pretty UTF-8 JSON text."""
    return json.dumps(export(session, subscriber), ensure_ascii=False, indent=2)


def erase(session: Session, subscriber: Subscriber, *, now: datetime | None = None) -> None:
    """Remove the subscriber and everything about them (sections, events, mail, bounces and the raw reports that
    name them); keep a hashed suppression."""
    now = now or utcnow()
    about_them = select(Bounce.report_id).where(Bounce.subscriber_id == subscriber.id, Bounce.report_id.is_not(None))
    session.execute(
        update(BounceReport)
        .where(BounceReport.id.in_(about_them))
        .values(raw=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        insert_for(session, Suppression)
        .values(email_hash=email_hash(subscriber.email), reason="erased", created_at=now)
        .on_conflict_do_nothing(index_elements=[Suppression.email_hash])
    )
    delete_subscribers(session, Subscriber.id == subscriber.id)
    session.expunge(subscriber)


def suppress(session: Session, address: str, reason: str = "publisher", *, now: datetime | None = None) -> None:
    """Add an address to the suppression list (by hash)."""
    session.execute(
        insert_for(session, Suppression)
        .values(email_hash=email_hash(normalise_email(address)), reason=reason, created_at=now or utcnow())
        .on_conflict_do_nothing(index_elements=[Suppression.email_hash])
    )


def is_suppressed(session: Session, address: str) -> bool:
    """True if the (normalised) address is on the suppression list."""
    digest = email_hash(normalise_email(address))
    return session.scalar(select(Suppression.email_hash).where(Suppression.email_hash == digest)) is not None


def lift_suppression(session: Session, email: str) -> None:
    """Take a normalised address off the suppression list (its owner confirmed a subscription again)."""
    session.execute(delete(Suppression).where(Suppression.email_hash == email_hash(email)))


def write_export(session: Session, out: TextIO, status: str | None = None, *, policy: BouncePolicy) -> None:
    """The subscriber list as CSV (header row; email, status, section slugs joined by ';', the bounce score as it
    counts now), what `feedsvc subscribers export` prints and the admin page downloads; `subscribers import`
    reads it back. `policy` is the configured one (`BouncePolicy.from_env`), so every export counts staleness alike."""
    now = utcnow()
    writer = csv_writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for subscriber in _subscribers(session, status):
        score = current_score(subscriber, policy, now)
        writer.writerow((subscriber.email, subscriber.status, ";".join(subscriber.section_slugs), f"{score:g}"))


def _subscribers(session: Session, status: str | None) -> Iterator[Subscriber]:
    query = select(Subscriber).options(selectinload(Subscriber.sections)).order_by(Subscriber.email)
    if status:
        query = query.where(Subscriber.status == status)
    yield from session.scalars(query.execution_options(yield_per=1000))


def subscriber_rows(session: Session, status: str | None = None) -> Iterator[tuple[str, str, list[str]]]:
    """(email, status, section slugs) for every subscriber (or those with `status`), by address."""
    for subscriber in _subscribers(session, status):
        yield subscriber.email, subscriber.status, subscriber.section_slugs
