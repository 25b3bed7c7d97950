"""The sending worker: claim outbox rows under a lease, send them over a pool of persistent connections from
several threads at a global rate, and record every outcome. No Flask. Any number of workers, as threads,
processes or machines, share one database.

One process runs one claimer/recorder (the thread calling `SendWorker.run`) and `concurrency` sender
threads, each with its own transport from a `TransportPool`:

* **claim**: due ``queued`` rows, transactional mail first, are set to ``sending`` with this worker's name
  and a lease (``FEEDSVC_LEASE_SECONDS``) in one short transaction: PostgreSQL picks them with
  ``FOR UPDATE SKIP LOCKED`` so workers never wait on or take each other's rows; SQLite serialises the
  claim with ``BEGIN IMMEDIATE``. Rows of paused or cancelled sends are not claimed. Rows whose
  subscriber is no longer active are marked ``skipped`` in that same transaction, so an unsubscribe is
  honoured up to the moment of the claim (a batch is sent within seconds of it).
* **send**: each issue row is rendered from the per-variant cache (premailer runs once per issue and
  section set in a process), personalised, given a Message-ID derived from its row (a retry or a
  duplicate after a crash carries the same Message-ID, so mail clients can fold it), and sent.
* **record**: outcomes are written in group commits: every turn of the loop writes all outcomes that
  arrived since the last one in one transaction, each guarded by ``lease_owner`` (a worker whose lease
  was taken over records nothing). Sent rows keep their Message-ID and time; a temporary failure goes
  back to the queue after exponential backoff until the deadline (`feedsvc.retry`), then fails; a
  permanent one fails at once and counts a hard bounce on the subscriber (bounced at the limit).
* **leases**: held rows have their lease renewed while the worker lives; rows of a worker that died
  (``kill -9``, a lost machine) are re-queued once their lease expires, by whichever worker looks first.

So delivery is at-least-once: a worker killed between a server's "250 OK" and the commit of that
outcome makes that message go again, and those are the only duplicates: at most the messages in flight
(being sent by the threads, or sent and waiting for the next group commit). Nothing can be skipped: a
row leaves ``sending`` only with a recorded outcome or through lease expiry back to ``queued``.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import and_, bindparam, func, literal, literal_column, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from feedsvc.config import Settings
from feedsvc.content.reader import Issue, parse_bytes
from feedsvc.db.engine import Database, utcnow
from feedsvc.db.models import (
    FAILED,
    KIND_ISSUE,
    QUEUED,
    SENDING,
    SENT,
    SKIPPED,
    OutboxMessage,
    Subscriber,
    UTCDateTime,
)
from feedsvc.i18n import DEFAULT_LANGUAGE, LANGUAGES
from feedsvc.mail import newsletter
from feedsvc.mail.pool import TransportPool
from feedsvc.mail.transport import PermanentFailure, TemporaryFailure, Transport, open_transport
from feedsvc.outbox import sends
from feedsvc.outbox.retry import RetryPolicy
from feedsvc.outbox.rules import SEND_TO, stored_message
from feedsvc.subscribers import subscriptions, tokens

log = logging.getLogger(__name__)

OUTBOX = OutboxMessage.__table__
# The state tests that pick the partial indexes ix_outbox_claim and ix_outbox_lease: written as SQL
# constants, because SQLite uses a partial index only when the query's WHERE repeats the index's WHERE
# literally; `state = ?` with a bound 'queued' would scan the whole outbox on every claim.
IS_QUEUED = OUTBOX.c.state == literal_column(f"'{QUEUED}'")
IS_SENDING = OUTBOX.c.state == literal_column(f"'{SENDING}'")

__all__ = ["Job", "Outcome", "SendWorker", "VariantCache", "WorkerStats", "claim", "reap", "record", "renew"]


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


@dataclass
class WorkerStats:
    """What one worker did since it started."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    released: int = 0
    lost: int = 0  # outcomes not recorded because the lease had been taken over
    requeued_expired: int = 0


# ------------------------------------------------------------------------------------- ledger steps


