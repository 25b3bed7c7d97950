"""Helpers for the bounce tests: a sent outbox row per reader, and the sample reports filled in for it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from feedsvc.bounces import verp
from feedsvc.bounces.models import Bounce
from feedsvc.config import Settings
from feedsvc.db.engine import Database, utcnow
from feedsvc.db.models import ACTIVE, KIND_ISSUE, SENT, OutboxMessage, Subscriber, SubscriberEvent

SAMPLES = Path(__file__).parent / "samples"
RETURN_PATH = "bounces@news.example.org"


def with_return_path(settings: Settings, return_path: str = RETURN_PATH) -> Settings:
    """`settings` with `[bounces] return_path` set."""
    return settings.with_overrides(publication=dataclasses.replace(settings.publication, return_path=return_path))


@dataclass(frozen=True)
class SentRow:
    """A reader and the issue mail they were sent."""

    subscriber_id: int
    outbox_id: int
    message_id: str
    email: str


def sent_row(
    db: Database, email: str, *, issue: int = 398, status: str = ACTIVE, now: datetime | None = None
) -> SentRow:
    """A subscriber (created if new) and a sent issue-mail row to them, with its Message-ID."""
    now = now or utcnow()
    with db.session() as session:
        subscriber = session.scalars(select(Subscriber).where(Subscriber.email == email)).one_or_none()
        if subscriber is None:
            subscriber = Subscriber(
                email=email, status=status, source="test", lang="zh-CN", token_version=1, bounce_count=0,
                created_at=now, updated_at=now, confirmed_at=now,
            )  # fmt: skip
            session.add(subscriber)
            session.flush()
        row = OutboxMessage(
            kind=KIND_ISSUE, priority=100, subscriber_id=subscriber.id, issue_number=issue, sections="industry",
            recipient=email, state=SENT, attempts=1, next_attempt_at=now, sent_at=now, created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(row)
        session.flush()
        row.message_id = f"<issue.{issue}.{row.id}@feedsvc.example.org>"
        return SentRow(subscriber.id, row.id, row.message_id, email)


def sample(name: str, settings: Settings, row: SentRow | None = None, *, tag: str | None = None) -> bytes:
    """The sample report `name`, its VERP tag and Message-ID those of `row` (or `tag` as the tag)."""
    data = (SAMPLES / name).read_bytes()
    if tag is None:
        tag = verp.make_tag(settings, row.outbox_id) if row else "none"
    data = data.replace(b"@@TAG@@", tag.encode())
    return data.replace(b"@@MSGID@@", (row.message_id if row else "<unknown.1@elsewhere.example>").encode())


def subscriber(db: Database, subscriber_id: int) -> Subscriber:
    """The subscriber row as stored now (detached)."""
    with db.session(readonly=True) as session:
        found = session.get(Subscriber, subscriber_id)
        assert found is not None
        session.expunge(found)
        return found


def bounces(db: Database) -> list[Bounce]:
    """Every bounce kept, oldest first (detached)."""
    with db.session(readonly=True) as session:
        found = list(session.scalars(select(Bounce).order_by(Bounce.id)))
        session.expunge_all()
        return found


def events(db: Database, subscriber_id: int) -> list[tuple[str, str]]:
    """(kind, detail) of a subscriber's event log, oldest first."""
    with db.session(readonly=True) as session:
        query = select(SubscriberEvent.kind, SubscriberEvent.detail).where(
            SubscriberEvent.subscriber_id == subscriber_id
        )
        return [(k, d) for k, d in session.execute(query.order_by(SubscriberEvent.id))]


def readers(db: Database, count: int, sections: tuple[str, ...] = ("industry",)) -> dict[str, int]:
    """`count` active subscribers reader0@example.org … with `sections`; address → id."""
    from feedsvc.subscribers.subscriptions import set_sections

    now = utcnow()
    with db.session() as session:
        found = {}
        for index in range(count):
            person = Subscriber(
                email=f"reader{index}@example.org", status=ACTIVE, source="test", lang="zh-CN", token_version=1,
                bounce_count=0, created_at=now, updated_at=now, confirmed_at=now,
            )  # fmt: skip
            session.add(person)
            session.flush()
            set_sections(session, {person.id: sections})
            found[person.email] = person.id
        return found
