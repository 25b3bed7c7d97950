"""The outbox as a queue of leased rows: claim, record, renew, release and reap, in SQL. No Flask.

`OutboxQueue` is the one seam the worker sends through; the module functions are its statements, each
run in the caller's transaction. A claim sets due ``queued`` rows to ``sending`` with the claimer's name
and a lease: PostgreSQL picks them with ``FOR UPDATE SKIP LOCKED`` so workers never wait on or take each
other's rows; SQLite serialises the claim with ``BEGIN IMMEDIATE``. Rows of a paused or stopped send are
not claimed; rows whose subscriber may no longer get that kind of mail are ``skipped`` in the same
transaction. Every outcome is written only if its worker still holds the row's lease.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, and_, bindparam, func, literal, literal_column, or_, select, update

from feedsvc.bounces import scoring
from feedsvc.bounces.classify import BouncePolicy
from feedsvc.db.engine import Database, dialect_of
from feedsvc.db.tables import FAILED, QUEUED, SENDING, SENT, SKIPPED, UTCDateTime, issues, outbox, subscribers
from feedsvc.i18n import DEFAULT_LANGUAGE, LANGUAGES
from feedsvc.ops import metrics
from feedsvc.outbox import sends
from feedsvc.outbox.retry import RetryPolicy
from feedsvc.outbox.rules import SEND_TO

if TYPE_CHECKING:
    from feedsvc.db.engine import Executor

__all__ = ["Job", "OutboxQueue", "Outcome", "Recorded", "SendKey", "claim", "reap", "record", "renew"]

OUTBOX = outbox
# The state tests that pick the partial indexes ix_outbox_claim and ix_outbox_lease: written as SQL
# constants, because SQLite uses a partial index only when the query's WHERE repeats the index's WHERE
# literally; `state = ?` with a bound 'queued' would scan the whole outbox on every claim.
IS_QUEUED = OUTBOX.c.state == literal_column(f"'{QUEUED}'")
IS_SENDING = OUTBOX.c.state == literal_column(f"'{SENDING}'")

# Outcome results.
SENT_OK, TEMPORARY, PERMANENT, RELEASED = "sent", "temporary", "permanent", "released"
# What a recorded outcome did to its row, as `Recorded.tally` counts it.
RETRIED = "retried"


@dataclass(frozen=True)
class Job:
    """A claimed row and what sending it needs about its subscriber."""

    id: int
    kind: str
    subscriber_id: int | None
    recipient: str
    issue_number: int | None
    sections: str | None
    message: bytes | None
    attempts: int
    created_at: datetime
    token_version: int = 1
    lang: str = DEFAULT_LANGUAGE
    first_attempt_at: datetime | None = None  # the retry deadline counts from here


@dataclass(frozen=True)
class Outcome:
    """What happened to one job: sent, temporary, permanent, or released (not started: its send was halted)."""

    job: Job
    result: str
    message_id: str = ""
    error: str = ""
    maybe_delivered: bool = False


# A send, as tallies name it: (outbox kind, issue number or None for transactional mail).
SendKey = tuple[str, int | None]


@dataclass
class Recorded:
    """What one `record` wrote: rows sent, queued again, failed, handed back, and outcomes lost."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0
    lost: int = 0  # not written because the lease had been taken over
    tally: Counter[tuple[str, SendKey]] = field(default_factory=Counter)  # (sent|retried|failed, send) → rows


# ------------------------------------------------------------------------------------------- claim


def claim(executor: Executor, owner: str, *, limit: int, lease_seconds: int, now: datetime) -> tuple[list[Job], int]:
    """Claim up to `limit` due rows for `owner`; returns the jobs to send and how many were skipped.

    Skipped rows (the subscriber is no longer active for that kind of mail, or was erased) are final
    in the same transaction. Rows of paused or stopped sends are left alone.
    """
    ids = _due(executor, limit, now)
    if not ids:
        return [], 0
    rows = _lease(executor, owner, ids, lease_seconds, now)
    jobs, skips = _sort_out(rows, _readers(executor, rows))
    _skip(executor, skips, now)
    return jobs, len(skips)


