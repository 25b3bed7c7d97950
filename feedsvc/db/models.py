"""The tables (SQLAlchemy 2 typed declarative models). The schema itself is made by the Alembic migrations.

- `Subscriber`: one row per normalised address, with its status and when each change happened.
- `SubscriberSection`: the section slugs a subscriber chose.
- `SubscriberEvent`: what happened to a subscription, for the subscriber's own export and for support.
- `Suppression`: SHA-256 hashes of erased addresses, so nothing can silently bring one back.
- `OutboxMessage`: one row per mail to send, transactional (confirm, manage) and issue mail alike.
- `RateLimit`: fixed-window counters shared by every web process (per client, per action).
- `SendSchedule`: the next free send slot of the fleet-wide FEEDSVC_SEND_RATE (feedsvc.outbox.rate).
- `PublishedIssue`: each published issue, its Markdown as published, and the state of its send.
- `SubscriptionRequest`: sign-up and manage-link requests waiting to be decided (after the web answer).

Every timestamp is timezone-aware UTC in Python (`UTCDateTime`), whatever the database stores.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from feedsvc.config import SECTION_KEY_LENGTH

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Subscriber statuses.
PENDING, ACTIVE, UNSUBSCRIBED, BOUNCED = "pending", "active", "unsubscribed", "bounced"
SUBSCRIBER_STATUSES = (PENDING, ACTIVE, UNSUBSCRIBED, BOUNCED)

# Outbox message kinds, states and priorities (lower is sent first).
KIND_CONFIRM, KIND_MANAGE, KIND_ISSUE = "confirm", "manage", "issue"
# A confirmation asked for an unsubscribed or bounced address: sent only while it is still so.
KIND_RECONFIRM = "reconfirm"
# Sent once a reader confirms: their sections, the manage link, how to unsubscribe (feedsvc/subscribers/welcome.py).
KIND_WELCOME = "welcome"
QUEUED, SENDING, SENT, FAILED, CANCELLED, SKIPPED = "queued", "sending", "sent", "failed", "cancelled", "skipped"
OUTBOX_STATES = (QUEUED, SENDING, SENT, FAILED, CANCELLED, SKIPPED)
PRIORITY_TRANSACTIONAL, PRIORITY_BULK = 0, 100


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    PostgreSQL stores ``timestamp with time zone``; SQLite stores naive UTC text in one fixed format, so
    comparing values in SQL (``next_attempt_at <= :now``) is correct on both.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: feedsvc stores aware UTC timestamps only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def section_key(slugs: Iterable[str]) -> str:
    """A section set's one spelling (`Subscriber.sections_key`, an outbox variant): slugs sorted, joined by ';'."""
    return ";".join(sorted(set(slugs)))


class Subscriber(Base):
    """A reader's subscription. `email` is the normalised address (domain and local part lower-cased)."""

    __tablename__ = "subscribers"
    __table_args__ = (
        CheckConstraint(_in("status", SUBSCRIBER_STATUSES), name="status"),
        # Publishing counts active readers per section set, from this index alone (0013).
        Index(None, "status", "sections_key"),
        # ids are never reused (AUTOINCREMENT on SQLite, a sequence on PostgreSQL): an erased
        # subscriber's old links can never come to mean someone else.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    source: Mapped[str] = mapped_column(String(32), default="form")
    lang: Mapped[str] = mapped_column(String(8), default="zh-CN")
    token_version: Mapped[int] = mapped_column(Integer, default=1)
    bounce_count: Mapped[int] = mapped_column(Integer, default=0)
    # Hard +1, soft +0.5 (feedsvc.bounces.intake); stale once `bounce_scored_at` is FEEDSVC_BOUNCE_STALE_DAYS old.
    bounce_score: Mapped[float] = mapped_column(Float, server_default=text("0"))
    bounce_scored_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    bounced_at: Mapped[datetime | None]
    # When the last confirmation or manage-link mail was queued: at most one per address per window.
    notified_at: Mapped[datetime | None]
    # The chosen slugs as `section_key` spells them, written with the section rows by their one writer
    # (feedsvc.subscribers.subscriptions.set_sections): enqueueing names each reader's variant from it (0013).
    sections_key: Mapped[str] = mapped_column(String(SECTION_KEY_LENGTH), server_default="")

    sections: Mapped[list[SubscriberSection]] = relationship(
        back_populates="subscriber",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="SubscriberSection.section",
    )

    @property
    def section_slugs(self) -> list[str]:
        return [s.section for s in self.sections]


class SubscriberSection(Base):
    """One section (by slug) that a subscriber receives."""

    __tablename__ = "subscriber_sections"

    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True)
    section: Mapped[str] = mapped_column(String(64), primary_key=True)

    subscriber: Mapped[Subscriber] = relationship(back_populates="sections")


