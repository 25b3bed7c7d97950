"""Deleting subscribers with everything sent to them, and forgetting sign-ups never confirmed. No Flask, no ORM.

The outbox has no foreign key to cascade (migration 0012), so a subscriber's outbox rows are deleted here,
by the unique (issue_number, subscriber_id) index; their sections and events go by their keys' cascade.
`feedsvc worker` purges unconfirmed sign-ups in its housekeeping, in Core statements; erasing someone
(feedsvc.subscribers.privacy) deletes them through the same function.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, delete, select

from feedsvc.db.engine import utcnow
from feedsvc.db.tables import PENDING, outbox, subscribers
from feedsvc.outbox import sends

if TYPE_CHECKING:
    from feedsvc.db.engine import Executor

__all__ = ["DELETE_BATCH", "UNCONFIRMED_KEPT", "delete_subscribers", "purge_unconfirmed"]

DELETE_BATCH = 500  # subscribers per outbox DELETE (each probes the unique index once per issue in the outbox)
UNCONFIRMED_KEPT = timedelta(days=30)  # how long a sign-up that was never confirmed is kept


def delete_subscribers(executor: Executor, *where: ColumnElement[bool]) -> int:
    """Delete the subscribers matching `where` with their outbox rows; how many subscribers."""
    chosen = list(executor.scalars(select(subscribers.c.id).where(*where)))
    if not chosen:
        return 0
    numbers = sends.issues_in_outbox(executor)  # once: deleting rows of some subscribers leaves every issue's others
    deleted = 0
    for start in range(0, len(chosen), DELETE_BATCH):
        part = chosen[start : start + DELETE_BATCH]
        executor.execute(delete(outbox).where(sends.rows_of(executor, part, numbers)))
        result = executor.execute(delete(subscribers).where(subscribers.c.id.in_(part)))
        deleted += result.rowcount or 0
    return deleted


def purge_unconfirmed(executor: Executor, *, now: datetime | None = None) -> int:
    """Delete pending sign-ups never confirmed within UNCONFIRMED_KEPT of their creation (no consent, so no reason
    to keep them; repeated submissions by anyone do not extend it)."""
    cutoff = (now or utcnow()) - UNCONFIRMED_KEPT
    return delete_subscribers(
        executor,
        subscribers.c.status == PENDING,
        subscribers.c.confirmed_at.is_(None),
        subscribers.c.created_at < cutoff,
    )
