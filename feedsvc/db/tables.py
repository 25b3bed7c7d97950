"""The schema as SQLAlchemy Core tables, and the words its columns hold. No ORM here: the worker sends through these.

The migrations make the schema; these tables describe it (tests/config/test_models_match_migrations.py holds
the two together). The ORM classes (feedsvc.db.models, feedsvc.bounces.models, feedsvc.staff.models) map
these same tables for the workflows that want objects; the send path of `feedsvc worker` uses the tables
alone, so a worker that only sends never loads sqlalchemy.orm (deciding a sign-up or publishing a due
schedule loads it).

- `subscribers`: one row per normalised address, with its status and when each change happened.
- `subscriber_sections`: the section slugs a subscriber chose.
- `subscriber_events`: what happened to a subscription, for the subscriber's own export and for support.
- `suppressions`: SHA-256 hashes of erased addresses, so nothing can silently bring one back.
- `outbox`: one row per mail to send, transactional (confirm, manage) and issue mail alike.
- `rate_limits`: fixed-window counters shared by every web process (per client, per action).
- `send_schedules`: the next free send slot of the fleet-wide FEEDSVC_SEND_RATE (feedsvc.outbox.rate).
- `issues`: each published issue, its Markdown as published, and the state of its send.
- `subscription_requests`: sign-up and manage-link requests waiting to be decided (after the web answer).
- `scheduled_issues`, `search_entries`: scheduled publishing and the /search index.
- `bounce_reports`, `bounces`: reports taken in and what each recipient result did (migration 0011).
- `staff`, `audit_log`, `staff_sessions`, `api_tokens`: the team, what they did, who is logged in.

Every timestamp is timezone-aware UTC in Python (`UTCDateTime`), whatever the database stores.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
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
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from feedsvc.config import SECTION_KEY_LENGTH
from feedsvc.staff.roles import ROLES

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

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

# Send states of a published issue (the `issues` table; see feedsvc/outbox/sends.py). Words of their own,
# none shared with the outbox row states: until migration 0004 they were "sending", "paused", "cancelled".
SEND_RUNNING, SEND_PAUSED, SEND_STOPPED = "running", "paused", "stopped"
SEND_STATES = (SEND_RUNNING, SEND_PAUSED, SEND_STOPPED)

# States of a scheduled publish (see feedsvc/schedule.py).
SCHEDULE_PENDING, SCHEDULE_FIRED, SCHEDULE_CANCELLED, SCHEDULE_FAILED = "pending", "fired", "cancelled", "failed"
SCHEDULE_STATES = (SCHEDULE_PENDING, SCHEDULE_FIRED, SCHEDULE_CANCELLED, SCHEDULE_FAILED)


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


def section_key(slugs: Iterable[str]) -> str:
    """A section set's one spelling (`subscribers.sections_key`, an outbox variant): slugs sorted, joined by ';'."""
    return ";".join(sorted(set(slugs)))


# The partial indexes' predicates (noted beside each index below) are the migrations' (0012, 0011, 0007) and
# are not declared on the `Index` objects: a dialect's keyword (``postgresql_where``) loads that dialect's
# module when the table is defined (2.3 MiB for PostgreSQL's, kept by a worker on SQLite), and Alembic does not
# compare predicates. tests/delivery/test_delivery_scale.py reads them back from the database instead, and
# feedsvc.outbox.queue repeats the outbox's literally, as SQLite needs to use them.


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _id() -> Column[int]:
    """A 64-bit primary key (SQLite's INTEGER, which is its rowid)."""
    return Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


def _when(name: str, nullable: bool = False) -> Column[datetime]:
    return Column(name, UTCDateTime(), nullable=nullable)


def _required(name: str, type_: object, **kwargs: object) -> Column[object]:
    return Column(name, type_, nullable=False, **kwargs)  # type: ignore[arg-type]


subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("email", String(320), unique=True),  # normalised: domain and local part lower-cased
    _required("status", String(16), default=PENDING),
    _required("source", String(32), default="form"),
    _required("lang", String(8), default="zh-CN"),
    _required("token_version", Integer, default=1),
    _required("bounce_count", Integer, default=0),
    # Hard +1, soft +0.5 (feedsvc.bounces.scoring); stale once `bounce_scored_at` is FEEDSVC_BOUNCE_STALE_DAYS old.
    _required("bounce_score", Float, server_default=text("0")),
    _when("bounce_scored_at", nullable=True),
    _when("created_at"),
    _when("updated_at"),
    _when("confirmed_at", nullable=True),
    _when("unsubscribed_at", nullable=True),
    _when("bounced_at", nullable=True),
    # When the last confirmation or manage-link mail was queued: at most one per address per window.
    _when("notified_at", nullable=True),
    # The chosen slugs as `section_key` spells them, written with the section rows by their one writer
    # (feedsvc.subscribers.subscriptions.set_sections): enqueueing names each reader's variant from it (0013).
    _required("sections_key", String(SECTION_KEY_LENGTH), server_default=""),
    CheckConstraint(_in("status", SUBSCRIBER_STATUSES), name="status"),
    # Publishing counts active readers per section set, from this index alone (0013).
    Index(None, "status", "sections_key"),
    # ids are never reused (AUTOINCREMENT on SQLite, a sequence on PostgreSQL): an erased
    # subscriber's old links can never come to mean someone else.
    sqlite_autoincrement=True,
)

