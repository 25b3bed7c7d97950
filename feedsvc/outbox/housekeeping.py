"""What the worker forgets every minute: old rate-limit counters, unconfirmed sign-ups, old transactional rows.

No Flask. Issue rows are kept: they are the record of who got which issue.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from feedsvc import ratelimit
from feedsvc.db.models import CANCELLED, FAILED, PRIORITY_TRANSACTIONAL, SENT, SKIPPED, OutboxMessage
from feedsvc.subscribers import subscriptions

__all__ = ["FINAL_STATES", "TRANSACTIONAL_KEEP", "housekeeping", "prune"]

FINAL_STATES = (SENT, FAILED, CANCELLED, SKIPPED)
TRANSACTIONAL_KEEP = timedelta(days=90)


def prune(session: Session, now: datetime, keep: timedelta = TRANSACTIONAL_KEEP) -> int:
    """Delete finished transactional rows older than `keep` (their history goes with them); how many."""
    result = session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.priority == PRIORITY_TRANSACTIONAL,
            OutboxMessage.state.in_(FINAL_STATES),
            OutboxMessage.updated_at < now - keep,
        )
    )
    return result.rowcount or 0


def housekeeping(session: Session, now: datetime) -> None:
    """Forget what is no longer needed: old rate-limit counters, unconfirmed sign-ups, old transactional rows."""
    ratelimit.prune(session, now.timestamp())
    subscriptions.purge_unconfirmed(session, now=now)
    prune(session, now)
