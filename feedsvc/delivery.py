"""The outbox worker: claim rows with a lease, send them through a Transport, record each outcome. No Flask.

Every message to send is an `OutboxMessage` row written before sending starts (by the web request that
asked for it, in the same transaction). A worker:

1. re-queues rows whose lease expired (a worker died mid-send): delivery is at-least-once;
2. claims a batch of due rows, transactional first (priority, then due time), by setting them to
   ``sending`` with its own name and a lease (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so workers never
   wait on each other's rows; SQLite: the claim is one short ``BEGIN IMMEDIATE`` transaction);
3. sends each row, skipping rows whose subscriber no longer wants them, and records the outcome in its
   own short transaction, guarded by the lease owner: sent (with Message-ID and time), re-queued with
   exponential backoff after a temporary failure until `MAX_ATTEMPTS`/`RETRY_DEADLINE`, or failed after a
   permanent one (a hard bounce is counted on the subscriber).

A row's message comes from a `Renderer`: transactional rows carry their rendered notice
(`subscriptions.Notice`, or RFC 5322 bytes), read by `stored_message`; other kinds (issue mail) plug
their own renderer in through `Worker(renderers=...)`. A worker claims only the kinds it can render.

`feedsvc worker` runs `feedsvc.sender.SendWorker` instead: the same ledger and rules for every kind of mail
(it uses `SEND_TO`, `Claimed` and `stored_message` from here), with sending threads over pooled
connections, group-commit outcomes and the configurable `feedsvc.retry.RetryPolicy`. This single-threaded
`Worker` stays for in-process use: it sends transactional mail one row at a time (the subscription tests).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from feedsvc import ratelimit, subscriptions
from feedsvc.config import Settings
from feedsvc.db import Database, utcnow
from feedsvc.models import (
    ACTIVE,
    CANCELLED,
    FAILED,
    KIND_CONFIRM,
    KIND_ISSUE,
    KIND_MANAGE,
    PENDING,
    PRIORITY_TRANSACTIONAL,
    QUEUED,
    SENDING,
    SENT,
    SKIPPED,
    SUBSCRIBER_STATUSES,
    OutboxMessage,
    Subscriber,
)
from feedsvc.transport import PermanentFailure, TemporaryFailure, Transport, open_transport

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
RETRY_DEADLINE = timedelta(days=2)
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
BOUNCE_LIMIT = 3
HOUSEKEEPING_EVERY = 60.0
FINAL_STATES = (SENT, FAILED, CANCELLED, SKIPPED)

# Which subscriber statuses a kind of mail may still go to when it is sent.
SEND_TO: Mapping[str, tuple[str, ...]] = {
    KIND_CONFIRM: (PENDING,),
    KIND_MANAGE: SUBSCRIBER_STATUSES,  # an unsubscribed reader still downloads, erases or resubscribes
    KIND_ISSUE: (ACTIVE,),
}


@dataclass(frozen=True)
class Claimed:
    """A claimed outbox row: what a renderer and the transport need."""

    id: int
    kind: str
    subscriber_id: int | None
    recipient: str
    issue_number: int | None
    sections: str | None
    message: bytes | None
    attempts: int
    created_at: datetime


Renderer = Callable[[Claimed], EmailMessage]


def stored_message(row: Claimed) -> EmailMessage:
    """The renderer for rows that carry their message: a rendered notice (confirm, manage) or RFC 5322 bytes."""
    if row.message is None:
        raise ValueError(f"outbox row {row.id} ({row.kind}) has no stored message")
    if row.message.startswith(b"{"):
        return subscriptions.Notice.from_bytes(row.message).message()
    message = BytesParser(policy=policy.default).parsebytes(row.message)
    assert isinstance(message, EmailMessage)
    return message


def backoff(attempts: int) -> timedelta:
    """The wait before retry number `attempts` (1, 2, …): 30 s doubling, at most an hour."""
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)


def requeue_expired(session: Session, now: datetime) -> int:
    """Put rows whose lease has expired back in the queue; how many."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.state == SENDING, OutboxMessage.lease_expires_at < now)
        .values(state=QUEUED, lease_owner=None, lease_expires_at=None, next_attempt_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def claim(
    session: Session,
    owner: str,
    *,
    limit: int,
    lease_seconds: int,
    now: datetime,
    kinds: Sequence[str] | None = None,
) -> list[Claimed]:
    """Claim up to `limit` due queued rows for `owner` with a lease; highest priority, oldest due first."""
    due = select(OutboxMessage.id).where(OutboxMessage.state == QUEUED, OutboxMessage.next_attempt_at <= now)
    if kinds:
        due = due.where(OutboxMessage.kind.in_(kinds))
    due = due.order_by(OutboxMessage.priority, OutboxMessage.next_attempt_at, OutboxMessage.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = list(session.scalars(due))
    if not ids:
        return []
    rows = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids), OutboxMessage.state == QUEUED)
        .values(
            state=SENDING,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=OutboxMessage.attempts + 1,
            updated_at=now,
        )
        .returning(
            OutboxMessage.id,
            OutboxMessage.kind,
            OutboxMessage.subscriber_id,
            OutboxMessage.recipient,
            OutboxMessage.issue_number,
            OutboxMessage.sections,
            OutboxMessage.message,
            OutboxMessage.attempts,
            OutboxMessage.created_at,
            OutboxMessage.priority,
            OutboxMessage.next_attempt_at,
        )
        .execution_options(synchronize_session=False)
    ).all()
    rows.sort(key=lambda r: (r.priority, r.next_attempt_at, r.id))
    return [Claimed(*row[:9]) for row in rows]


