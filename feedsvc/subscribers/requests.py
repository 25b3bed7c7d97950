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

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from feedsvc.config import Settings
from feedsvc.db.engine import Database, utcnow
from feedsvc.db.models import SubscriptionRequest
from feedsvc.db.outage import DatabaseOutage
from feedsvc.subscribers.addresses import normalise_email

log = logging.getLogger(__name__)

SUBSCRIBE, MANAGE_LINK = "subscribe", "manage"
#: after a wake-up, wait this long before deciding: the work then falls on other requests, not this one.
SETTLE_SECONDS = 0.05
#: look for requests another process queued (or left behind when it stopped) this often.
POLL_SECONDS = 5.0


def queue(
    session: Session,
    settings: Settings,
    action: str,
    address: str,
    sections: Iterable[str] = (),
    *,
    lang: str,
    source: str = "form",
    now: datetime | None = None,
) -> None:
    """Queue a request to decide later; raises InvalidAddress or NoSections (nothing is written then)."""
    from feedsvc.subscribers import subscriptions  # the sign-up rules and their mail templates (Jinja2)

    email = normalise_email(address)
    chosen = subscriptions.choose_sections(settings.publication, sections) if action == SUBSCRIBE else []
    session.add(
        SubscriptionRequest(
            action=action, email=email, sections=";".join(chosen), lang=lang, source=source, created_at=now or utcnow()
        )
    )


def process_one(session: Session, settings: Settings) -> bool:
    """Take the oldest queued request and decide it in `session`'s transaction; False when none is queued."""
    oldest = select(SubscriptionRequest.id).order_by(SubscriptionRequest.id).limit(1).with_for_update(skip_locked=True)
    taken = session.execute(
        delete(SubscriptionRequest)
        .where(SubscriptionRequest.id == oldest.scalar_subquery())
        .returning(
            SubscriptionRequest.action,
            SubscriptionRequest.email,
            SubscriptionRequest.sections,
            SubscriptionRequest.lang,
            SubscriptionRequest.source,
        )
    ).one_or_none()
    if taken is None:
        return False
    action, email, sections, lang, source = taken
    from feedsvc.subscribers import subscriptions  # Jinja2 and the notices: only once there is a request to decide

    try:
        with session.begin_nested():  # a refused request is dropped, never left to block the ones after it
            if action == SUBSCRIBE:
                subscriptions.subscribe(session, settings, email, sections.split(";"), lang=lang, source=source)
            else:
                subscriptions.request_manage_link(session, settings, email)
    except (ValueError, IntegrityError) as exc:  # InvalidAddress, NoSections (rules changed since it was queued)
        log.warning("dropped a queued %s request that cannot be decided: %s", action, exc.__class__.__name__)
    return True


def process(database: Database, settings: Settings, limit: int = 1000) -> int:
    """Decide up to `limit` queued requests, one transaction each; how many were decided."""
    done = 0
    while done < limit:
        with database.session() as session:
            if not process_one(session, settings):
                break
        done += 1
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