def claim(session: Session, owner: str, *, limit: int, lease_seconds: int, now: datetime) -> tuple[list[Job], int]:
    """Claim up to `limit` due rows for `owner`; returns the jobs to send and how many were skipped.

    Skipped rows (the subscriber is no longer active for that kind of mail, or was erased) are final
    in the same transaction. Rows of paused or cancelled sends are left alone.
    """
    halted = select(sends.IssueSend.number).where(sends.IssueSend.send_state != sends.RUNNING)
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
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True, of=OUTBOX)
    ids = list(session.scalars(due))
    if not ids:
        return [], 0
    rows = session.execute(
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
    subscriber_ids = {r.subscriber_id for r in rows if r.subscriber_id is not None}
    people = {
        sid: (status, version, lang)
        for sid, status, version, lang in session.execute(
            select(Subscriber.id, Subscriber.status, Subscriber.token_version, Subscriber.lang).where(
                Subscriber.id.in_(subscriber_ids)
            )
        )
    }
    jobs: list[Job] = []
    skips: list[dict[str, object]] = []
    for r in rows:
        status, version, lang = people.get(r.subscriber_id, (None, 1, DEFAULT_LANGUAGE))
        if r.subscriber_id is not None:
            allowed = SEND_TO.get(r.kind)
            if status is None:
                skips.append({"b_id": r.id, "b_error": "subscriber erased"})
                continue
            if allowed is not None and status not in allowed:
                skips.append({"b_id": r.id, "b_error": f"subscriber is {status}"})
                continue
        jobs.append(
            Job(
                *r[:9],
                token_version=version,
                lang=lang if lang in LANGUAGES else DEFAULT_LANGUAGE,
                first_attempt_at=r.first_attempt_at,
            )
        )
    if skips:
        session.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == bindparam("b_id"))
            .values(
                state=SKIPPED,
                last_error=bindparam("b_error"),
                lease_owner=None,
                lease_expires_at=None,
                message=None,
                updated_at=now,
            ),
            skips,
        )
    return jobs, len(skips)


def record(
    session: Session,
    owner: str,
    outcomes: Sequence[Outcome],
    policy: RetryPolicy,
    now: datetime,
    rng: random.Random | None = None,
) -> WorkerStats:
    """Write `outcomes` in the caller's transaction, each only if `owner` still holds the row."""
    stats = WorkerStats()
    guard = and_(OUTBOX.c.id == bindparam("b_id"), OUTBOX.c.state == SENDING, OUTBOX.c.lease_owner == owner)
    free = {"lease_owner": None, "lease_expires_at": None, "updated_at": now}
    sent, retry, failed, released = [], [], [], []
    bounces: list[Outcome] = []
    for outcome in outcomes:
        job = outcome.job
        if outcome.result == "sent":
            sent.append({"b_id": job.id, "b_mid": outcome.message_id})
        elif outcome.result == "released":
            released.append({"b_id": job.id})
        elif outcome.result == "permanent":
            bounces.append(outcome)
        else:
            when = policy.next_attempt(job.attempts, job.first_attempt_at or job.created_at, now, rng)
            if when is None:
                failed.append({"b_id": job.id, "b_error": f"gave up after {job.attempts} attempts: {outcome.error}"})
            else:
                retry.append({"b_id": job.id, "b_error": outcome.error, "b_next": when})

    def run(values: dict[str, object], params: list[dict[str, object]]) -> int:
        if not params:
            return 0
        result = session.execute(update(OUTBOX).where(guard).values(**values, **free), params)
        return max(result.rowcount, 0)

    stats.sent = run({"state": SENT, "message_id": bindparam("b_mid"), "sent_at": now, "message": None}, sent)
    stats.retried = run(
        {"state": QUEUED, "last_error": bindparam("b_error"), "next_attempt_at": bindparam("b_next")}, retry
    )
    failed_values = {"state": FAILED, "last_error": bindparam("b_error"), "message": None}
    stats.failed = run(failed_values, failed)
    for outcome in bounces:  # one by one (they are rare): a bounce counts only if this worker still held the row
        if not run(failed_values, [{"b_id": outcome.job.id, "b_error": outcome.error}]):
            continue
        stats.failed += 1
        if outcome.job.subscriber_id is not None:
            subscriptions.record_bounce(
                session, outcome.job.subscriber_id, policy.bounce_limit, outcome.error[:500], now=now
            )
    stats.released = run({"state": QUEUED, "attempts": OUTBOX.c.attempts - 1, "next_attempt_at": now}, released)
    stats.lost = len(outcomes) - stats.sent - stats.retried - stats.failed - stats.released
    if released:
        sends.cancel_queued(session, now)  # a row handed back from a cancelled send is cancelled at once
    return stats