def _due(executor: Executor, limit: int, now: datetime) -> list[int]:
    """Ids of the next due queued rows not of a halted send: transactional first, then by due time."""
    halted = select(issues.c.number).where(issues.c.send_state != sends.RUNNING)
    due = (
        select(OUTBOX.c.id)
        .where(
            IS_QUEUED,
            OUTBOX.c.next_attempt_at <= now,
            or_(OUTBOX.c.issue_number.is_(None), OUTBOX.c.issue_number.not_in(halted)),
        )
        .order_by(OUTBOX.c.priority, OUTBOX.c.next_attempt_at, OUTBOX.c.id)
        .limit(limit)
    )
    if dialect_of(executor) == "postgresql":
        due = due.with_for_update(skip_locked=True, of=OUTBOX)
    return list(executor.scalars(due))


def _lease(executor: Executor, owner: str, ids: list[int], lease_seconds: int, now: datetime) -> list[Row[Any]]:
    """Set the rows `ids` that are still queued to sending under `owner`'s lease; the rows, in claim order."""
    rows = executor.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(ids), OUTBOX.c.state == QUEUED)
        .values(
            state=SENDING,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=OUTBOX.c.attempts + 1,
            first_attempt_at=func.coalesce(OUTBOX.c.first_attempt_at, literal(now, UTCDateTime())),
            updated_at=now,
        )
        .returning(
            OUTBOX.c.id,
            OUTBOX.c.kind,
            OUTBOX.c.subscriber_id,
            OUTBOX.c.recipient,
            OUTBOX.c.issue_number,
            OUTBOX.c.sections,
            OUTBOX.c.message,
            OUTBOX.c.attempts,
            OUTBOX.c.created_at,
            OUTBOX.c.priority,
            OUTBOX.c.next_attempt_at,
            OUTBOX.c.first_attempt_at,
        )
    ).all()
    rows.sort(key=lambda r: (r.priority, r.next_attempt_at, r.id))
    return rows


def _readers(executor: Executor, rows: Sequence[Row[Any]]) -> dict[int, tuple[str, int, str]]:
    """Status, token version and language of the subscribers the rows go to (erased ones are missing)."""
    ids = {r.subscriber_id for r in rows if r.subscriber_id is not None}
    found = executor.execute(
        select(subscribers.c.id, subscribers.c.status, subscribers.c.token_version, subscribers.c.lang).where(
            subscribers.c.id.in_(ids)
        )
    )
    return {sid: (status, version, lang) for sid, status, version, lang in found}


def _sort_out(
    rows: Sequence[Row[Any]], readers: dict[int, tuple[str, int, str]]
) -> tuple[list[Job], list[dict[str, object]]]:
    """The rows to send as jobs, and the rows to skip with why (SEND_TO says who a kind may still go to)."""
    jobs: list[Job] = []
    skips: list[dict[str, object]] = []
    for r in rows:
        status, version, lang = readers.get(r.subscriber_id, (None, 1, DEFAULT_LANGUAGE))
        if r.subscriber_id is not None:
            allowed = SEND_TO.get(r.kind)
            if status is None:  # erased while this row was being written: it keeps no address either
                skips.append({"b_id": r.id, "b_error": "subscriber erased", "b_recipient": ""})
                continue
            if allowed is not None and status not in allowed:
                skips.append({"b_id": r.id, "b_error": f"subscriber is {status}", "b_recipient": r.recipient})
                continue
        language = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        jobs.append(Job(*r[:9], token_version=version, lang=language, first_attempt_at=r.first_attempt_at))
    return jobs, skips


