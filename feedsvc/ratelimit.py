"""Rate limits shared by every web process: fixed-window counters in the database. No Flask.

A counter is one row per (action, client) key, bumped with a single atomic upsert, so any number of
gunicorn workers (or machines, on PostgreSQL) agree without a lock or a Redis. Client addresses are
stored only as a keyed hash.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import case, delete, select, text
from sqlalchemy.orm import Session

from feedsvc.db.engine import insert_for
from feedsvc.db.models import RateLimit


@dataclass(frozen=True)
class Limit:
    """At most `count` hits per `window` seconds."""

    count: int
    window: int

    @classmethod
    def parse(cls, value: str) -> Limit:
        """``"10/600"``: ten per 600 seconds."""
        count, _, window = value.partition("/")
        limit = cls(int(count), int(window or 60))
        if limit.count < 1 or limit.window < 1:
            raise ValueError(f"rate limit {value!r}: both numbers must be positive")
        return limit


def client_key(action: str, client: str, secret: str) -> str:
    """The counter key for `client` (an IP address) doing `action`; the address itself is not stored."""
    digest = hmac.new(secret.encode(), client.encode(), hashlib.sha256).hexdigest()[:40]
    return f"{action}:{digest}"


def hit(session: Session, key: str, limit: Limit, now: float) -> bool:
    """Count one hit under `key`; True while the window's hits are within the limit.

    On PostgreSQL the transaction commits without waiting for its WAL flush (``synchronous_commit = off``
    for this transaction only): every request of a client (or of every client behind one proxy) bumps the
    same row, so each waits for the one before it to commit, and a flush per hit made that queue the sign-up
    latency tail. What a crash can lose is the last fraction of a second of counts; the count itself is
    exact while the server runs, and every other write keeps its durable commit.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    window_start = int(now) - int(now) % limit.window
    stmt = insert_for(session, RateLimit).values(key=key, window_start=window_start, hits=1)
    same_window = RateLimit.window_start == stmt.excluded.window_start
    stmt = stmt.on_conflict_do_update(
        index_elements=[RateLimit.key],
        set_={"hits": case((same_window, RateLimit.hits + 1), else_=1), "window_start": stmt.excluded.window_start},
    ).returning(RateLimit.hits)
    hits = session.execute(stmt).scalar_one()
    return hits <= limit.count


def exceeded(session: Session, key: str, limit: Limit, now: float) -> bool:
    """True when `key` has already used up this window's hits (reads, counts nothing)."""
    window_start = int(now) - int(now) % limit.window
    hits = session.scalar(select(RateLimit.hits).where(RateLimit.key == key, RateLimit.window_start == window_start))
    return hits is not None and hits >= limit.count


def prune(session: Session, now: float, older_than: int = 86_400) -> int:
    """Delete counters whose window started more than `older_than` seconds ago; how many went."""
    result = session.execute(delete(RateLimit).where(RateLimit.window_start < int(now) - older_than))
    return result.rowcount or 0
