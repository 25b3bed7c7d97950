"""The ORM classes, for the workflows that want objects: each maps its Core table of feedsvc.db.tables.

The schema (columns, indexes, constraints) and the words its columns hold are defined once, in
feedsvc.db.tables, which also says what each table is for; the words are re-exported here for the code that
works with these classes, and the annotations below only type the mapped attributes. A `feedsvc worker` that
only sends never imports this module.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy.orm import DeclarativeBase, Mapped, relationship

from feedsvc.db import tables
from feedsvc.db.tables import (  # noqa: F401 - re-exported: the words of the schema, for the ORM workflows
    ACTIVE,
    BOUNCED,
    CANCELLED,
    FAILED,
    KIND_CONFIRM,
    KIND_ISSUE,
    KIND_MANAGE,
    KIND_RECONFIRM,
    KIND_WELCOME,
    NAMING,
    OUTBOX_STATES,
    PENDING,
    PRIORITY_BULK,
    PRIORITY_TRANSACTIONAL,
    QUEUED,
    SCHEDULE_CANCELLED,
    SCHEDULE_FAILED,
    SCHEDULE_FIRED,
    SCHEDULE_PENDING,
    SCHEDULE_STATES,
    SEND_PAUSED,
    SEND_RUNNING,
    SEND_STATES,
    SEND_STOPPED,
    SENDING,
    SENT,
    SKIPPED,
    SUBSCRIBER_STATUSES,
    UNSUBSCRIBED,
    UTCDateTime,
    section_key,
)


class Base(DeclarativeBase):
    metadata = tables.metadata
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


class Subscriber(Base):
    """A reader's subscription. `email` is the normalised address (domain and local part lower-cased)."""

    __table__ = tables.subscribers

    id: Mapped[int]
    email: Mapped[str]
    status: Mapped[str]
    source: Mapped[str]
    lang: Mapped[str]
    token_version: Mapped[int]
    bounce_count: Mapped[int]
    bounce_score: Mapped[float]
    bounce_scored_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    bounced_at: Mapped[datetime | None]
    notified_at: Mapped[datetime | None]
    sections_key: Mapped[str]

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

    __table__ = tables.subscriber_sections

    subscriber_id: Mapped[int]
    section: Mapped[str]

    subscriber: Mapped[Subscriber] = relationship(back_populates="sections")


class SubscriberEvent(Base):
    """Something that happened to a subscription (requested, confirmed, sections changed, …)."""

    __table__ = tables.subscriber_events

    id: Mapped[int]
    subscriber_id: Mapped[int]
    kind: Mapped[str]
    detail: Mapped[str]
    at: Mapped[datetime]


class Suppression(Base):
    """An address that must not be added again (erased, or suppressed by the publisher), stored as a hash."""

    __table__ = tables.suppressions

    email_hash: Mapped[str]
    reason: Mapped[str]
    created_at: Mapped[datetime]


class OutboxMessage(Base):
    """A mail to send, and the outcome of sending it (the ledger's row; see `tables.outbox`)."""

    __table__ = tables.outbox

    id: Mapped[int]
    kind: Mapped[str]
    priority: Mapped[int]
    subscriber_id: Mapped[int | None]
    issue_number: Mapped[int | None]
    sections: Mapped[str | None]
    recipient: Mapped[str]
    subject: Mapped[str | None]
    message: Mapped[bytes | None]
    state: Mapped[str]
    attempts: Mapped[int]
    next_attempt_at: Mapped[datetime]
    lease_owner: Mapped[str | None]
    lease_expires_at: Mapped[datetime | None]
    message_id: Mapped[str | None]
    first_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RateLimit(Base):
    """A fixed-window counter: `hits` requests under `key` since `window_start` (epoch seconds)."""

    __table__ = tables.rate_limits

    key: Mapped[str]
    window_start: Mapped[int]
    hits: Mapped[int]


class SendSchedule(Base):
    """The fleet's send schedule under `key`: `next_slot` (epoch seconds on the database clock) is free."""

    __table__ = tables.send_schedules

    key: Mapped[str]
    next_slot: Mapped[float]


class PublishedIssue(Base):
    """A published issue and the state of its send. The Markdown is kept as published, so a worker on any
    machine renders exactly what was published."""

    __table__ = tables.issues

    number: Mapped[int]
    issue_date: Mapped[date]
    title: Mapped[str]
    subject: Mapped[str]
    sections: Mapped[str]
    source_name: Mapped[str]
    source: Mapped[str]
    send_state: Mapped[str]
    enqueued: Mapped[int]
    skipped_no_sections: Mapped[int]
    published_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SubscriptionRequest(Base):
    """A sign-up or manage-link request, decided after the web answer so that its timing says nothing
    about the address (see feedsvc.subscribers.requests; migration 0005)."""

    __table__ = tables.subscription_requests

    id: Mapped[int]
    action: Mapped[str]
    email: Mapped[str]
    sections: Mapped[str]
    lang: Mapped[str]
    source: Mapped[str]
    created_at: Mapped[datetime]


class ScheduledIssue(Base):
    """An issue file to publish at `due_at`, kept as its bytes so that a restart or another machine fires it
    (migration 0007). A worker fires a pending row once: the state change is the claim."""

    __table__ = tables.scheduled_issues

    id: Mapped[int]
    issue_number: Mapped[int]
    source_name: Mapped[str]
    source: Mapped[bytes]
    due_at: Mapped[datetime]
    state: Mapped[str]
    fired_by: Mapped[str | None]
    fired_at: Mapped[datetime | None]
    last_error: Mapped[str | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SearchEntry(Base):
    """One item of an archived issue for /search: its text, and its tokens (see `tables.search_entries`)."""

    __table__ = tables.search_entries

    id: Mapped[int]
    issue_number: Mapped[int]
    issue_date: Mapped[date]
    position: Mapped[int]
    item_key: Mapped[str]
    section: Mapped[str]
    title: Mapped[str]
    body: Mapped[str]
    tokens: Mapped[str]
