"""Subscriptions: subscribe, confirm, change sections, unsubscribe, export, erase; signed links. No Flask.

Every function takes a SQLAlchemy `Session` (the caller owns the transaction) and the `Settings`.
Mail is never sent from here: a confirmation or manage-link mail is rendered and written to the outbox
in the same transaction as the change that asks for it, and `feedsvc worker` sends it.

Concurrency: one address gets at most one confirmation (or manage-link) mail per `NOTICE_INTERVAL`,
however many requests arrive at once. That is decided by the database, not by Python locks: the
subscriber row is created with ``INSERT … ON CONFLICT DO NOTHING`` (the unique address decides who
creates it) and the mail is claimed with a conditional ``UPDATE … SET notified_at = now WHERE
notified_at IS NULL OR notified_at < now - interval RETURNING …``, which exactly one of any number of
concurrent transactions can win (row lock on PostgreSQL, the write lock on SQLite).

Links: confirmation tokens are signed (itsdangerous) and expire after `CONFIRM_MAX_AGE`; manage and
unsubscribe tokens are signed per subscriber and per purpose and do not expire (RFC 8058 one-click
links live in old mails), and all of a subscriber's tokens are revoked by bumping `token_version`.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TextIO

from email_validator import EmailNotValidError, validate_email
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, selectinload

from feedsvc.config import Publication, Settings
from feedsvc.db.engine import insert_for, utcnow
from feedsvc.db.models import (
    ACTIVE,
    BOUNCED,
    CANCELLED,
    KIND_CONFIRM,
    KIND_MANAGE,
    PENDING,
    QUEUED,
    UNSUBSCRIBED,
    OutboxMessage,
    Subscriber,
    SubscriberEvent,
    SubscriberSection,
    Suppression,
)
from feedsvc.mail import notices
from feedsvc.outbox import rules

NOTICE_INTERVAL = timedelta(minutes=10)
CONFIRM_MAX_AGE = timedelta(days=3)
UNCONFIRMED_KEPT = timedelta(days=30)
MAX_ADDRESS_LENGTH = 254
SUPPRESSION_PREFIX = b"feedsvc-suppression:"

CONFIRM, MANAGE, UNSUBSCRIBE = "confirm", "manage", "unsubscribe"
PURPOSES = (CONFIRM, MANAGE, UNSUBSCRIBE)


class InvalidAddress(ValueError):
    """The address cannot be an email address; the message says why (for the form)."""


class NoSections(ValueError):
    """None of the requested sections exists."""


class TokenError(Exception):
    """A link that cannot be used: `reason` is ``invalid`` (tampered, foreign, unknown), ``expired`` or ``stale``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- addresses and sections -------------------------------------------------------------------


def normalise_email(raw: str) -> str:
    """The canonical form of an address: syntax checked (no DNS), IDNA domain in Unicode, lower-cased.

    The whole address is lower-cased: local parts are case-sensitive on paper, but no mail system a
    newsletter reaches treats them so, and one person must not be able to subscribe twice as A@x and a@x.
    """
    raw = (raw or "").strip()
    if not raw or len(raw) > MAX_ADDRESS_LENGTH:
        raise InvalidAddress("empty or too long")
    try:
        info = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from exc
    return info.normalized.lower()


def email_hash(email: str) -> str:
    """SHA-256 of a normalised address: what a suppression entry keeps instead of the address.

    Not keyed with the secret key: a suppression list must outlive key rotation. Someone holding the
    database can test whether a known address is suppressed, which is exactly what the list is for.
    """
    return hashlib.sha256(SUPPRESSION_PREFIX + email.encode("utf-8")).hexdigest()


def choose_sections(publication: Publication, requested: Iterable[str]) -> list[str]:
    """The requested slugs that exist, in the publication's order; NoSections when none does."""
    wanted = set(requested)
    chosen = [slug for slug in publication.slugs if slug in wanted]
    if not chosen:
        raise NoSections("choose at least one section")
    return chosen


# --- tokens -----------------------------------------------------------------------------------


def _serializer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=f"feedsvc.{purpose}")