def _finish(session: Session, row_id: int, owner: str, now: datetime, **values: object) -> bool:
    """Record an outcome on a row this owner still holds; False if the lease was lost meanwhile."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, OutboxMessage.state == SENDING, OutboxMessage.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


def mark_sent(session: Session, row: Claimed, owner: str, message_id: str, now: datetime) -> bool:
    """Sent: keep the Message-ID and time; drop the stored body (it holds personal links)."""
    return _finish(session, row.id, owner, now, state=SENT, message_id=message_id, sent_at=now, message=None)


def mark_skipped(session: Session, row: Claimed, owner: str, reason: str, now: datetime) -> bool:
    """Not sent, on purpose (the subscriber no longer wants this mail)."""
    return _finish(session, row.id, owner, now, state=SKIPPED, last_error=reason, message=None)


def mark_retry(session: Session, row: Claimed, owner: str, error: str, now: datetime) -> bool:
    """A temporary failure: back to the queue after a backoff, or failed once attempts or time run out."""
    if row.attempts >= MAX_ATTEMPTS or now + backoff(row.attempts) > row.created_at + RETRY_DEADLINE:
        return mark_failed(session, row, owner, f"gave up after {row.attempts} attempts: {error}", now)
    return _finish(
        session, row.id, owner, now, state=QUEUED, last_error=error, next_attempt_at=now + backoff(row.attempts)
    )


def mark_failed(session: Session, row: Claimed, owner: str, error: str, now: datetime) -> bool:
    """A permanent failure."""
    return _finish(session, row.id, owner, now, state=FAILED, last_error=error, message=None)


def unwanted(session: Session, rows: Sequence[Claimed]) -> dict[int, str]:
    """Rows whose subscriber's status no longer allows that kind of mail: row id → reason."""
    ids = {r.subscriber_id for r in rows if r.subscriber_id is not None}
    if not ids:
        return {}
    status = dict(session.execute(select(Subscriber.id, Subscriber.status).where(Subscriber.id.in_(ids))).all())
    reasons: dict[int, str] = {}
    for row in rows:
        if row.subscriber_id is None:
            continue
        current = status.get(row.subscriber_id)
        allowed = SEND_TO.get(row.kind)
        if current is None:
            reasons[row.id] = "subscriber erased"
        elif allowed is not None and current not in allowed:
            reasons[row.id] = f"subscriber is {current}"
    return reasons


def prune(session: Session, now: datetime, keep: timedelta = timedelta(days=90)) -> int:
    """Delete finished transactional rows older than `keep` (their history goes with them); how many."""
    result = session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.priority == PRIORITY_TRANSACTIONAL,
            OutboxMessage.state.in_(FINAL_STATES),
            OutboxMessage.updated_at < now - keep,
        )
    )
    return result.rowcount or 0


def default_owner() -> str:
    """A worker name unique across machines and processes: host:pid:random."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


@dataclass
class Stats:
    """What a worker has done since it started."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    lost: int = 0

    def total(self) -> int:
        return self.sent + self.retried + self.failed + self.skipped + self.lost


