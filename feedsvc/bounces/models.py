"""The bounce tables' ORM classes (migration 0011; their tables are in feedsvc.db.tables): `BounceReport`, each
message taken in (its raw bytes for 30 days), and `Bounce`, one per recipient result that was matched or counted:
what the server said and what it did."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Mapped

from feedsvc.db import tables
from feedsvc.db.models import Base


class BounceReport(Base):
    """One message taken in (a DSN, an ARF report, an auto-reply, an SES event), kept as it came for 30 days."""

    __table__ = tables.bounce_reports

    id: Mapped[int]
    source: Mapped[str]
    report_type: Mapped[str]
    outcome: Mapped[str]
    matched: Mapped[int]
    unmatched: Mapped[int]
    raw: Mapped[bytes | None]
    received_at: Mapped[datetime]


class Bounce(Base):
    """A matched bounce or complaint: subscriber, outbox row, kind, status, the server's words, and its effect."""

    __table__ = tables.bounces

    id: Mapped[int]
    report_id: Mapped[int | None]
    subscriber_id: Mapped[int | None]
    outbox_id: Mapped[int | None]
    issue_number: Mapped[int | None]
    kind: Mapped[str]
    status: Mapped[str]
    diagnostic: Mapped[str]
    source: Mapped[str]
    counted: Mapped[bool]
    effect: Mapped[str]
    at: Mapped[datetime]