def renew(session: Session, owner: str, ids: Sequence[int], lease_seconds: int, now: datetime) -> int:
    """Extend the lease of rows `owner` still holds; how many."""
    if not ids:
        return 0
    result = session.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(list(ids)), OUTBOX.c.state == SENDING, OUTBOX.c.lease_owner == owner)
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
    )
    return max(result.rowcount, 0)


def reap(session: Session, now: datetime) -> int:
    """Re-queue rows whose lease expired (their worker died); rows of a cancelled send become cancelled."""
    expired = session.execute(
        update(OUTBOX)
        .where(IS_SENDING, OUTBOX.c.lease_expires_at < now)
        .values(state=QUEUED, lease_owner=None, lease_expires_at=None, next_attempt_at=now, updated_at=now)
    )
    count = max(expired.rowcount, 0)
    if count:
        sends.cancel_queued(session, now)
    return count


# ------------------------------------------------------------------------------------------ rendering


class VariantCache:
    """Issue messages from the per-variant render cache; transactional rows from their stored bytes.

    An issue is parsed once per process from the Markdown recorded at publish; each (issue, variant,
    language) is rendered and inlined once; each message is then a placeholder substitution away. The
    last `KEEP_ISSUES` issues are kept, with their renders: a long-running worker does not grow.
    """

    KEEP_ISSUES = 8

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db, self.settings = db, settings
        self._issues: OrderedDict[int, Issue] = OrderedDict()
        self._rendered: dict[tuple[int, str, str], newsletter.RenderedEmail] = {}
        self._lock = threading.Lock()

    def rendered(self, number: int, variant: str, lang: str) -> newsletter.RenderedEmail:
        key = (number, variant, lang)
        found = self._rendered.get(key)
        if found is not None:
            return found
        with self._lock:  # one premailer run per variant, even when every thread asks at once
            found = self._rendered.get(key)
            if found is None:
                found = newsletter.render(
                    self._issue(number),
                    [s for s in variant.split(";") if s],
                    self.settings.publication,
                    lang=lang,
                    templates=self.settings.templates_dir,
                )
                self._rendered[key] = found
            return found

    def _issue(self, number: int) -> Issue:
        """The recorded issue (called with the lock held)."""
        if number in self._issues:
            self._issues.move_to_end(number)
            return self._issues[number]
        with self.db.session(readonly=True) as session:
            recorded = sends.issue_source(session, number)
        if recorded is None:
            raise LookupError(f"issue {number} has outbox rows but was never recorded")
        source, name = recorded
        self._issues[number] = parse_bytes(source.encode("utf-8"), self.settings.publication, source=name)
        while len(self._issues) > self.KEEP_ISSUES:
            gone, _ = self._issues.popitem(last=False)
            for key in [k for k in self._rendered if k[0] == gone]:
                del self._rendered[key]
        return self._issues[number]

    def message(self, job: Job) -> EmailMessage:
        """The message for `job`."""
        if job.kind != KIND_ISSUE:
            return stored_message(job.id, job.kind, job.message)
        if job.issue_number is None or job.subscriber_id is None:
            raise ValueError(f"outbox row {job.id}: issue mail without issue or subscriber")
        rendered = self.rendered(job.issue_number, job.sections or "", job.lang)
        links = newsletter.Links(
            manage=tokens.link(self.settings, tokens.MANAGE, job.subscriber_id, job.token_version),
            unsubscribe=tokens.link(self.settings, tokens.UNSUBSCRIBE, job.subscriber_id, job.token_version),
        )
        publication = self.settings.publication
        message_id = newsletter.make_message_id(publication, "issue", job.issue_number, job.id)
        message = newsletter.build_message(rendered, job.recipient, links, publication, message_id=message_id)
        return PreparedMessage(newsletter.serialise(message), publication.from_address, job.recipient, message_id)


