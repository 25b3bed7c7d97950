"""The sending worker: claim outbox rows under a lease, send them over a pool of persistent connections from
several threads at one fleet-wide rate, and record every outcome. No Flask. Any number of workers, as threads,
processes or machines, share one database.

One process runs one claimer/recorder (the thread calling `SendWorker.run`) and `concurrency` sender
threads, each with its own transport from a `TransportPool`. The worker reaches the ledger only through
`OutboxQueue` (claim / record / renew / release / reap, feedsvc.outbox.queue) and the network only
through the pool (an envelope and bytes, feedsvc.mail.transport):

* **claim**: due ``queued`` rows, transactional mail first, are leased to this worker
  (``FEEDSVC_LEASE_SECONDS``) in one short transaction. Rows whose subscriber is no longer active are
  marked ``skipped`` in that same transaction, so an unsubscribe is honoured up to the moment of the
  claim (a batch is sent within seconds of it).
* **send**: each row's message comes from `VariantCache` (premailer runs once per issue and section set, in
  a short-lived child process, so the worker never loads it), personalised, with a Message-ID derived
  from its row (a retry or a duplicate after a crash carries the same Message-ID, so mail clients can
  fold it).
* **record**: outcomes are written in group commits: every turn of the loop writes all outcomes that
  arrived since the last one in one transaction, each guarded by ``lease_owner`` (a worker whose lease
  was taken over records nothing). A temporary failure goes back to the queue after exponential backoff
  until the deadline (feedsvc.outbox.retry), then fails; a permanent one fails at once and counts a hard
  bounce on the subscriber (bounced at the limit).
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
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from queue import Empty, Queue

from sqlalchemy.exc import DBAPIError

from feedsvc.config import Settings
from feedsvc.db.engine import Database, utcnow
from feedsvc.db.tables import FAILED, SENT
from feedsvc.mail.pool import TransportPool
from feedsvc.mail.transport import PermanentFailure, TemporaryFailure, Transport, open_transport
from feedsvc.ops import metrics
from feedsvc.ops.outage import DatabaseOutage
from feedsvc.outbox.queue import (
    PERMANENT,
    RELEASED,
    RETRIED,
    SENT_OK,
    TEMPORARY,
    Job,
    OutboxQueue,
    Outcome,
    Recorded,
    SendKey,
)
from feedsvc.outbox.rate import FleetBucket
from feedsvc.outbox.renders import VariantCache
from feedsvc.outbox.retry import RetryPolicy

log = logging.getLogger(__name__)

SHUTDOWN_RECORD_SECONDS = 10.0  # how long a stopping worker keeps trying to write its last outcomes
STOP_CHECK_SECONDS = 0.1  # while idle, see this often whether the worker is stopping

__all__ = ["SendWorker", "WorkerStats", "default_owner"]

REPORT_EVERY = 30.0  # seconds between the log lines that sum up what was sent
REPLIES_SHOWN = 3  # distinct server replies logged per send and report period


@dataclass
class WorkerStats(Recorded):
    """What one worker did since it started: what its group commits wrote, and what it claimed and reaped."""

    claimed: int = 0
    skipped: int = 0
    requeued_expired: int = 0


def default_owner() -> str:
    """A worker name unique across machines and processes: host:pid:random."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


@dataclass
class Activity:
    """What the worker recorded since its last report, per send, for the log an operator reads.

    A server reply not yet seen in the period is logged at once (with its row, kind and issue); the rest
    is summed up in one line per send every REPORT_EVERY seconds, so a relay refusing everything gives a
    few lines a minute, not one per message.
    """

    tally: Counter[tuple[str, SendKey]] = field(default_factory=Counter)
    replies: dict[SendKey, list[str]] = field(default_factory=dict)
    since: float = field(default_factory=time.monotonic)

    def add(self, done: Recorded, outcomes: Sequence[Outcome]) -> None:
        """Count what one group commit wrote; log each server reply new in this period."""
        self.tally.update(done.tally)
        for outcome in outcomes:
            if outcome.result not in (TEMPORARY, PERMANENT):
                continue
            job = outcome.job
            seen = self.replies.setdefault((job.kind, job.issue_number), [])
            if outcome.error in seen or len(seen) >= REPLIES_SHOWN:
                continue
            seen.append(outcome.error)
            log.warning(
                "%s: row %d not sent (%s): %s",
                _send_name(job.kind, job.issue_number),
                job.id,
                "will retry" if outcome.result == TEMPORARY else "permanent",
                outcome.error,
                extra={"row": job.id, "kind": job.kind, "issue": job.issue_number, "smtp_reply": outcome.error},
            )

    def report(self) -> None:
        """Log one line per send with what happened since the last report, and start a new period."""
        seconds = round(time.monotonic() - self.since)
        for key in sorted({key for _, key in self.tally}, key=lambda k: (k[1] is None, k[1] or 0, k[0])):
            kind, issue = key
            sent, retried, failed = (self.tally[what, key] for what in (SENT, RETRIED, FAILED))
            log.log(
                logging.WARNING if failed else logging.INFO,
                "%s: sent %d, retried %d, failed %d in the last %d s",
                _send_name(kind, issue),
                sent,
                retried,
                failed,
                seconds,
                extra={
                    "kind": kind,
                    "issue": issue,
                    "sent": sent,
                    "retried": retried,
                    "failed": failed,
                    "seconds": seconds,
                    "smtp_replies": self.replies.get(key, []),
                },
            )
        self.tally.clear()
        self.replies.clear()
        self.since = time.monotonic()


