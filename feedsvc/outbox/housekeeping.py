"""What the worker forgets every minute: old rate-limit counters, unconfirmed sign-ups, old transactional rows,
the raw bytes of bounce reports older than 30 days (the bounces themselves are kept).

No Flask. Issue rows are kept: they are the record of who got which issue.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, update

from feedsvc import ratelimit
from feedsvc.db.tables import CANCELLED, FAILED, PRIORITY_TRANSACTIONAL, SENT, SKIPPED, bounce_reports, outbox
from feedsvc.subscribers.removal import purge_unconfirmed

if TYPE_CHECKING:
    from feedsvc.db.engine import Executor

__all__ = ["FINAL_STATES", "RAW_REPORTS_KEPT", "TRANSACTIONAL_KEEP", "forget_raw_reports", "housekeeping", "prune"]

FINAL_STATES = (SENT, FAILED, CANCELLED, SKIPPED)
TRANSACTIONAL_KEEP = timedelta(days=90)
RAW_REPORTS_KEPT = timedelta(days=30)


def prune(session: Executor, now: datetime, keep: timedelta = TRANSACTIONAL_KEEP) -> int:
    """Delete finished transactional rows older than `keep` (their history goes with them); how many."""
    result = session.execute(
        delete(outbox).where(
            outbox.c.priority == PRIORITY_TRANSACTIONAL,
            outbox.c.state.in_(FINAL_STATES),
            outbox.c.updated_at < now - keep,
        )
    )
    return result.rowcount or 0


def forget_raw_reports(session: Executor, now: datetime, keep: timedelta = RAW_REPORTS_KEPT) -> int:
    """Empty the raw bytes of bounce reports taken in more than `keep` ago (what they did stays); how many."""
    result = session.execute(
        update(bounce_reports)
        .where(bounce_reports.c.received_at < now - keep, bounce_reports.c.raw.is_not(None))
        .values(raw=None)
    )
    return result.rowcount or 0


def housekeeping(session: Executor, now: datetime) -> None:
    """Forget what is no longer needed: old rate-limit counters, unconfirmed sign-ups, old transactional rows,
    old raw bounce reports."""
    ratelimit.prune(session, now.timestamp())
    purge_unconfirmed(session, now=now)
    prune(session, now)
    forget_raw_reports(session, now)