def _skip(executor: Executor, skips: list[dict[str, object]], now: datetime) -> None:
    if not skips:
        return
    executor.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id == bindparam("b_id"))
        .values(
            state=SKIPPED,
            last_error=bindparam("b_error"),
            recipient=bindparam("b_recipient"),
            lease_owner=None,
            lease_expires_at=None,
            message=None,
            updated_at=now,
        ),
        skips,
    )


# ------------------------------------------------------------------------------------------ record


def record(
    executor: Executor,
    owner: str,
    outcomes: Sequence[Outcome],
    policy: RetryPolicy,
    now: datetime,
    rng: random.Random | None = None,
) -> Recorded:
    """Write `outcomes` in the caller's transaction, each only if `owner` still holds the row."""
    sent, retry, failed, released, bounces = _sort_outcomes(outcomes, policy, now, rng)
    guard = and_(OUTBOX.c.id == bindparam("b_id"), OUTBOX.c.state == SENDING, OUTBOX.c.lease_owner == owner)
    free = {"lease_owner": None, "lease_expires_at": None, "updated_at": now}

    def write(values: dict[str, object], params: list[dict[str, object]]) -> int:
        if not params:
            return 0
        result = executor.execute(update(OUTBOX).where(guard).values(**values, **free), params)
        return max(result.rowcount, 0)

    jobs = {outcome.job.id: outcome.job for outcome in outcomes}
    done = Recorded()

    def write_by_send(what: str, values: dict[str, object], params: list[dict[str, object]]) -> int:
        """`write` once per send (kind, issue): a group commit holds one or two, and each count is exact."""
        groups: dict[SendKey, list[dict[str, object]]] = defaultdict(list)
        for param in params:
            job = jobs[int(param["b_id"])]  # type: ignore[call-overload]
            groups[job.kind, job.issue_number].append(param)
        total = 0
        for key, group in groups.items():
            count = write(values, group)
            done.tally[what, key] += count
            total += count
        return total

    done.sent = write_by_send(
        SENT, {"state": SENT, "message_id": bindparam("b_mid"), "sent_at": now, "message": None}, sent
    )
    done.retried = write_by_send(
        RETRIED, {"state": QUEUED, "last_error": bindparam("b_error"), "next_attempt_at": bindparam("b_next")}, retry
    )
    failed_values = {"state": FAILED, "last_error": bindparam("b_error"), "message": None}
    done.failed = write_by_send(FAILED, failed_values, failed)
    for outcome in bounces:  # one by one (they are rare): a bounce counts only if this worker still held the row
        if not write(failed_values, [{"b_id": outcome.job.id, "b_error": outcome.error}]):
            continue
        done.failed += 1
        done.tally[FAILED, (outcome.job.kind, outcome.job.issue_number)] += 1
        scoring.record_refusal(  # the one bounce rule: policy refusals never count against the reader
            executor,
            subscriber_id=outcome.job.subscriber_id,
            outbox_id=outcome.job.id,
            issue_number=outcome.job.issue_number,
            reply=outcome.error,
            policy=BouncePolicy(limit=policy.bounce_limit, stale_days=policy.bounce_stale_days),
            now=now,
        )
    done.released = write({"state": QUEUED, "attempts": OUTBOX.c.attempts - 1, "next_attempt_at": now}, released)
    done.lost = len(outcomes) - done.sent - done.retried - done.failed - done.released
    if released:
        sends.cancel_queued(executor, now)  # a row handed back from a stopped send is cancelled at once
    return done


_Params = list[dict[str, object]]


