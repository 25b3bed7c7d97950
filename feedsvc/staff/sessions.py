"""Server-side staff sessions: a random id in the browser's cookie, only its SHA-256 in the database. No Flask.

A session ends when it has been idle too long, when it is too old whatever the activity, at logout, and when
its member is removed or gets a new password (`end_all`). The role is never kept in the session: `resume`
returns the member row as it is now, so a role change applies on the next request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from feedsvc.staff.models import StaffMember, StaffSession

#: `seen_at` is written at most this often, so that reading pages does not write on every request.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class Lifetime:
    """How long a session lives: `idle` without a request, `absolute` since login."""

    idle: timedelta
    absolute: timedelta


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


def start(session: Session, staff_id: int, now: datetime) -> str:
    """A new session for member `staff_id`; the cookie value (stored only as its hash)."""
    session_id = secrets.token_urlsafe(32)
    session.add(StaffSession(id_hash=_digest(session_id), staff_id=staff_id, created_at=now, seen_at=now))
    return session_id


def resume(session: Session, session_id: str, now: datetime, lifetime: Lifetime) -> StaffMember | None:
    """The member whose live session `session_id` is (as the database has them now), or None.

    An expired session is deleted; a live one has its `seen_at` moved on (at most every TOUCH_EVERY).
    """
    if not session_id:
        return None
    row = session.get(StaffSession, _digest(session_id))
    if row is None:
        return None
    if now - row.seen_at > lifetime.idle or now - row.created_at > lifetime.absolute:
        session.delete(row)
        return None
    if now - row.seen_at >= TOUCH_EVERY:
        row.seen_at = now
    return session.scalar(select(StaffMember).where(StaffMember.id == row.staff_id))


def end(session: Session, session_id: str) -> None:
    """Delete the session `session_id` (logout); nothing if there is none."""
    if session_id:
        session.execute(delete(StaffSession).where(StaffSession.id_hash == _digest(session_id)))


def end_all(session: Session, staff_id: int) -> int:
    """Delete every session of member `staff_id` (removed, new password); how many there were."""
    result = session.execute(delete(StaffSession).where(StaffSession.staff_id == staff_id))
    return result.rowcount or 0


def prune(session: Session, now: datetime, lifetime: Lifetime) -> int:
    """Delete every expired session; how many went."""
    stale = (StaffSession.seen_at < now - lifetime.idle) | (StaffSession.created_at < now - lifetime.absolute)
    return session.execute(delete(StaffSession).where(stale)).rowcount or 0