class PreparedMessage(EmailMessage):
    """A finished message's bytes, with just the envelope headers a transport reads, as plain strings.

    `Transport.send` reads From, To and Message-ID, removes Bcc and serialises the message. A message from
    `newsletter.build_message` serialises fast only while untouched, and parsing its headers back costs more
    than building it, so the worker serialises it once and hands the transport this stand-in: the
    original's bytes exactly, and the few headers the envelope needs, kept unparsed (they are values the
    worker itself put in the message, already checked by `build_message`).
    """

    def __init__(self, data: bytes, sender: str, recipient: str, message_id: str) -> None:
        super().__init__(policy=newsletter.POLICY)
        self.data = data
        self._envelope: dict[str, str] = {"from": sender, "to": recipient, "message-id": message_id, "date": ""}

    def get_all(self, name: str, failobj: Any = None) -> Any:
        value = self._envelope.get(name.lower())
        return failobj if value is None else [value]

    def __getitem__(self, name: str) -> Any:
        return self._envelope.get(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._envelope

    def __setitem__(self, name: str, value: Any) -> None:
        self._envelope[name.lower()] = str(value)

    def __delitem__(self, name: str) -> None:
        self._envelope.pop(name.lower(), None)

    def as_bytes(self, unixfrom: bool = False, policy: object = None) -> bytes:  # type: ignore[override]
        return self.data

    def __bytes__(self) -> bytes:
        return self.data


# --------------------------------------------------------------------------------------------- worker


def default_owner() -> str:
    """A worker name unique across machines and processes: host:pid:random."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


@dataclass
class SendWorker:
    """Claims, sends with `concurrency` threads over pooled transports, and records; see the module docstring."""

    db: Database
    settings: Settings
    concurrency: int = 4
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    transport_factory: Callable[[], Transport] | None = None
    rate: float | None = None  # messages per second for this worker; None: FEEDSVC_SEND_RATE
    owner: str = field(default_factory=default_owner)
    batch_size: int = 0  # rows per claim; 0: enough to keep every thread busy between claims
    poll_interval: float = 1.0
    tick_interval: float = 0.5
    record_interval: float = 0.02  # seconds between group commits of outcomes
    on_tick: Callable[[WorkerStats], None] | None = None
    clock: Callable[[], datetime] = utcnow
    stats: WorkerStats = field(default_factory=WorkerStats)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        rate = self.settings.send_rate if self.rate is None else self.rate
        factory = self.transport_factory or (lambda: open_transport(self.settings))
        self.pool = TransportPool(factory, size=self.concurrency, rate=rate)
        self.cache = VariantCache(self.db, self.settings)
        lease = self.settings.lease_seconds
        batch = self.batch_size or max(32 * self.concurrency, 128)
        if rate > 0:  # never claim more than can go out within half a lease at the configured rate
            batch = max(1, min(batch, int(rate * lease / 2)))
        self.batch_size = batch
        self._work: queue.Queue[Job | None] = queue.Queue()
        self._outcomes: queue.Queue[Outcome] = queue.Queue()
        self._held: dict[int, Job] = {}
        self._unrecorded: list[Outcome] = []
        self._halted: dict[int, str] = {}
        self._rng = random.Random()  # noqa: S311 - jitter for retry times, not a secret

    # -- the sender threads

    def _send_loop(self) -> None:
        while True:
            job = self._work.get()
            if job is None:
                return
            self._outcomes.put(self._send(job))

    def _send(self, job: Job) -> Outcome:
        if job.issue_number is not None and job.issue_number in self._halted:
            return Outcome(job, "released")
        try:
            message = self.cache.message(job)
            message_id = self.pool.send(message)
        except PermanentFailure as exc:
            return Outcome(job, "permanent", error=_describe(exc))
        except TemporaryFailure as exc:
            return Outcome(job, "temporary", error=_describe(exc), maybe_delivered=exc.maybe_delivered)
        except Exception as exc:  # a bug or an unexpected error: keep the row, retry later
            log.exception("outbox row %s: unexpected error", job.id)
            return Outcome(job, "temporary", error=_describe(exc))
        return Outcome(job, "sent", message_id=message_id)

    # -- the claimer/recorder

    def run(self, stop: threading.Event | None = None, until_idle: bool = False) -> WorkerStats:
        """Send until `stop` is set (or, with `until_idle`, until nothing is due and nothing is held).

        On stop, rows claimed but not started are handed back and the threads finish the message in hand.
        """
        stop = stop or threading.Event()
        threads = [
            threading.Thread(target=self._send_loop, name=f"sender-{i}", daemon=True) for i in range(self.concurrency)
        ]
        for thread in threads:
            thread.start()
        lease = self.settings.lease_seconds
        last_reap = last_renew = last_halted = last_tick = last_record = float("-inf")
        try:
            while not stop.is_set():
                mono = time.monotonic()
                # Every database step survives a busy database or a dropped connection: it is logged and
                # tried again on a later turn (unrecorded outcomes are kept), never fatal to the worker.
                if mono - last_reap >= min(lease / 2, 30.0):
                    self._safely("re-queue expired leases", lambda: self._in_tx(self._reap))
                    last_reap = mono
                if mono - last_halted >= 1.0:
                    self._safely("read paused sends", self._read_halted)
                    last_halted = mono
                if self._held and mono - last_renew >= lease / 3:
                    self._safely("renew leases", self._renew)
                    last_renew = mono
                attempted = self._work.qsize() < max(self.batch_size // 2, self.concurrency)
                claimed = self._safely("claim", self._claim) if attempted else 0  # None: the claim failed
                # Group commit: the outcomes that arrived are written together, every `record_interval`.
                recorded = 0
                if time.monotonic() - last_record >= self.record_interval:
                    recorded = self._safely("record outcomes", self._record) or 0
                    last_record = time.monotonic()
                else:
                    time.sleep(0.005)
                if self.on_tick and mono - last_tick >= self.tick_interval:
                    self.on_tick(self.stats)
                    last_tick = mono
                # Idle: a claim found nothing, nothing is in hand, and no outcome just put a row back.
                if attempted and claimed == 0 and not recorded and not self._held:
                    if until_idle:
                        break
                    stop.wait(self.poll_interval)
        finally:
            self._shutdown(threads)
            if self.on_tick:
                self.on_tick(self.stats)
        return self.stats

    def _safely(self, what: str, step: Callable[[], object]) -> object:
        """Run a database step; on a database error log it, pause briefly and return None."""
        try:
            return step()
        except DBAPIError as exc:
            log.warning("%s failed, will try again: %s", what, str(exc).splitlines()[0])
            time.sleep(0.5)
            return None

    def _renew(self) -> None:
        lease, held = self.settings.lease_seconds, list(self._held)
        self._in_tx(lambda session, now: renew(session, self.owner, held, lease, now))

    def _read_halted(self) -> None:
        with self.db.session(readonly=True) as session:
            self._halted = sends.halted_issues(session)

    def _in_tx(self, step: Callable[[Session, datetime], object]) -> object:
        with self.db.session() as session:
            return step(session, self.clock())

    def _reap(self, session: Session, now: datetime) -> None:
        self.stats.requeued_expired += reap(session, now)

    def _claim(self) -> int:
        with self.db.session() as session:
            jobs, skipped = claim(
                session, self.owner, limit=self.batch_size, lease_seconds=self.settings.lease_seconds, now=self.clock()
            )
        self.stats.claimed += len(jobs) + skipped
        self.stats.skipped += skipped
        for job in jobs:
            self._held[job.id] = job
            self._work.put(job)
        return len(jobs) + skipped

    def _record(self) -> int:
        """Write every outcome that has arrived, in one transaction; how many."""
        outcomes = self._unrecorded  # what a failed write left, then what arrived since
        try:
            while True:
                outcomes.append(self._outcomes.get_nowait())
        except queue.Empty:
            pass
        if not outcomes:
            return 0
        with self.db.session() as session:
            done = record(session, self.owner, outcomes, self.policy, self.clock(), self._rng)
        self._unrecorded = []
        for outcome in outcomes:
            self._held.pop(outcome.job.id, None)
        for name in ("sent", "retried", "failed", "released", "lost"):
            setattr(self.stats, name, getattr(self.stats, name) + getattr(done, name))
        if done.lost:
            log.warning("%d outcome(s) not recorded: their lease had been taken over", done.lost)
        return len(outcomes)

    def _shutdown(self, threads: list[threading.Thread]) -> None:
        # Hand back what no thread has started, let the threads finish the message in hand, record all.
        unstarted: list[Job] = []
        while True:
            try:
                job = self._work.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                unstarted.append(job)
        for _ in threads:
            self._work.put(None)
        for job in unstarted:
            self._outcomes.put(Outcome(job, "released"))
        for thread in threads:
            thread.join()
        for _ in range(20):  # a database that is down for longer leaves the rows to lease expiry
            if not self._held:
                break
            self._safely("record outcomes", self._record)
            time.sleep(0.02)
        self.pool.close()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]