@dataclass
class Worker:
    """Sends the outbox: `run_once()` handles one batch, `run(stop)` loops until `stop` is set."""

    db: Database
    settings: Settings
    transport_factory: Callable[[Settings], Transport] = open_transport
    owner: str = field(default_factory=default_owner)
    batch_size: int = 20
    poll_interval: float = 1.0
    kinds: Sequence[str] | None = None  # default: the kinds it has a renderer for (see handled_kinds)
    renderers: Mapping[str, Renderer] = field(default_factory=dict)
    bounce_limit: int = BOUNCE_LIMIT
    clock: Callable[[], datetime] = utcnow
    stats: Stats = field(default_factory=Stats)
    _transport: Transport | None = field(default=None, init=False, repr=False)
    _last_housekeeping: float = field(default=0.0, init=False, repr=False)

    def run(self, stop: threading.Event) -> Stats:
        """Send until `stop` is set; between batches with nothing due, wait `poll_interval`."""
        try:
            while not stop.is_set():
                if time.monotonic() - self._last_housekeeping >= HOUSEKEEPING_EVERY:
                    self.housekeeping()
                if self.run_once() == 0:
                    self.close_transport()  # do not hold an idle SMTP connection open
                    stop.wait(self.poll_interval)
        finally:
            self.close_transport()
        return self.stats

    def drain(self) -> Stats:
        """Send everything due now, then return (for `feedsvc worker --once` and tests)."""
        try:
            while self.run_once():
                pass
        finally:
            self.close_transport()
        return self.stats

    def run_once(self) -> int:
        """Re-queue expired leases, claim one batch, send it; the number of rows handled."""
        now = self.clock()
        with self.db.session() as session:
            requeue_expired(session, now)
            rows = claim(
                session,
                self.owner,
                limit=self.batch_size,
                lease_seconds=self.settings.lease_seconds,
                now=now,
                kinds=self.handled_kinds(),
            )
        if not rows:
            return 0
        with self.db.session(readonly=True) as session:
            skip = unwanted(session, rows)
        for row in rows:
            self._deliver(row, skip.get(row.id))
        return len(rows)

    def handled_kinds(self) -> tuple[str, ...]:
        """The kinds this worker claims: `kinds` if given, else those it can render (stored notices + `renderers`)."""
        return tuple(self.kinds) if self.kinds else (KIND_CONFIRM, KIND_MANAGE, *self.renderers)

    def _deliver(self, row: Claimed, skip_reason: str | None) -> None:
        if skip_reason:
            self._record(mark_skipped, row, skip_reason)
            self.stats.skipped += 1
            return
        try:
            message = self.renderers.get(row.kind, stored_message)(row)
            message_id = self.transport().send(message)
        except PermanentFailure as exc:
            self._record(mark_failed, row, _describe(exc))
            self.stats.failed += 1
            if row.subscriber_id is not None:
                with self.db.session() as session:
                    subscriptions.record_bounce(session, row.subscriber_id, self.bounce_limit, _describe(exc))
        except TemporaryFailure as exc:
            self.close_transport()
            self._record(mark_retry, row, _describe(exc))
            self.stats.retried += 1
        except Exception as exc:  # a bug or an unexpected transport error: keep the row, retry later
            log.exception("outbox row %s: unexpected error", row.id)
            self.close_transport()
            self._record(mark_retry, row, _describe(exc))
            self.stats.retried += 1
        else:
            if self._record(mark_sent, row, message_id):
                self.stats.sent += 1

    def _record(self, mark: Callable[..., bool], row: Claimed, detail: str) -> bool:
        with self.db.session() as session:
            done = mark(session, row, self.owner, detail, self.clock())
        if not done:
            self.stats.lost += 1
            log.warning("outbox row %s: lease lost before its outcome was recorded", row.id)
        return done

    def transport(self) -> Transport:
        """The open transport, opened on first use."""
        if self._transport is None:
            self._transport = self.transport_factory(self.settings)
        return self._transport

    def close_transport(self) -> None:
        if self._transport is not None:
            transport, self._transport = self._transport, None
            try:
                transport.close()
            except Exception:
                log.warning("closing the transport failed", exc_info=True)

    def housekeeping(self) -> None:
        """Forget what is no longer needed: old rate-limit counters, unconfirmed sign-ups, old transactional rows."""
        self._last_housekeeping = time.monotonic()
        now = self.clock()
        with self.db.session() as session:
            ratelimit.prune(session, now.timestamp())
            subscriptions.purge_unconfirmed(session, now=now)
            prune(session, now)


def pending_count(session: Session, kinds: Sequence[str] | None = None) -> int:
    """Rows queued or being sent (of `kinds`)."""
    query = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.state.in_((QUEUED, SENDING)))
    if kinds:
        query = query.where(OutboxMessage.kind.in_(kinds))
    return session.scalar(query) or 0


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


__all__ = [
    "Claimed",
    "Renderer",
    "Stats",
    "Worker",
    "backoff",
    "claim",
    "mark_failed",
    "mark_retry",
    "mark_sent",
    "mark_skipped",
    "pending_count",
    "prune",
    "requeue_expired",
    "stored_message",
    "unwanted",
]