class SubscriberEvent(Base):
    """Something that happened to a subscription (requested, confirmed, sections changed, …)."""

    __tablename__ = "subscriber_events"
    __table_args__ = (Index(None, "subscriber_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]


class Suppression(Base):
    """An address that must not be added again (erased, or suppressed by the publisher), stored as a hash."""

    __tablename__ = "suppressions"

    email_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class OutboxMessage(Base):
    """A mail to send: a row is written before sending starts, and records the outcome.

    Transactional mail (`kind` confirm/manage, priority 0) carries its rendered RFC 5322 message in
    `message`. Issue mail (`kind` issue, priority 100) carries `issue_number` and the `sections` variant
    (slugs joined by ';', sorted) so the worker renders each variant once; it is unique per issue and
    subscriber. Workers claim rows by setting `state` to sending with a lease (`lease_owner`,
    `lease_expires_at`); an expired lease makes the row claimable again.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(_in("state", OUTBOX_STATES), name="state"),
        UniqueConstraint("issue_number", "subscriber_id"),
        # Claiming: the next queued rows by priority and due time.
        Index(
            "ix_outbox_claim",
            "priority",
            "next_attempt_at",
            "id",
            postgresql_where=text("state = 'queued'"),
            sqlite_where=text("state = 'queued'"),
        ),
        # Reaping: rows whose lease has expired.
        Index(
            "ix_outbox_lease",
            "lease_expires_at",
            postgresql_where=text("state = 'sending'"),
            sqlite_where=text("state = 'sending'"),
        ),
        # Rows by issue use the unique (issue_number, subscriber_id) index, and so do a subscriber's rows (one
        # probe per issue in the outbox, `feedsvc.outbox.sends.rows_of`): an index by subscriber cost every enqueued
        # row an insert in the middle of a large B-tree (0013). There is no foreign key to subscribers to
        # cascade: its per-row check was most of the cost of enqueueing a send (0012).
        # A report whose relay rewrote the return path is matched by message_id (0011); rows get one when sent.
        Index(
            None,
            "message_id",
            postgresql_where=text("message_id IS NOT NULL"),
            sqlite_where=text("message_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(SmallInteger, default=PRIORITY_BULK)
    subscriber_id: Mapped[int | None] = mapped_column(Integer)  # no foreign key: see the indexes above
    issue_number: Mapped[int | None] = mapped_column(Integer)
    sections: Mapped[str | None] = mapped_column(String(512))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(998))
    message: Mapped[bytes | None] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16), default=QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    message_id: Mapped[str | None] = mapped_column(String(998))
    # When a worker first claimed the row: the retry deadline counts from here, not from the enqueue, so a
    # long rate-limited send does not leave its last messages without retries (migration 0003).
    first_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RateLimit(Base):
    """A fixed-window counter: `hits` requests under `key` since `window_start` (epoch seconds)."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger)
    hits: Mapped[int] = mapped_column(Integer)


class SendSchedule(Base):
    """The fleet's send schedule under `key`: `next_slot` (epoch seconds on the database clock) is free."""

    __tablename__ = "send_schedules"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_slot: Mapped[float] = mapped_column(Float)


# Send states of a published issue (the `issues` table; see feedsvc/outbox/sends.py). Words of their own,
# none shared with the outbox row states: until migration 0004 they were "sending", "paused", "cancelled".
SEND_RUNNING, SEND_PAUSED, SEND_STOPPED = "running", "paused", "stopped"
SEND_STATES = (SEND_RUNNING, SEND_PAUSED, SEND_STOPPED)


class PublishedIssue(Base):
    """A published issue and the state of its send. The Markdown is kept as published, so a worker on any
    machine renders exactly what was published."""

    __tablename__ = "issues"
    __table_args__ = (CheckConstraint(_in("send_state", SEND_STATES), name="send_state"),)

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    issue_date: Mapped[date] = mapped_column(Date)
    title: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(998))
    sections: Mapped[str] = mapped_column(String(512))  # slugs this issue has, in issue order, ';'-joined
    source_name: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(Text)
    send_state: Mapped[str] = mapped_column(String(16), default=SEND_RUNNING)
    enqueued: Mapped[int] = mapped_column(Integer, default=0)
    skipped_no_sections: Mapped[int] = mapped_column(Integer, default=0)
    published_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SubscriptionRequest(Base):
    """A sign-up or manage-link request, decided after the web answer so that its timing says nothing
    about the address (see feedsvc.subscribers.requests; migration 0005)."""

    __tablename__ = "subscription_requests"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    action: Mapped[str] = mapped_column(String(16))  # subscribe, manage
    email: Mapped[str] = mapped_column(String(320))  # normalised
    sections: Mapped[str] = mapped_column(String(512), default="")  # slugs joined by ';'
    lang: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


# States of a scheduled publish (see feedsvc/schedule.py).
SCHEDULE_PENDING, SCHEDULE_FIRED, SCHEDULE_CANCELLED, SCHEDULE_FAILED = "pending", "fired", "cancelled", "failed"
SCHEDULE_STATES = (SCHEDULE_PENDING, SCHEDULE_FIRED, SCHEDULE_CANCELLED, SCHEDULE_FAILED)


class ScheduledIssue(Base):
    """An issue file to publish at `due_at`, kept as its bytes so that a restart or another machine fires it
    (migration 0007). A worker fires a pending row once: the state change is the claim."""

    __tablename__ = "scheduled_issues"
    __table_args__ = (
        CheckConstraint(_in("state", SCHEDULE_STATES), name="state"),
        Index("ix_scheduled_issues_due", "due_at", postgresql_where=text("state = 'pending'")),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    issue_number: Mapped[int] = mapped_column(Integer)
    source_name: Mapped[str] = mapped_column(String(500))
    source: Mapped[bytes] = mapped_column(LargeBinary)
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default=SCHEDULE_PENDING)
    fired_by: Mapped[str | None] = mapped_column(String(128))
    fired_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SearchEntry(Base):
    """One item of an archived issue for /search: its text, and its tokens (feedsvc/search.py; migration 0007).

    SQLite indexes `tokens` in the FTS5 table `search_fts` (rowid = id); PostgreSQL in a GIN-indexed
    tsvector column `document` that the migration adds and feedsvc/search.py fills.
    """

    __tablename__ = "search_entries"
    __table_args__ = (Index(None, "issue_number"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    issue_number: Mapped[int] = mapped_column(Integer)
    issue_date: Mapped[date] = mapped_column(Date)
    position: Mapped[int] = mapped_column(Integer)
    item_key: Mapped[str] = mapped_column(String(64))
    section: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    tokens: Mapped[str] = mapped_column(Text)