subscriber_sections = Table(
    "subscriber_sections",
    metadata,
    Column("subscriber_id", ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True),
    Column("section", String(64), primary_key=True),
)

subscriber_events = Table(
    "subscriber_events",
    metadata,
    _id(),
    _required("subscriber_id", ForeignKey("subscribers.id", ondelete="CASCADE")),
    _required("kind", String(32)),
    _required("detail", Text, default=""),
    _when("at"),
    Index(None, "subscriber_id", "id"),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("email_hash", String(64), primary_key=True),
    _required("reason", String(32)),
    _when("created_at"),
)

# A mail to send: a row is written before sending starts, and records the outcome. Transactional mail
# (`kind` confirm/manage, priority 0) carries its rendered RFC 5322 message in `message`. Issue mail (`kind`
# issue, priority 100) carries `issue_number` and the `sections` variant (slugs joined by ';', sorted) so the
# worker renders each variant once; it is unique per issue and subscriber. Workers claim rows by setting
# `state` to sending with a lease (`lease_owner`, `lease_expires_at`); an expired lease makes the row
# claimable again.
outbox = Table(
    "outbox",
    metadata,
    _id(),
    _required("kind", String(16)),
    _required("priority", SmallInteger, default=PRIORITY_BULK),
    Column("subscriber_id", Integer),  # no foreign key: see the indexes below
    Column("issue_number", Integer),
    Column("sections", String(512)),
    _required("recipient", String(320)),
    Column("subject", String(998)),
    Column("message", LargeBinary),
    _required("state", String(16), default=QUEUED),
    _required("attempts", Integer, default=0),
    _when("next_attempt_at"),
    Column("lease_owner", String(128)),
    _when("lease_expires_at", nullable=True),
    Column("message_id", String(998)),
    # When a worker first claimed the row: the retry deadline counts from here, not from the enqueue, so a
    # long rate-limited send does not leave its last messages without retries (migration 0003).
    _when("first_attempt_at", nullable=True),
    _when("sent_at", nullable=True),
    Column("last_error", Text),
    _when("created_at"),
    _when("updated_at"),
    CheckConstraint(_in("state", OUTBOX_STATES), name="state"),
    UniqueConstraint("issue_number", "subscriber_id"),
    # Claiming: the next queued rows by priority and due time (WHERE state = 'queued').
    Index("ix_outbox_claim", "priority", "next_attempt_at", "id"),
    # Reaping: rows whose lease has expired (WHERE state = 'sending').
    Index("ix_outbox_lease", "lease_expires_at"),
    # Rows by issue use the unique (issue_number, subscriber_id) index, and so do a subscriber's rows (one
    # probe per issue in the outbox, `feedsvc.outbox.sends.rows_of`): an index by subscriber cost every enqueued
    # row an insert in the middle of a large B-tree (0013). There is no foreign key to subscribers to
    # cascade: its per-row check was most of the cost of enqueueing a send (0012).
    # A report whose relay rewrote the return path is matched by message_id (0011); rows get one when sent
    # (WHERE message_id IS NOT NULL).
    Index(None, "message_id"),
)

# A fixed-window counter: `hits` requests under `key` since `window_start` (epoch seconds).
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("key", String(128), primary_key=True),
    _required("window_start", BigInteger),
    _required("hits", Integer),
)

# The fleet's send schedule under `key`: `next_slot` (epoch seconds on the database clock) is free.
send_schedules = Table(
    "send_schedules",
    metadata,
    Column("key", String(64), primary_key=True),
    _required("next_slot", Float),
)

# A published issue and the state of its send. The Markdown is kept as published, so a worker on any
# machine renders exactly what was published.
issues = Table(
    "issues",
    metadata,
    Column("number", Integer, primary_key=True, autoincrement=False),
    _required("issue_date", Date),
    _required("title", String(500)),
    _required("subject", String(998)),
    _required("sections", String(512)),  # slugs this issue has, in issue order, ';'-joined
    _required("source_name", String(500)),
    _required("source", Text),
    _required("send_state", String(16), default=SEND_RUNNING),
    _required("enqueued", Integer, default=0),
    _required("skipped_no_sections", Integer, default=0),
    _when("published_at"),
    _when("updated_at"),
    CheckConstraint(_in("send_state", SEND_STATES), name="send_state"),
)

# A sign-up or manage-link request, decided after the web answer so that its timing says nothing about the
# address (see feedsvc.subscribers.requests; migration 0005).
subscription_requests = Table(
    "subscription_requests",
    metadata,
    _id(),
    _required("action", String(16)),  # subscribe, manage
    _required("email", String(320)),  # normalised
    _required("sections", String(512), default=""),  # slugs joined by ';'
    _required("lang", String(8)),
    _required("source", String(32)),
    _when("created_at"),
)