def _send_name(kind: str, issue: int | None) -> str:
    return f"issue {issue}" if issue is not None else f"{kind} mail"


@dataclass
class _Timers:
    """When the loop last did each periodic step (time.monotonic)."""

    reap: float = float("-inf")
    renew: float = float("-inf")
    halted: float = float("-inf")
    tick: float = float("-inf")
    record: float = float("-inf")


@dataclass
class SendWorker:
    """Claims, sends with `concurrency` threads over pooled transports, and records; see the module docstring."""

    db: Database
    settings: Settings
    concurrency: int = 4
    policy: RetryPolicy | None = None  # None: from the settings' environment (FEEDSVC_RETRY_*, FEEDSVC_BOUNCE_LIMIT)
    transport_factory: Callable[[], Transport] | None = None
    rate: float | None = None  # messages per second for the whole fleet (feedsvc.outbox.rate); None: FEEDSVC_SEND_RATE
    owner: str = field(default_factory=default_owner)
    batch_size: int = 0  # rows per claim; 0: enough to keep every thread busy between claims
    poll_interval: float = 1.0
    tick_interval: float = 0.5
    record_interval: float = 0.02  # seconds between group commits of outcomes
    on_tick: Callable[[WorkerStats], None] | None = None
    clock: Callable[[], datetime] = utcnow
    stats: WorkerStats = field(default_factory=WorkerStats)
    activity: Activity = field(default_factory=Activity)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.policy is None:
            self.policy = RetryPolicy.from_env(self.settings.extra)
        rate = self.settings.send_rate if self.rate is None else self.rate
        factory = self.transport_factory or (lambda: open_transport(self.settings))
        pacer = FleetBucket(self.db, rate) if rate > 0 else None
        self.pool = TransportPool(factory, size=self.concurrency, pacer=pacer)
        self.cache = VariantCache(self.db, self.settings)
        lease = self.settings.lease_seconds
        rng = random.Random()  # noqa: S311 - jitter for retry times, not a secret
        self.queue = OutboxQueue(self.db, self.owner, lease, self.policy, lambda: self.clock(), rng)
        batch = self.batch_size or max(32 * self.concurrency, 128)
        if rate > 0:  # never claim more than can go out within half a lease at the configured rate
            batch = max(1, min(batch, int(rate * lease / 2)))
        self.batch_size = batch
        self._work: Queue[Job | None] = Queue()
        self._outcomes: Queue[Outcome] = Queue()
        self._held: dict[int, Job] = {}
        self._unrecorded: list[Outcome] = []
        self._halted: dict[int, str] = {}
        self.outage = DatabaseOutage()
        self._woken = threading.Event()

    # -- the sender threads

    def _send_loop(self) -> None:
        while True:
            job = self._work.get()
            if job is None:
                return
            self._outcomes.put(self._send(job))

    def _send(self, job: Job) -> Outcome:
        if job.issue_number is not None and job.issue_number in self._halted:
            return Outcome(job, RELEASED)
        try:
            envelope, data = self.cache.prepare(job)
        except DBAPIError:  # the issue's text could not be read: nothing was sent, hand the row back uncounted
            return Outcome(job, RELEASED)
        try:
            self.pool.send(envelope, data)
        except PermanentFailure as exc:
            return Outcome(job, PERMANENT, error=_describe(exc))
        except TemporaryFailure as exc:
            return Outcome(job, TEMPORARY, error=_describe(exc), maybe_delivered=exc.maybe_delivered)
        except Exception as exc:  # a bug or an unexpected error: keep the row, retry later
            log.exception("outbox row %s: unexpected error", job.id)
            return Outcome(job, TEMPORARY, error=_describe(exc))
        metrics.MESSAGES_SENT.labels(job.kind).inc()
        return Outcome(job, SENT_OK, message_id=envelope.message_id)

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
        timers = _Timers()
        try:
            while not stop.is_set():
                if self._turn(timers):  # idle
                    if until_idle:
                        break
                    self._idle(stop)
        finally:
            self._shutdown(threads)
            if self.on_tick:
                self.on_tick(self.stats)
        return self.stats

    def wake(self) -> None:
        """Rows were just queued (a sign-up decided in this process): claim now, not at the next poll."""
        self._woken.set()

    def _idle(self, stop: threading.Event) -> None:
        """Wait `poll_interval`, or less: until `wake` or `stop`."""
        deadline = time.monotonic() + self.poll_interval
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            if self._woken.wait(min(left, STOP_CHECK_SECONDS)):
                break
        self._woken.clear()

    def _turn(self, timers: _Timers) -> bool:
        """One turn of the loop: upkeep, a claim when the threads run short, a group commit. True if idle."""
        mono = time.monotonic()
        self._upkeep(timers, mono)
        attempted = self._work.qsize() < max(self.batch_size // 2, self.concurrency)
        claimed = self.safely("claim", self._claim) if attempted else 0  # None: the claim failed
        # Group commit: the outcomes that arrived are written together, every `record_interval`.
        recorded = 0
        if time.monotonic() - timers.record >= self.record_interval:
            recorded = self.safely("record outcomes", self._record) or 0
            timers.record = time.monotonic()
        else:
            time.sleep(0.005)
        if self.on_tick and mono - timers.tick >= self.tick_interval:
            self.on_tick(self.stats)
            timers.tick = mono
        # Idle: a claim found nothing, nothing is in hand, and no outcome just put a row back.
        return attempted and claimed == 0 and not recorded and not self._held

    def _upkeep(self, timers: _Timers, mono: float) -> None:
        """Re-queue expired leases, read which sends are halted, renew the leases held, each when due.

        Every database step survives a busy database or a dropped connection: it is logged and tried
        again on a later turn (unrecorded outcomes are kept), never fatal to the worker.
        """
        lease = self.settings.lease_seconds
        if mono - timers.reap >= min(lease / 2, 30.0):
            self.safely("re-queue expired leases", self._reap)
            timers.reap = mono
        if mono - timers.halted >= 1.0:
            self.safely("read paused sends", self._read_halted)
            timers.halted = mono
        if self._held and mono - timers.renew >= lease / 3:
            self.safely("renew leases", lambda: self.queue.renew(list(self._held)))
            timers.renew = mono
        if mono - self.activity.since >= REPORT_EVERY:
            self.activity.report()

    def safely(self, what: str, step: Callable[[], object]) -> object:
        """Run a database step; on a database error note the outage, back off and return None."""
        try:
            result = step()
        except DBAPIError as exc:
            held = f"holding {len(self._held)} row(s), whose outcomes are kept and written when it is back"
            time.sleep(self.outage.failed(what, exc, held))
            return None
        self.outage.succeeded()
        return result

    @property
    def held(self) -> list[int]:
        """Ids of the rows this worker holds (claimed, not yet recorded)."""
        return list(self._held)

    def _read_halted(self) -> None:
        self._halted = self.queue.halted()

    def _reap(self) -> None:
        self.stats.requeued_expired += self.queue.reap()

    def _claim(self) -> int:
        jobs, skipped = self.queue.claim(self.batch_size)
        self.stats.claimed += len(jobs) + skipped
        self.stats.skipped += skipped
        self.cache.want(jobs)  # every variant claimed so far is rendered in one go, by whichever thread first needs one
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
        except Empty:
            pass
        if not outcomes:
            return 0
        done = self.queue.record(outcomes)
        self._unrecorded = []
        self.activity.add(done, outcomes)
        for outcome in outcomes:
            self._held.pop(outcome.job.id, None)
        for name in (f.name for f in fields(Recorded)):
            setattr(self.stats, name, getattr(self.stats, name) + getattr(done, name))
        if done.lost:
            log.warning("%d outcome(s) not recorded: their lease had been taken over", done.lost)
        return len(outcomes)

    def _shutdown(self, threads: list[threading.Thread]) -> None:
        """Hand back what no thread has started, let the threads finish the message in hand, record all."""
        unstarted: list[Job] = []
        while True:
            try:
                job = self._work.get_nowait()
            except Empty:
                break
            if job is not None:
                unstarted.append(job)
        for _ in threads:
            self._work.put(None)
        for outcome in self.queue.release(unstarted):
            self._outcomes.put(outcome)
        for thread in threads:
            thread.join()
        deadline = time.monotonic() + SHUTDOWN_RECORD_SECONDS
        while self._held and time.monotonic() < deadline:  # a database down for longer leaves them to lease expiry
            self.safely("record outcomes", self._record)
            time.sleep(0.02)
        if self._held:
            log.warning("stopping with %d outcome(s) unrecorded: their rows go again after the lease", len(self._held))
        self.pool.close()
        self.activity.report()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]
