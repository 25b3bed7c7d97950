"""Taking in what comes back: one report (bytes) or one structured event (SES) is matched to the outbox row it is
about and acted on, in one transaction. No Flask. The ways reports arrive (IMAP, LMTP, the SES webhook, the CLI)
all call `take_in` or `take_in_event`.

Matching: first the VERP tag of the address the report was sent to (`feedsvc.bounces.verp`); a tag that is not
ours changes nothing. Without a tag, the Message-ID of the returned original, which must be one we sent to that
very recipient. Never the body text. Then, per recipient (`feedsvc.bounces.classify`):

- hard / soft: the subscriber's score (`feedsvc.bounces.scoring`); policy: kept against the issue's send only;
- complaint: the reader is unsubscribed at once, the reason in their event log;
- a second report for the same outbox row (a replay), or for an address already unsubscribed, bounced or erased,
  changes nothing; delayed notices and auto-replies change nothing either.

Every matched bounce and complaint is kept (`Bounce`); every message taken in is kept as a `BounceReport` with its
raw bytes (emptied after 30 days by the housekeeping), and counts as unmatched when nothing in it matched.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedsvc.bounces import verp
from feedsvc.bounces.classify import (
    COMPLAINT,
    HARD,
    POLICY,
    RECORDED_KINDS,
    SOFT,
    BouncePolicy,
    classify_status,
)
from feedsvc.bounces.models import Bounce, BounceReport
from feedsvc.bounces.reports import RecipientReport, Report, ReportError, read_report
from feedsvc.bounces.scoring import score_bounce
from feedsvc.config import Settings
from feedsvc.db.engine import Database, utcnow
from feedsvc.db.models import ACTIVE, PENDING, OutboxMessage, Subscriber, SubscriberEvent
from feedsvc.ops import metrics
from feedsvc.subscribers import subscriptions

__all__ = ["BounceEvent", "Intake", "RecipientOutcome", "take_in", "take_in_event"]

log = logging.getLogger(__name__)

# Intake outcomes.
RECORDED, UNMATCHED, NO_CHANGE = "recorded", "unmatched", "no_change"
NOT_A_REPORT, UNREADABLE, TOO_LARGE = "not_a_report", "unreadable", "too_large"


@dataclass(frozen=True)
class RecipientOutcome:
    """What one recipient of a report did: matched or not, and its effect (scored, bounced, unsubscribed, policy,
    soft_today, replayed, left, erased, bad_tag, foreign_message_id, unmatched, no_change)."""

    recipient: str
    kind: str
    status: str
    diagnostic: str
    matched: bool
    effect: str
    subscriber_id: int | None = None
    outbox_id: int | None = None


@dataclass(frozen=True)
class Intake:
    """What taking in one message did. `handled`: it was a bounce, complaint, delay or auto-reply (recognised, even
    if it matched nothing); a fetcher moves handled messages out of the inbox and leaves the rest."""

    handled: bool
    outcome: str  # recorded, unmatched, no_change, not_a_report, unreadable, too_large
    report_type: str = ""
    results: tuple[RecipientOutcome, ...] = ()
    report_id: int | None = None


@dataclass(frozen=True)
class BounceEvent:
    """A bounce or complaint that arrived as structured data (an SES notification), not as a MIME report."""

    message_id: str  # the Message-ID we sent, <…@…>
    recipient: str
    kind: str  # hard, soft, policy or complaint
    status: str = ""  # 5.1.1, or a complaint's feedback type
    diagnostic: str = ""


def take_in(
    database: Database,
    settings: Settings,
    raw: bytes,
    *,
    source: str,
    now: datetime | None = None,
    envelope_to: Sequence[str] = (),
) -> Intake:
    """Read, match and act on one message; never raises for bad input (a log line and `handled=False` instead).

    `envelope_to`: the addresses the message was delivered to (LMTP RCPT TO), when the receiver knows them.
    """
    now = now or utcnow()
    policy = BouncePolicy.from_env(settings.extra)
    if len(raw) > policy.max_bytes:
        log.warning(
            "%s: refused a report of %d bytes (FEEDSVC_BOUNCE_MAX_BYTES=%d)", source, len(raw), policy.max_bytes
        )
        return Intake(False, TOO_LARGE)
    try:
        report = read_report(raw, policy)
    except ReportError as exc:
        log.warning("%s: not read as a report: %s", source, exc)
        return Intake(False, UNREADABLE)
    if report is None:
        return Intake(False, NOT_A_REPORT)
    with database.session() as session:
        return _act(session, settings, policy, report, raw, source, now, envelope_to)


def take_in_event(
    database: Database,
    settings: Settings,
    event: BounceEvent,
    *,
    source: str,
    now: datetime | None = None,
    raw: bytes = b"",
) -> Intake:
    """Match and act on one structured event by its Message-ID and recipient; `raw` (the notification) is kept."""
    now = now or utcnow()
    policy = BouncePolicy.from_env(settings.extra)
    kind = event.kind
    if kind not in RECORDED_KINDS:
        raise ValueError(f"bounce event kind {kind!r}: hard, soft, policy or complaint")
    if kind in (HARD, SOFT) and (event.status or event.diagnostic):  # a complaint or a policy block stays what it is
        kind = classify_status(event.status, event.diagnostic)
        if event.kind == SOFT and kind == HARD:
            kind = SOFT  # the notifier said transient: never more than soft
    recipient = RecipientReport(event.recipient.strip().lower(), kind, event.status, event.diagnostic[:1000], "failed")
    report = Report("event", (recipient,), (event.message_id.strip(),) if event.message_id else ())
    with database.session() as session:
        return _act(session, settings, policy, report, raw, source, now, ())


# -- acting in one transaction


def _act(
    session: Session,
    settings: Settings,
    policy: BouncePolicy,
    report: Report,
    raw: bytes,
    source: str,
    now: datetime,
    envelope_to: Sequence[str],
) -> Intake:
    stored = BounceReport(
        source=source[:32],
        report_type=report.report_type,
        outcome=NO_CHANGE,
        matched=0,
        unmatched=0,
        raw=raw or None,
        received_at=now,
    )
    session.add(stored)
    session.flush()
    if report.changes_nothing:
        results = tuple(
            RecipientOutcome(r.recipient, r.kind, r.status, r.diagnostic, False, NO_CHANGE) for r in report.recipients
        )
        return Intake(True, NO_CHANGE, report.report_type, results, stored.id)
    tag = verp.find_tag(settings, [*envelope_to, *report.addresses])
    results = []
    for recipient in report.recipients:
        if recipient.kind not in RECORDED_KINDS:
            results.append(_outcome(recipient, False, NO_CHANGE))
            continue
        row, missing = _match(session, report, recipient, tag)
        if row is None:
            results.append(_outcome(recipient, False, missing))
            continue
        results.append(_apply(session, policy, stored, row, recipient, source, now))
    stored.matched = sum(1 for r in results if r.matched)
    stored.unmatched = sum(1 for r in results if not r.matched and r.effect != NO_CHANGE)
    stored.outcome = RECORDED if stored.matched else UNMATCHED if stored.unmatched else NO_CHANGE
    return Intake(True, stored.outcome, report.report_type, tuple(results), stored.id)


def _outcome(
    recipient: RecipientReport, matched: bool, effect: str, row: OutboxMessage | None = None
) -> RecipientOutcome:
    return RecipientOutcome(
        recipient.recipient,
        recipient.kind,
        recipient.status,
        recipient.diagnostic,
        matched,
        effect,
        row.subscriber_id if row else None,
        row.id if row else None,
    )


def _match(
    session: Session, report: Report, recipient: RecipientReport, tag: verp.TagMatch | None
) -> tuple[OutboxMessage | None, str]:
    """The outbox row a recipient's result is about, or None and why not."""
    several = len(report.recipients) > 1
    if tag is not None:
        if tag.outbox_id is None:
            log.warning("a report came back to %s, a tag we never signed: ignored", tag.address)
            return None, "bad_tag"
        row = session.get(OutboxMessage, tag.outbox_id)
        if row is None:
            return None, "unmatched"
        if several and recipient.recipient and recipient.recipient != row.recipient.lower():
            return None, "unmatched"  # another recipient of the same report: not this row's
        return row, ""
    if not report.message_ids:
        return None, "unmatched"
    rows = list(session.scalars(select(OutboxMessage).where(OutboxMessage.message_id.in_(report.message_ids))))
    if recipient.recipient:
        rows = [r for r in rows if r.recipient.lower() == recipient.recipient]
    if len(rows) != 1:
        return None, "foreign_message_id"
    return rows[0], ""


