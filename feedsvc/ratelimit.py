"""Rate limits shared by every web process: fixed-window counters in the database. No Flask.

A counter is one row per (action, client) key, bumped with a single atomic upsert, so any number of
gunicorn workers (or machines, on PostgreSQL) agree without a lock or a Redis. Client addresses are
stored only as a keyed hash.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Integer, String, bindparam, case, delete, func, literal, select

from feedsvc.db.engine import dialect_of, insert_for_dialect
from feedsvc.db.tables import rate_limits

if TYPE_CHECKING:
    from feedsvc.db.engine import Executor


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


def hit(executor: Executor, key: str, limit: Limit, now: float) -> bool:
    """Count one hit under `key`; True while the window's hits are within the limit.

    One statement, so it can run on its own (autocommit: no BEGIN or COMMIT round trips, the row lock held
    only inside the server) or in the caller's transaction. On PostgreSQL the statement itself sets
    ``synchronous_commit = off`` for its transaction (``set_config(…, true)``): every request of a client
    (or of every client behind one proxy) bumps the same row, so each waits for the one before it to commit,
    and a flush per hit made that queue the sign-up latency tail. What a crash can lose is the last fraction
    of a second of counts; the count itself is exact while the server runs, and every other write keeps its
    durable commit (a caller's transaction that holds other writes should not count hits in it).
    """
    window_start = int(now) - int(now) % limit.window
    hits = executor.execute(_hit_statement(dialect_of(executor)), {"key": key, "window_start": window_start})
    return hits.scalar_one() <= limit.count


@cache
def _hit_statement(dialect: str) -> Any:
    """The upsert `hit` runs, built once per dialect (building it cost more than running it on SQLite); Core, so
    that a session runs it as it is."""
    table = rate_limits
    stmt = insert_for_dialect(dialect, table)
    key, window_start = bindparam("key", type_=String), bindparam("window_start", type_=BigInteger)
    if dialect == "postgresql":
        relaxed = func.set_config("synchronous_commit", "off", True) == "off"
        row = select(key, window_start, literal(1, Integer)).where(relaxed)
        stmt = stmt.from_select([table.c.key, table.c.window_start, table.c.hits], row)
    else:
        stmt = stmt.values(key=key, window_start=window_start, hits=1)
    same_window = table.c.window_start == stmt.excluded.window_start
    return stmt.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={"hits": case((same_window, table.c.hits + 1), else_=1), "window_start": stmt.excluded.window_start},
    ).returning(table.c.hits)


def exceeded(session: Executor, key: str, limit: Limit, now: float) -> bool:
    """True when `key` has already used up this window's hits (reads, counts nothing)."""
    window_start = int(now) - int(now) % limit.window
    counter = rate_limits.c
    hits = session.scalar(select(counter.hits).where(counter.key == key, counter.window_start == window_start))
    return hits is not None and hits >= limit.count


def prune(session: Executor, now: float, older_than: int = 86_400) -> int:
    """Delete counters whose window started more than `older_than` seconds ago; how many went."""
    result = session.execute(delete(rate_limits).where(rate_limits.c.window_start < int(now) - older_than))
    return result.rowcount or 0
