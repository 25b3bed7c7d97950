"""Sign-up and manage-link requests, decided after the web answer so that its timing says nothing. No Flask.

Whether an address is new, pending, active or mailed a minute ago decides what a request does (a
confirmation, a manage link, nothing), and each of those costs a different amount of work. The web
request therefore only checks the form and queues the request: one INSERT, the same for every address.
`process` then runs the workflow (`subscriptions.subscribe`, `subscriptions.request_manage_link`) for
each queued request, one transaction each; a `Processor` thread in every web process does that shortly
after the answer has gone, and every few seconds for what another process left behind (the thread starts
with a process's first request). `feedsvc worker` also decides what is queued, every housekeeping turn, so
requests left by a web process that stopped are never stranded. A request that can no longer be decided
(its sections were removed from feedsvc.toml since) is dropped with a log line, never retried forever.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from feedsvc.config import Settings
from feedsvc.db.engine import Database, utcnow
from feedsvc.db.models import SubscriptionRequest
from feedsvc.ops.outage import DatabaseOutage
from feedsvc.subscribers.addresses import normalise_email

log = logging.getLogger(__name__)

SUBSCRIBE, MANAGE_LINK = "subscribe", "manage"
#: after a wake-up, wait this long before deciding: the work then falls on other requests, not this one.
SETTLE_SECONDS = 0.05
#: look for requests another process queued (or left behind when it stopped) this often.
POLL_SECONDS = 5.0
#: requests decided in one transaction.
BATCH = 50


class Taken(NamedTuple):
    """A queued request, as deciding takes it."""

    id: int
    action: str
    email: str
    sections: str
    lang: str
    source: str


def queue(
    executor: Session | Connection,
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
    executor.execute(insert(SubscriptionRequest.__table__), {**row, "created_at": now or utcnow()})


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
    oldest = select(SubscriptionRequest.id).order_by(SubscriptionRequest.id).limit(count)
    taken = session.execute(
        delete(SubscriptionRequest)
        .where(SubscriptionRequest.id.in_(oldest.with_for_update(skip_locked=True)))
        .returning(
            SubscriptionRequest.id,
            SubscriptionRequest.action,
            SubscriptionRequest.email,
            SubscriptionRequest.sections,
            SubscriptionRequest.lang,
            SubscriptionRequest.source,
        )
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


def process(database: Database, settings: Settings, limit: int = 1000) -> int:
    """Decide up to `limit` queued requests, up to BATCH per transaction; how many were decided."""
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


class Processor:
    """Decides the queued requests of one web process: in a background thread, or at once when `inline`."""

    def __init__(self, database: Database, settings: Settings, *, inline: bool = False) -> None:
        self.database, self.settings, self.inline = database, settings, inline
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._outage = DatabaseOutage()

    def wake(self) -> None:
        """A request was queued: decide it soon (now, when inline)."""
        if self.inline:
            process(self.database, self.settings)
            return
        self.ensure_running()
        self._wake.set()

    def ensure_running(self) -> None:
        """Start this process's thread if it is not running (a forked web worker starts its own)."""
        if self.inline or (self._thread is not None and self._pid == os.getpid() and self._thread.is_alive()):
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="subscription-requests", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()
            time.sleep(SETTLE_SECONDS)
            try:
                process(self.database, self.settings)
            except OperationalError as exc:  # the database is away: the requests stay queued, said once
                self._outage.failed("deciding sign-up requests", exc, "they stay queued")
                continue
            except Exception:  # anything else: the requests stay queued for the next turn
                log.exception("deciding queued subscription requests failed; will try again")
                continue
            self._outage.succeeded()