# An issue file to publish at `due_at`, kept as its bytes so that a restart or another machine fires it
# (migration 0007). A worker fires a pending row once: the state change is the claim.
scheduled_issues = Table(
    "scheduled_issues",
    metadata,
    _id(),
    _required("issue_number", Integer),
    _required("source_name", String(500)),
    _required("source", LargeBinary),
    _when("due_at"),
    _required("state", String(16), default=SCHEDULE_PENDING),
    Column("fired_by", String(128)),
    _when("fired_at", nullable=True),
    Column("last_error", Text),
    _when("created_at"),
    _when("updated_at"),
    CheckConstraint(_in("state", SCHEDULE_STATES), name="state"),
    Index("ix_scheduled_issues_due", "due_at"),  # WHERE state = 'pending', on PostgreSQL
)

# One item of an archived issue for /search: its text, and its tokens (feedsvc/search; migration 0007).
# SQLite indexes `tokens` in the FTS5 table `search_fts` (rowid = id); PostgreSQL in a GIN-indexed tsvector
# column `document` that the migration adds and feedsvc/search fills.
search_entries = Table(
    "search_entries",
    metadata,
    _id(),
    _required("issue_number", Integer),
    _required("issue_date", Date),
    _required("position", Integer),
    _required("item_key", String(64)),
    _required("section", String(64)),
    _required("title", Text),
    _required("body", Text),
    _required("tokens", Text),
    Index(None, "issue_number"),
)

# One message taken in (a DSN, an ARF report, an auto-reply, an SES event), kept as it came for 30 days.
bounce_reports = Table(
    "bounce_reports",
    metadata,
    _id(),
    _required("source", String(32)),  # imap, lmtp, smtp, ses, cli, …
    _required("report_type", String(32)),  # dsn, arf, flufl, auto_reply, event, smtp
    _required("outcome", String(32)),  # recorded, unmatched, no_change
    _required("matched", Integer, default=0),
    _required("unmatched", Integer, default=0),
    Column("raw", LargeBinary),  # emptied after RAW_REPORTS_KEPT (feedsvc.outbox.housekeeping)
    _when("received_at"),
    Index(None, "received_at"),
)

# A matched bounce or complaint: subscriber, outbox row, kind, status, the server's words, and its effect. A
# policy block keeps its subscriber (so that erasing them erases it) but never counts against them.
bounces = Table(
    "bounces",
    metadata,
    _id(),
    Column("report_id", ForeignKey("bounce_reports.id", ondelete="SET NULL")),
    Column("subscriber_id", ForeignKey("subscribers.id", ondelete="CASCADE")),
    Column("outbox_id", ForeignKey("outbox.id", ondelete="SET NULL")),
    Column("issue_number", Integer),
    _required("kind", String(16)),  # hard, soft, policy, complaint
    _required("status", String(16), default=""),  # 5.1.1, or the feedback type of a complaint
    _required("diagnostic", Text, default=""),  # the server's own words
    _required("source", String(32)),
    _required("counted", Boolean, default=False),  # whether it changed the score or the status
    _required("effect", String(32), default=""),  # scored, bounced, unsubscribed, soft_today, …
    _when("at"),
    Index(None, "subscriber_id", "at"),
    Index(None, "issue_number", "kind"),
    Index(None, "outbox_id"),
)

# A member of the team: a normalised address, a role, and an argon2 password hash (None until set).
staff = Table(
    "staff",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("email", String(320), unique=True),
    _required("role", String(16)),
    Column("password_hash", String(255)),
    _when("created_at"),
    _when("updated_at"),
    Column("totp_secret", String(64), default=None),  # base32; None: no second factor
    _required("totp_last_step", BigInteger, default=0, server_default="0"),  # the newest time step used (no replays)
    Column("totp_pending_secret", String(64), default=None),  # being enrolled (0014)
    Column("totp_pending_at", UTCDateTime(), default=None),  # when it was made (it expires)
    CheckConstraint(_in("role", ROLES), name="role"),
)

# One staff action: who (`actor`, an address or "cli"), what (`action`, `detail`), when, from where.
audit_log = Table(
    "audit_log",
    metadata,
    _id(),
    _when("at"),
    _required("actor", String(320)),
    _required("action", String(64)),
    _required("detail", Text, default=""),
    _required("client", String(64), default=""),
)

# A logged-in browser: the SHA-256 of its random cookie value (never the value), whose it is, and when.
staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    _required("staff_id", ForeignKey("staff.id", ondelete="CASCADE"), index=True),
    _when("created_at"),
    _when("seen_at"),
)

# A staff member's API token (migration 0010): only its SHA-256 is kept; it goes when the member goes.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("staff_id", ForeignKey("staff.id", ondelete="CASCADE"), index=True),
    _required("name", String(100), default=""),
    _required("token_hash", String(64), unique=True),
    _when("created_at"),
    _when("last_used_at", nullable=True),
    _when("revoked_at", nullable=True),
)
