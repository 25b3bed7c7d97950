"""One send rate for the whole fleet: FEEDSVC_SEND_RATE messages per second across every worker on every machine.

The schedule is one row of ``send_schedules`` holding the next free slot (GCRA, as `TokenBucket` in
feedsvc.mail.pool, but on the database clock so machines need not agree on the time). A worker reserves
a small batch of consecutive slots with a single upsert ``... RETURNING`` and spends them locally, so the
database sees one short statement per batch, not one per message. Slots a worker reserves and does not
use (it stopped, or ran dry) are lost, which only ever makes the fleet slower than the rate, never faster.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import func, literal_column
from sqlalchemy.exc import SQLAlchemyError

from feedsvc.db.engine import Database, insert_for
from feedsvc.db.tables import send_schedules
from feedsvc.mail.pool import Pacer

log = logging.getLogger(__name__)

__all__ = ["FleetBucket", "reserve_slots"]

SCHEDULE_KEY = "outbox"
BATCH_SECONDS = 0.1  # a reservation covers this much of the fleet's rate (at least one slot)


def _database_now(dialect: str) -> object:
    """The database's own clock in epoch seconds (microseconds on PostgreSQL, milliseconds on SQLite)."""
    if dialect == "postgresql":
        return literal_column("extract(epoch from clock_timestamp())::float8")
    return literal_column("((julianday('now') - 2440587.5) * 86400.0)")


def reserve_slots(db: Database, rate: float, count: int, key: str = SCHEDULE_KEY) -> tuple[float, float]:
    """Reserve `count` consecutive slots at `rate` per second; return (first slot, the database's now).

    One atomic upsert: the schedule moves from max(next_slot, now) by count/rate, so concurrent callers
    on any machine get disjoint slots.
    """
    span = count / rate
    with db.transaction() as connection:
        now = _database_now(db.dialect)
        table = send_schedules
        stmt = insert_for(connection, table).values(key=key, next_slot=now + span)
        latest = func.greatest if db.dialect == "postgresql" else func.max
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.key], set_={"next_slot": latest(table.c.next_slot, now) + span}
        ).returning(table.c.next_slot, now)
        next_slot, db_now = connection.execute(stmt).one()
    return float(next_slot) - span, float(db_now)


class FleetBucket(Pacer):
    """`acquire()` returns when the fleet may send one more message; same interface as `TokenBucket`.

    Slots are reserved from the database `batch` at a time (default: a tenth of a second of the rate)
    and mapped onto this process's monotonic clock at the moment the reservation returns.
    """

    def __init__(
        self,
        db: Database,
        rate: float,
        batch: int = 0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db, self.rate = db, rate
        self.batch = batch or max(1, int(rate * BATCH_SECONDS))
        self.clock, self.sleep = clock, sleep
        self._lock = threading.Lock()
        self._slots: list[float] = []  # reserved slots still to use, on the local monotonic clock
        self.reservations = 0
        self._last = float("-inf")  # the latest slot handed out, on the local clock
        self._alone = False  # the database was out of reach at the last reservation

    def _reserve_batch(self) -> list[float]:
        """The next batch of slots, last first. With the database out of reach, the slots are this process's
        own at the full rate (logged), so the messages in hand still go, paced, and nothing fails for it."""
        interval = 1.0 / self.rate
        try:
            first, db_now = reserve_slots(self.db, self.rate, self.batch)
            first += self.clock() - db_now
            self.reservations += 1
            if self._alone:
                log.info("fleet send rate: database reachable again; pacing with the fleet")
                self._alone = False
        except SQLAlchemyError as exc:
            if not self._alone:  # said once per outage, not once per batch
                log.warning("fleet send rate: database out of reach (%s); pacing this worker alone", type(exc).__name__)
                self._alone = True
            first = max(self._last + interval, self.clock())
        self._last = first + (self.batch - 1) * interval
        return [first + i * interval for i in reversed(range(self.batch))]

    def reserve(self) -> float:
        """Take the next reserved slot (reserving a new batch when none is left); return the wait for it."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            if not self._slots:
                self._slots = self._reserve_batch()
            slot = self._slots.pop()
        wait = slot - self.clock()
        return wait if wait > 1e-9 else 0.0
