"""Sign-up and manage-link requests, decided by `feedsvc worker` after the web answer, so that its timing says
nothing. No Flask.

Whether an address is new, pending, active or mailed a minute ago decides what a request does (a
confirmation, a manage link, nothing), and each of those costs a different amount of work. The web
request therefore only checks the form and queues the request: one INSERT, the same for every address.
`process` then runs the workflow (`subscriptions.subscribe`, `subscriptions.request_manage_link`) for up
to 50 queued requests a transaction. The worker's `Decider` thread calls it as soon as PostgreSQL says a
request was queued (a trigger NOTIFYs on CHANNEL) and every second in any case (SQLite, or a notification
missed while the database was away), so web processes spend no time deciding. A request that can no longer
be decided (its sections were removed from feedsvc.toml since) is dropped with a log line, never retried
forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from feedsvc.config import Settings
from feedsvc.db.engine import Database, utcnow
from feedsvc.db.tables import subscription_requests
from feedsvc.ops.outage import DatabaseOutage
from feedsvc.subscribers.addresses import normalise_email

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from feedsvc.db.engine import Executor

log = logging.getLogger(__name__)

SUBSCRIBE, MANAGE_LINK = "subscribe", "manage"
#: after a NOTIFY, wait this long before deciding, so that the requests of the same moment go in one batch.
SETTLE_SECONDS = 0.05
#: look for queued requests this often even without a NOTIFY (SQLite has none; one may be missed in an outage).
POLL_SECONDS = 1.0
#: while waiting for a NOTIFY, see this often whether the worker is stopping.
STOP_CHECK_SECONDS = 0.5
#: PostgreSQL's notification channel: a trigger on subscription_requests (migration 0015) sends on it.
CHANNEL = "feedsvc_subscription_requests"
#: requests decided in one transaction.
BATCH = 50
#: requests decided before the decider looks at the stop signal again.
TURN = 1000


class Taken(NamedTuple):
    """A queued request, as deciding takes it."""

    id: int
    action: str
    email: str
    sections: str
    lang: str
    source: str


def queue(
    executor: Executor,
    settings: Settings,
    action: str,
    address: str,
    sections: Iterable[str] = (),
    *,
    lang: str,
    source: str = "form",
    now: datetime | None = None,
) -> None:
    """Queue a request to decide later (one INSERT); raises InvalidAddress or NoSections (nothing is written then)."""
    from feedsvc.subscribers import subscriptions  # the sign-up rules and their mail templates (Jinja2)

    email = normalise_email(address)
    chosen = subscriptions.choose_sections(settings.publication, sections) if action == SUBSCRIBE else []
    row = {"action": action, "email": email, "sections": ";".join(chosen), "lang": lang, "source": source}
    executor.execute(insert(subscription_requests), {**row, "created_at": now or utcnow()})


def process_one(session: Session, settings: Settings) -> bool:
    """Take the oldest queued request and decide it in `session`'s transaction; False when none is queued.

    A request that cannot be decided (InvalidAddress, NoSections: the rules changed since it was queued) is
    dropped with a log line, what it wrote undone, never left to block the ones after it.
    """
    taken = _take(session, 1)
    if not taken:
        return False
    try:
        with session.begin_nested():
            _decide(session, settings, taken[0])
    except (ValueError, IntegrityError) as exc:
        log.warning("dropped a queued %s request that cannot be decided: %s", taken[0].action, type(exc).__name__)
    return True


def process_batch(session: Session, settings: Settings, count: int = BATCH) -> int:
    """Take up to `count` of the oldest queued requests and decide them all in `session`'s transaction; how many.

    One DELETE takes them and one COMMIT ends them (a commit per request was most of the deciding). They are
    decided in address order, so processes deciding batches that share an address lock its row in the same
    order. Any request that cannot be decided raises, which undoes the whole batch; `process` then decides
    those requests one by one (`process_one`).
    """
    taken = _take(session, count)
    with session.no_autoflush:  # the events and mail rows of the whole batch go in one INSERT each, at commit
        for request in sorted(taken, key=lambda request: (request.email, request.id)):
            _decide(session, settings, request)
    return len(taken)


def _take(session: Session, count: int) -> list[Taken]:
    """Delete up to `count` of the oldest queued requests that no other transaction holds."""
    queued = subscription_requests.c
    oldest = select(queued.id).order_by(queued.id).limit(count)
    taken = session.execute(
        delete(subscription_requests)
        .where(queued.id.in_(oldest.with_for_update(skip_locked=True)))
        .returning(queued.id, queued.action, queued.email, queued.sections, queued.lang, queued.source)
    )
    return [Taken(*row) for row in taken]


def _decide(session: Session, settings: Settings, request: Taken) -> None:
    """Run the workflow a request asks for."""
    from feedsvc.subscribers import subscriptions  # Jinja2 and the notices: only once there is a request to decide

    if request.action == SUBSCRIBE:
        sections = request.sections.split(";")
        subscriptions.subscribe(session, settings, request.email, sections, lang=request.lang, source=request.source)
    else:
        subscriptions.request_manage_link(session, settings, request.email)


def waiting(database: Database) -> bool:
    """Whether any request is queued (a read in Core: an empty poll takes no write lock and loads no ORM)."""
    with database.transaction(readonly=True) as connection:
        return connection.execute(select(subscription_requests.c.id).limit(1)).first() is not None


def process(database: Database, settings: Settings, limit: int = TURN) -> int:
    """Decide up to `limit` queued requests, up to BATCH per transaction; how many were decided."""
    if not waiting(database):
        return 0
    done = 0
    while done < limit:
        count = min(BATCH, limit - done)
        try:
            with database.session() as session:
                taken = process_batch(session, settings, count)
        except (ValueError, IntegrityError):  # one of them cannot be decided: these one per transaction
            taken = 0
            while taken < count:
                with database.session() as session:
                    if not process_one(session, settings):
                        break
                taken += 1
        done += taken
        if taken < count:  # the queue is empty (or the rest is being decided by another process)
            break
    return done


class Decider:
    """Decides queued requests in `feedsvc worker`: as soon as PostgreSQL says one was queued, and every second."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        poll_seconds: float = POLL_SECONDS,
        on_decided: Callable[[], None] | None = None,
        outage: DatabaseOutage | None = None,
    ) -> None:
        self.database, self.settings, self.poll_seconds = database, settings, poll_seconds
        self.on_decided = on_decided  # the worker's SendWorker.wake: the mail just queued goes out at once
        self._outage = outage or DatabaseOutage()  # the worker's: one outage is logged once, not once per thread
        self._listener: Any = None  # PostgreSQL: a psycopg connection that LISTENs on CHANNEL

    def start(self, stop: threading.Event) -> threading.Thread:
        """Run `run(stop)` in a daemon thread; the thread."""
        thread = threading.Thread(target=self.run, args=(stop,), name="subscription-requests", daemon=True)
        thread.start()
        return thread

    def run(self, stop: threading.Event) -> None:
        """Decide what is queued, then wait for a NOTIFY (or the next poll), until `stop` is set."""
        while not stop.is_set():
            try:
                decided = process(self.database, self.settings, TURN)
                self._outage.succeeded()
                if decided and self.on_decided:
                    self.on_decided()
                if decided < TURN:  # the queue is empty now: wait for the next request
                    self._wait(stop)
            except OperationalError as exc:  # the database is away: the requests stay queued, said once
                self._close_listener()
                stop.wait(self._outage.failed("deciding sign-up requests", exc, "they stay queued"))
            except Exception:  # anything else: the requests stay queued for the next turn
                log.exception("deciding queued subscription requests failed; will try again")
                self._close_listener()
                stop.wait(self.poll_seconds)
        self._close_listener()

    @property
    def listening(self) -> bool:
        """Whether a NOTIFY wakes this decider now (PostgreSQL, connected)."""
        return self._listener is not None

    def _wait(self, stop: threading.Event) -> None:
        """Until a NOTIFY on CHANNEL arrives (PostgreSQL), `poll_seconds` pass or `stop` is set."""
        if self.database.dialect != "postgresql":
            stop.wait(self.poll_seconds)
            return
        import psycopg  # only PostgreSQL listens

        deadline = time.monotonic() + self.poll_seconds
        try:
            listener = self._listen()
            while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
                if any(True for _ in listener.notifies(timeout=min(left, STOP_CHECK_SECONDS), stop_after=1)):
                    stop.wait(SETTLE_SECONDS)  # let the requests of the same moment arrive: one batch decides them
                    return
        except (psycopg.Error, OperationalError) as exc:
            # The connection was lost (a restart, an idle timeout): not itself an outage, which the next
            # `waiting` finds and the worker's tracker reports. Listen again after one poll's wait.
            if self._listener is not None:
                log.info("the sign-up listener's connection was lost (%s); listening again", type(exc).__name__)
            self._close_listener()
            stop.wait(max(0.0, deadline - time.monotonic()))

    def _listen(self) -> Any:
        """The LISTENing connection, opened on first use (and after an outage closed it)."""
        if self._listener is None:
            pooled = self.database.engine.raw_connection()
            connection = pooled.driver_connection
            pooled.detach()  # held for the worker's life: not a pooled connection any more
            try:
                connection.rollback()
                connection.autocommit = True
                connection.execute(f"LISTEN {CHANNEL}")
            except BaseException:
                connection.close()
                raise
            self._listener = connection
        return self._listener

    def _close_listener(self) -> None:
        """Close the LISTENing connection, if any; never raises (it runs in the loop's error paths)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.close()
            except Exception:  # a connection already broken: nothing more to close
                log.debug("closing the sign-up listener failed", exc_info=True)
