"""The bounce tables (migration 0011): `BounceReport`, each message taken in (its raw bytes for 30 days), and
`Bounce`, one per recipient result that was matched or counted: what the server said and what it did."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from feedsvc.db.models import Base

_ID = BigInteger().with_variant(Integer, "sqlite")


class BounceReport(Base):
    """One message taken in (a DSN, an ARF report, an auto-reply, an SES event), kept as it came for 30 days."""

    __tablename__ = "bounce_reports"
    __table_args__ = (Index(None, "received_at"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))  # imap, lmtp, smtp, ses, cli, …
    report_type: Mapped[str] = mapped_column(String(32))  # dsn, arf, flufl, auto_reply, event, smtp
    outcome: Mapped[str] = mapped_column(String(32))  # recorded, unmatched, no_change
    matched: Mapped[int] = mapped_column(Integer, default=0)
    unmatched: Mapped[int] = mapped_column(Integer, default=0)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)  # emptied after RAW_KEPT (feedsvc.outbox.housekeeping)
    received_at: Mapped[datetime]


class Bounce(Base):
    """A matched bounce or complaint: subscriber, outbox row, kind, status, the server's words, and its effect. A
    policy block keeps its subscriber (so that erasing them erases it) but never counts against them."""

    __tablename__ = "bounces"
    __table_args__ = (
        Index(None, "subscriber_id", "at"),
        Index(None, "issue_number", "kind"),
        Index(None, "outbox_id"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("bounce_reports.id", ondelete="SET NULL"))
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id", ondelete="SET NULL"))
    issue_number: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # hard, soft, policy, complaint
    status: Mapped[str] = mapped_column(String(16), default="")  # 5.1.1, or the feedback type of a complaint
    diagnostic: Mapped[str] = mapped_column(Text, default="")  # the server's own words
    source: Mapped[str] = mapped_column(String(32))
    counted: Mapped[bool] = mapped_column(Boolean, default=False)  # whether it changed the score or the status
    effect: Mapped[str] = mapped_column(String(32), default="")  # scored, bounced, unsubscribed, soft_today, …
    at: Mapped[datetime]