def _sort_outcomes(
    outcomes: Sequence[Outcome], policy: RetryPolicy, now: datetime, rng: random.Random | None
) -> tuple[_Params, _Params, _Params, _Params, list[Outcome]]:
    """The outcomes as parameters of the statements that write them: sent, retry, failed, released, bounces."""
    sent: _Params = []
    retry: _Params = []
    failed: _Params = []
    released: _Params = []
    bounces: list[Outcome] = []
    for outcome in outcomes:
        job = outcome.job
        if outcome.result == SENT_OK:
            sent.append({"b_id": job.id, "b_mid": outcome.message_id})
        elif outcome.result == RELEASED:
            released.append({"b_id": job.id})
        elif outcome.result == PERMANENT:
            bounces.append(outcome)
        else:
            when = policy.next_attempt(job.attempts, job.first_attempt_at or job.created_at, now, rng)
            if when is None:
                failed.append({"b_id": job.id, "b_error": f"gave up after {job.attempts} attempts: {outcome.error}"})
            else:
                retry.append({"b_id": job.id, "b_error": outcome.error, "b_next": when})
    return sent, retry, failed, released, bounces


# ---------------------------------------------------------------------------------- renew and reap


def renew(executor: Executor, owner: str, ids: Sequence[int], lease_seconds: int, now: datetime) -> int:
    """Extend the lease of rows `owner` still holds; how many."""
    if not ids:
        return 0
    result = executor.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(list(ids)), OUTBOX.c.state == SENDING, OUTBOX.c.lease_owner == owner)
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
    )
    return max(result.rowcount, 0)


def reap(executor: Executor, now: datetime) -> int:
    """Re-queue rows whose lease expired (their worker died); rows of a stopped send become cancelled."""
    expired = executor.execute(
        update(OUTBOX)
        .where(IS_SENDING, OUTBOX.c.lease_expires_at < now)
        .values(state=QUEUED, lease_owner=None, lease_expires_at=None, next_attempt_at=now, updated_at=now)
    )
    count = max(expired.rowcount, 0)
    if count:
        sends.cancel_queued(executor, now)
    return count


# ------------------------------------------------------------------------------------------- seam


@dataclass
class OutboxQueue:
    """One worker's view of the outbox: each method is one short transaction on `db` under `owner`'s name."""

    db: Database
    owner: str
    lease_seconds: int
    policy: RetryPolicy
    clock: Callable[[], datetime]
    rng: random.Random | None = None

    def claim(self, limit: int) -> tuple[list[Job], int]:
        """Lease up to `limit` due rows: the jobs to send, and how many rows were skipped instead."""
        with self.db.transaction() as connection:
            jobs, skipped = claim(
                connection, self.owner, limit=limit, lease_seconds=self.lease_seconds, now=self.clock()
            )
        metrics.CLAIMS.inc(len(jobs) + skipped)
        return jobs, skipped

    def record(self, outcomes: Sequence[Outcome]) -> Recorded:
        """Write `outcomes` in one transaction (a group commit); failed and retried rows are counted once it commits."""
        with self.db.transaction() as connection:
            done = record(connection, self.owner, outcomes, self.policy, self.clock(), self.rng)
        for (what, (kind, _issue)), count in done.tally.items():
            if what == FAILED:
                metrics.MESSAGES_FAILED.labels(kind).inc(count)
            elif what == RETRIED:
                metrics.MESSAGES_RETRIED.labels(kind).inc(count)
        return done

    def renew(self, ids: Sequence[int]) -> int:
        """Extend the leases of the rows `ids` this worker still holds; how many."""
        with self.db.transaction() as connection:
            return renew(connection, self.owner, ids, self.lease_seconds, self.clock())

    @staticmethod
    def release(jobs: Sequence[Job]) -> list[Outcome]:
        """The outcomes that hand `jobs` back unsent (not counted as attempts), for the next `record`."""
        return [Outcome(job, RELEASED) for job in jobs]

    def reap(self) -> int:
        """Re-queue rows whose lease expired, whoever held them; how many."""
        with self.db.transaction() as connection:
            count = reap(connection, self.clock())
        metrics.LEASE_EXPIRIES.inc(count)
        return count

    def halted(self) -> dict[int, str]:
        """Issues whose send is paused or stopped: number → state."""
        with self.db.transaction(readonly=True) as connection:
            return sends.halted_issues(connection)
