"""`feedsvc subscribers import`: bring a list of subscribers in, the counterpart of `subscribers export`. No Flask.

Rules, in the order they apply to each good row of the CSV (`feedsvc.csv_import` reads it):

* an address on the suppression list (erased, or suppressed by the publisher) is never added again;
* an address that ever unsubscribed, bounced or complained here is never re-activated, whatever its
  status now: their choice, made here, wins over a list (only their own confirmation brings them back);
* an active subscriber is left as they are (their own section choices win over the list's);
* a pending one becomes active when the import is `consented`, else is left pending;
* a new address becomes active with `consented` (the publisher vouches for consent given elsewhere);
  without it, it becomes pending and gets a confirmation mail through the outbox, like a sign-up.

Everything happens in the caller's transaction: an import is all good rows or nothing, never half.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from feedsvc.config import Settings
from feedsvc.db.engine import insert_for, utcnow
from feedsvc.db.models import ACTIVE, PENDING, Subscriber, SubscriberEvent, Suppression, section_key
from feedsvc.subscribers import subscriptions
from feedsvc.subscribers.addresses import normalise_email
from feedsvc.subscribers.csvfile import ParsedCsv, RowProblem, parse_csv
from feedsvc.subscribers.privacy import email_hash

CHUNK = 500


@dataclass
class ImportResult:
    """What an import did, row by row in counts; problems keep their line numbers."""

    activated: int = 0  # new or pending addresses made active (--consented)
    confirmations: int = 0  # new addresses that were sent a confirmation mail
    unchanged: int = 0  # already active, or pending and not consented
    left: int = 0  # unsubscribed, bounced or complained here earlier: not re-activated
    suppressed: int = 0  # erased or suppressed: never re-added
    throttled: int = 0  # a confirmation was sent moments ago; not another one
    errors: list[RowProblem] = field(default_factory=list)
    skipped: list[RowProblem] = field(default_factory=list)


def read(data: bytes, settings: Settings) -> ParsedCsv:
    """Parse a subscriber CSV with the subscription rules' own address normalisation."""
    return parse_csv(data, settings.publication.slugs, normalise=normalise_email)


def import_rows(
    session: Session,
    settings: Settings,
    parsed: ParsedCsv,
    *,
    consented: bool,
    source: str = "import",
    now: datetime | None = None,
) -> ImportResult:
    """Apply the module's rules to every good row of `parsed`, in the caller's transaction (`source` names
    where the rows came from: an import, the API)."""
    now = now or utcnow()
    result = ImportResult(errors=list(parsed.errors), skipped=list(parsed.skipped))
    everything = list(settings.publication.slugs)
    for start in range(0, len(parsed.rows), CHUNK):
        rows = parsed.rows[start : start + CHUNK]
        emails = [r.email for r in rows]
        hashes = {email_hash(e): e for e in emails}
        suppressed = {
            hashes[h] for h in session.scalars(select(Suppression.email_hash).where(Suppression.email_hash.in_(hashes)))
        }
        existing = {
            email: (sid, status)
            for sid, email, status in session.execute(
                select(Subscriber.id, Subscriber.email, Subscriber.status).where(Subscriber.email.in_(emails))
            )
        }
        left = subscriptions.ever_left(session, (sid for sid, _ in existing.values()))
        for row in rows:
            sections = list(row.sections) or everything
            if row.email in suppressed:
                result.suppressed += 1
            elif row.email in existing:
                sid, status = existing[row.email]
                if sid in left and status != ACTIVE:
                    result.left += 1
                elif status == ACTIVE:
                    result.unchanged += 1
                elif status == PENDING and consented:
                    _activate(session, sid, sections, now)
                    result.activated += 1
                elif status == PENDING:
                    result.unchanged += 1
                else:
                    result.left += 1
            elif consented:
                if _add_active(session, row.email, sections, now, source):
                    result.activated += 1
                else:  # signed up through the web form since the import looked
                    result.unchanged += 1
            else:
                outcome = subscriptions.subscribe(session, settings, row.email, sections, source=source, now=now)
                if outcome.action == "confirm_queued":
                    result.confirmations += 1
                else:
                    result.throttled += 1
            existing.setdefault(row.email, (0, ACTIVE if consented else PENDING))
    return result


def _add_active(session: Session, email: str, sections: list[str], now: datetime, source: str) -> bool:
    """Add `email` as active with `sections`; False if the address appeared meanwhile (left as it is)."""
    sid = session.execute(
        insert_for(session, Subscriber)
        .values(
            email=email,
            status=ACTIVE,
            source=source,
            lang="zh-CN",
            token_version=1,
            bounce_count=0,
            created_at=now,
            updated_at=now,
            confirmed_at=now,
            sections_key=section_key(sections),
        )
        .on_conflict_do_nothing(index_elements=[Subscriber.email])
        .returning(Subscriber.id)
    ).scalar_one_or_none()
    if sid is None:
        return False
    subscriptions.add_sections(session, {sid: sections})
    session.add(SubscriberEvent(subscriber_id=sid, kind="imported", detail="consented", at=now))
    return True


def _activate(session: Session, sid: int, sections: list[str], now: datetime) -> None:
    session.execute(
        update(Subscriber)
        .where(Subscriber.id == sid)
        .values(status=ACTIVE, confirmed_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    subscriptions.set_sections(session, {sid: sections})
    session.add(SubscriberEvent(subscriber_id=sid, kind="imported", detail="consented", at=now))