def _apply(
    session: Session,
    policy: BouncePolicy,
    stored: BounceReport,
    row: OutboxMessage,
    recipient: RecipientReport,
    source: str,
    now: datetime,
) -> RecipientOutcome:
    kind = recipient.kind
    family = (COMPLAINT,) if kind == COMPLAINT else (HARD, SOFT, POLICY)
    if session.scalar(select(Bounce.id).where(Bounce.outbox_id == row.id, Bounce.kind.in_(family)).limit(1)):
        return _outcome(recipient, True, "replayed", row)
    bounce = {
        "report_id": stored.id,
        "outbox_id": row.id,
        "issue_number": row.issue_number,
        "kind": kind,
        "status": recipient.status[:16],
        "diagnostic": recipient.diagnostic[:1000],
        "source": source[:32],
        "at": now,
    }
    metrics.count_on_commit(session, metrics.COMPLAINTS if kind == COMPLAINT else metrics.BOUNCES.labels(kind))
    if kind == POLICY:  # the sender's problem: kept against the send, never counted against the reader
        session.add(Bounce(**bounce, subscriber_id=row.subscriber_id, counted=False, effect="policy"))
        return _outcome(recipient, True, "policy", row)
    subscriber = session.get(Subscriber, row.subscriber_id, with_for_update=True) if row.subscriber_id else None
    if subscriber is None:
        return _outcome(recipient, True, "erased", row)
    if subscriber.status not in (ACTIVE, PENDING):
        return _outcome(recipient, True, "left", row)
    if kind == COMPLAINT:
        subscriptions.unsubscribe(session, subscriber, how="complaint", now=now)
        detail = f"{recipient.diagnostic or recipient.status} (outbox row {row.id}, via {source})"
        session.add(SubscriberEvent(subscriber_id=subscriber.id, kind="complained", detail=detail[:500], at=now))
        session.add(Bounce(**bounce, subscriber_id=subscriber.id, counted=True, effect="unsubscribed"))
        return _outcome(recipient, True, "unsubscribed", row)
    effect = score_bounce(session, subscriber.id, bounce, policy, now)
    session.expire(subscriber)  # scored in Core statements: read again when next used
    return _outcome(recipient, True, effect, row)