MAX_SUBSCRIBER_ID = 2**31 - 1  # subscribers.id is a 32-bit integer on PostgreSQL
_ID_BITS = 64
_HALF = _ID_BITS // 2
_HALF_MASK = (1 << _HALF) - 1


def _round(key: bytes, index: int, half: int) -> int:
    digest = hmac.new(key, index.to_bytes(1, "big") + half.to_bytes(_HALF // 8, "big"), hashlib.sha256).digest()
    return int.from_bytes(digest[: _HALF // 8], "big")


def mask_id(settings: Settings, value: int, *, reverse: bool = False) -> int:
    """A keyed permutation of 64-bit numbers, so tokens do not show subscriber ids (or how many there are).

    Four Feistel rounds with HMAC-SHA256 as the round function (Luby-Rackoff): without the secret key the
    masked number says nothing about the id; with it, `reverse=True` gives the id back.
    """
    if not 0 <= value < 1 << _ID_BITS:
        raise ValueError("out of range")
    key = hashlib.sha256(b"feedsvc.subscriber-id\0" + settings.secret_key.encode()).digest()
    left, right = value >> _HALF, value & _HALF_MASK
    if not reverse:
        for index in range(4):
            left, right = right, left ^ _round(key, index, right)
    else:
        for index in reversed(range(4)):
            left, right = right ^ _round(key, index, left), left
    return left << _HALF | right


def make_token(settings: Settings, purpose: str, subscriber_id: int, token_version: int) -> str:
    """A signed token for `purpose` (confirm, manage, unsubscribe) naming one subscriber and token version."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return str(_serializer(settings, purpose).dumps([mask_id(settings, subscriber_id), token_version]))


def read_token(settings: Settings, purpose: str, token: str) -> tuple[int, int]:
    """(subscriber id, token version) from a token of `purpose`; TokenError if forged, foreign or expired."""
    max_age = int(CONFIRM_MAX_AGE.total_seconds()) if purpose == CONFIRM else None
    try:
        value = _serializer(settings, purpose).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise TokenError("expired") from exc
    except (BadSignature, UnicodeError, ValueError) as exc:
        raise TokenError("invalid") from exc
    if not (isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value)):
        raise TokenError("invalid")
    try:
        subscriber_id = mask_id(settings, value[0], reverse=True)
    except ValueError as exc:
        raise TokenError("invalid") from exc
    if not 0 < subscriber_id <= MAX_SUBSCRIBER_ID:  # e.g. signed with a key that has since changed
        raise TokenError("invalid")
    return subscriber_id, value[1]


def link(settings: Settings, purpose: str, subscriber_id: int, token_version: int) -> str:
    """The absolute URL of a confirm, manage or unsubscribe link (also for List-Unsubscribe in issue mail)."""
    return f"{settings.base_url}/{purpose}/{make_token(settings, purpose, subscriber_id, token_version)}"


def resolve(session: Session, settings: Settings, purpose: str, token: str, *, lock: bool = False) -> Subscriber:
    """The subscriber a token of `purpose` names; TokenError if it is not a current token of a subscriber."""
    subscriber_id, version = read_token(settings, purpose, token)
    query = select(Subscriber).where(Subscriber.id == subscriber_id).options(selectinload(Subscriber.sections))
    if lock:
        query = query.with_for_update()
    subscriber = session.scalars(query).one_or_none()
    if subscriber is None or subscriber.token_version != version:
        raise TokenError("invalid")
    return subscriber


def _enqueue_notice(session: Session, settings: Settings, subscriber: _Claim, kind: str, now: datetime) -> None:
    if kind == KIND_CONFIRM:
        links = {"confirm_url": link(settings, CONFIRM, subscriber.id, subscriber.token_version)}
    else:
        links = {}
    links["manage_url"] = link(settings, MANAGE, subscriber.id, subscriber.token_version)
    links["unsubscribe_url"] = link(settings, UNSUBSCRIBE, subscriber.id, subscriber.token_version)
    notice = notices.render(settings, kind, subscriber.email, subscriber.lang, links)
    rules.queue_notice(session, kind, subscriber.id, subscriber.email, notice, now)
    _log(session, subscriber.id, f"{kind}_mail_queued", now)


def _log(session: Session, subscriber_id: int, kind: str, now: datetime, detail: str = "") -> None:
    session.add(SubscriberEvent(subscriber_id=subscriber_id, kind=kind, detail=detail, at=now))


# --- the subscription workflow ------------------------------------------------------------------


@dataclass(frozen=True)
class _Claim:
    """The subscriber fields a won mail claim returned (read atomically with the claim)."""

    id: int
    email: str
    status: str
    token_version: int
    lang: str


@dataclass(frozen=True)
class Outcome:
    """What a request did. The web answer is the same whatever it is (no enumeration)."""

    action: str  # confirm_queued, manage_queued, throttled, unknown
    subscriber_id: int | None = None


def _claim_notice(session: Session, email: str, now: datetime) -> _Claim | None:
    """Win the right to queue one mail to `email` now, or None if one was queued within NOTICE_INTERVAL."""
    row = session.execute(
        update(Subscriber)
        .where(Subscriber.email == email)
        .where((Subscriber.notified_at.is_(None)) | (Subscriber.notified_at <= now - NOTICE_INTERVAL))
        .values(notified_at=now, updated_at=now)
        .returning(Subscriber.id, Subscriber.email, Subscriber.status, Subscriber.token_version, Subscriber.lang)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    return _Claim(*row) if row else None


def _set_sections(session: Session, subscriber_id: int, sections: Sequence[str]) -> None:
    session.execute(delete(SubscriberSection).where(SubscriberSection.subscriber_id == subscriber_id))
    session.execute(
        insert_for(session, SubscriberSection),
        [{"subscriber_id": subscriber_id, "section": slug} for slug in sections],
    )


def subscribe(
    session: Session,
    settings: Settings,
    address: str,
    sections: Iterable[str],
    *,
    lang: str = "zh-CN",
    source: str = "form",
    now: datetime | None = None,
) -> Outcome:
    """Ask to subscribe `address` to `sections`: a confirmation mail, or a manage link if already active.

    New, pending, unsubscribed and bounced addresses get a confirmation mail (and become pending with the
    chosen sections); an active subscriber's choices are left alone and they get their manage link
    instead. At most one mail per address per NOTICE_INTERVAL. Raises InvalidAddress or NoSections before
    writing anything.
    """
    now = now or utcnow()
    email = normalise_email(address)
    chosen = choose_sections(settings.publication, sections)
    created = session.execute(
        insert_for(session, Subscriber)
        .values(
            email=email,
            status=PENDING,
            source=source,
            lang=lang,
            token_version=1,
            bounce_count=0,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[Subscriber.email])
        .returning(Subscriber.id)
    ).scalar_one_or_none()
    if created is not None:
        _log(session, created, "subscribe_requested", now, f"source={source}")
    claim = _claim_notice(session, email, now)
    if claim is None:
        return Outcome("throttled")
    if claim.status == ACTIVE:
        _enqueue_notice(session, settings, claim, KIND_MANAGE, now)
        return Outcome("manage_queued", claim.id)
    if claim.status != PENDING:
        session.execute(
            update(Subscriber)
            .where(Subscriber.id == claim.id)
            .values(status=PENDING, source=source, lang=lang)
            .execution_options(synchronize_session=False)
        )
        _log(session, claim.id, "resubscribe_requested", now, f"was={claim.status}")
    _set_sections(session, claim.id, chosen)
    _enqueue_notice(session, settings, claim, KIND_CONFIRM, now)
    return Outcome("confirm_queued", claim.id)


def request_manage_link(session: Session, settings: Settings, address: str, *, now: datetime | None = None) -> Outcome:
    """Mail a manage link to a known address (a pending one gets its confirmation again). Throttled like subscribe."""
    now = now or utcnow()
    claim = _claim_notice(session, normalise_email(address), now)
    if claim is None:
        known = session.scalar(select(Subscriber.id).where(Subscriber.email == normalise_email(address)))
        return Outcome("throttled" if known else "unknown")
    _enqueue_notice(session, settings, claim, KIND_CONFIRM if claim.status == PENDING else KIND_MANAGE, now)
    return Outcome("confirm_queued" if claim.status == PENDING else "manage_queued", claim.id)


def confirm(session: Session, settings: Settings, token: str, *, now: datetime | None = None) -> Subscriber:
    """Activate the subscriber a confirmation token names. Confirming twice is harmless.

    TokenError("stale") when the subscription was ended after this link was sent (unsubscribed or
    bounced): subscribing again sends a new link.
    """
    now = now or utcnow()
    subscriber = resolve(session, settings, CONFIRM, token, lock=True)
    if subscriber.status == PENDING:
        subscriber.status = ACTIVE
        subscriber.confirmed_at = now
        subscriber.updated_at = now
        subscriber.bounce_count = 0
        _log(session, subscriber.id, "confirmed", now)
        # Double opt-in is consent: an address erased earlier is no longer suppressed.
        session.execute(delete(Suppression).where(Suppression.email_hash == email_hash(subscriber.email)))
    elif subscriber.status != ACTIVE:
        raise TokenError("stale")
    return subscriber


def change_sections(
    session: Session,
    subscriber: Subscriber,
    sections: Iterable[str],
    publication: Publication,
    *,
    now: datetime | None = None,
) -> bool:
    """Replace the subscriber's sections; True if they changed. Raises NoSections."""
    now = now or utcnow()
    chosen = choose_sections(publication, sections)
    before = subscriber.section_slugs
    if sorted(chosen) == sorted(before):
        return False
    _set_sections(session, subscriber.id, chosen)
    session.expire(subscriber, ["sections"])
    subscriber.updated_at = now
    _log(session, subscriber.id, "sections_changed", now, f"{';'.join(before)} -> {';'.join(chosen)}")
    return True


def unsubscribe(session: Session, subscriber: Subscriber, *, how: str = "page", now: datetime | None = None) -> bool:
    """End the subscription and cancel its queued mail; True if it changed. Unsubscribing twice is harmless."""
    now = now or utcnow()
    if subscriber.status == UNSUBSCRIBED:
        return False
    subscriber.status = UNSUBSCRIBED
    subscriber.unsubscribed_at = now
    subscriber.updated_at = now
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.subscriber_id == subscriber.id, OutboxMessage.state == QUEUED)
        .values(state=CANCELLED, updated_at=now, last_error="unsubscribed", message=None)
        .execution_options(synchronize_session=False)
    )
    _log(session, subscriber.id, "unsubscribed", now, how)
    return True


def resubscribe(
    session: Session, settings: Settings, subscriber: Subscriber, *, now: datetime | None = None
) -> Outcome:
    """From the manage page of an ended subscription: a new confirmation, for the sections it had."""
    sections = subscriber.section_slugs or list(settings.publication.slugs)
    return subscribe(session, settings, subscriber.email, sections, lang=subscriber.lang, source="manage", now=now)


def reset_links(session: Session, subscriber: Subscriber, *, now: datetime | None = None) -> int:
    """Revoke every manage, unsubscribe and confirmation link sent so far; the new token version."""
    now = now or utcnow()
    subscriber.token_version += 1
    subscriber.updated_at = now
    _log(session, subscriber.id, "links_reset", now)
    return subscriber.token_version


def record_bounce(
    session: Session, subscriber_id: int, limit: int, reason: str, *, now: datetime | None = None
) -> bool:
    """Count a hard bounce; at `limit` bounces an active or pending subscriber becomes bounced. True if it did."""
    now = now or utcnow()
    subscriber = session.get(Subscriber, subscriber_id, with_for_update=True)
    if subscriber is None:
        return False
    subscriber.bounce_count += 1
    subscriber.updated_at = now
    _log(session, subscriber.id, "bounce", now, reason[:500])
    if subscriber.bounce_count >= limit and subscriber.status in (ACTIVE, PENDING):
        subscriber.status = BOUNCED
        subscriber.bounced_at = now
        return True
    return False


def export(session: Session, subscriber: Subscriber) -> dict[str, Any]:
    """Everything kept about one subscriber, as JSON-ready data ("download my data")."""

    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    events = session.scalars(
        select(SubscriberEvent).where(SubscriberEvent.subscriber_id == subscriber.id).order_by(SubscriberEvent.id)
    )
    messages = session.scalars(
        select(OutboxMessage).where(OutboxMessage.subscriber_id == subscriber.id).order_by(OutboxMessage.id)
    )
    return {
        "email": subscriber.email,
        "status": subscriber.status,
        "sections": subscriber.section_slugs,
        "language": subscriber.lang,
        "source": subscriber.source,
        "created_at": when(subscriber.created_at),
        "confirmed_at": when(subscriber.confirmed_at),
        "unsubscribed_at": when(subscriber.unsubscribed_at),
        "bounced_at": when(subscriber.bounced_at),
        "bounce_count": subscriber.bounce_count,
        "events": [{"at": when(e.at), "event": e.kind, "detail": e.detail} for e in events],
        "mail": [
            {
                "kind": m.kind,
                "issue": m.issue_number,
                "sections": m.sections.split(";") if m.sections else None,
                "state": m.state,
                "queued_at": when(m.created_at),
                "sent_at": when(m.sent_at),
                "message_id": m.message_id,
            }
            for m in messages
        ],
    }


def export_json(session: Session, subscriber: Subscriber) -> str:
    """`export` as pretty UTF-8 JSON text."""
    return json.dumps(export(session, subscriber), ensure_ascii=False, indent=2)


def erase(session: Session, subscriber: Subscriber, *, now: datetime | None = None) -> None:
    """Remove the subscriber and everything about them (sections, events, mail); keep a hashed suppression."""
    now = now or utcnow()
    session.execute(
        insert_for(session, Suppression)
        .values(email_hash=email_hash(subscriber.email), reason="erased", created_at=now)
        .on_conflict_do_nothing(index_elements=[Suppression.email_hash])
    )
    session.execute(delete(Subscriber).where(Subscriber.id == subscriber.id))
    session.expunge(subscriber)


def suppress(session: Session, address: str, reason: str = "publisher", *, now: datetime | None = None) -> None:
    """Add an address to the suppression list (by hash)."""
    session.execute(
        insert_for(session, Suppression)
        .values(email_hash=email_hash(normalise_email(address)), reason=reason, created_at=now or utcnow())
        .on_conflict_do_nothing(index_elements=[Suppression.email_hash])
    )


def is_suppressed(session: Session, address: str) -> bool:
    """True if the (normalised) address is on the suppression list."""
    digest = email_hash(normalise_email(address))
    return session.scalar(select(Suppression.email_hash).where(Suppression.email_hash == digest)) is not None


def purge_unconfirmed(session: Session, *, now: datetime | None = None) -> int:
    """Delete pending sign-ups never confirmed within UNCONFIRMED_KEPT (no consent, so no reason to keep them)."""
    cutoff = (now or utcnow()) - UNCONFIRMED_KEPT
    result = session.execute(
        delete(Subscriber).where(
            Subscriber.status == PENDING, Subscriber.confirmed_at.is_(None), Subscriber.updated_at < cutoff
        )
    )
    return result.rowcount or 0


EXPORT_COLUMNS = ("email", "status", "sections")


def write_export(session: Session, out: TextIO, status: str | None = None) -> None:
    """The subscriber list as CSV (header row; email, status, section slugs joined by ';'), what
    `feedsvc subscribers export` prints and the admin page downloads; `subscribers import` reads it back."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for email, state, sections in subscriber_rows(session, status):
        writer.writerow((email, state, ";".join(sections)))


def subscriber_rows(session: Session, status: str | None = None) -> Iterator[tuple[str, str, list[str]]]:
    """(email, status, section slugs) for every subscriber (or those with `status`), by address."""
    query = select(Subscriber).options(selectinload(Subscriber.sections)).order_by(Subscriber.email)
    if status:
        query = query.where(Subscriber.status == status)
    for subscriber in session.scalars(query.execution_options(yield_per=1000)):
        yield subscriber.email, subscriber.status, subscriber.section_slugs
