"""The subscription workflow: subscribe, confirm, change sections, unsubscribe, resubscribe, purge. No Flask.

Every function takes a SQLAlchemy `Session` (the caller owns the transaction) and the `Settings`.
Mail is never sent from here: a confirmation or manage-link mail is rendered and written to the outbox
in the same transaction as the change that asks for it, and `feedsvc worker` sends it.

Consent: only the owner of an address changes what it receives. A sign-up for an address that is
pending, unsubscribed or bounced leaves its status and sections as they are; the sections asked for
travel, signed, in the confirmation link (`tokens`), and confirming applies them. A confirmation link
asked for before the subscription ended (unsubscribed, bounced) is stale: one place, `confirmation`.

Concurrency: one address gets at most one confirmation (or manage-link) mail per `NOTICE_INTERVAL`,
however many requests arrive at once. That is decided by the database, not by Python locks: the
subscriber row is created with ``INSERT … ON CONFLICT DO NOTHING`` (the unique address decides who
creates it), already carrying its first mail's claim (``notified_at = now``); for a known address the mail
is claimed with a conditional ``UPDATE … SET notified_at = now WHERE notified_at IS NULL OR notified_at <
now - interval RETURNING …``, which exactly one of any number of concurrent transactions can win (row
lock on PostgreSQL, the write lock on SQLite).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from feedsvc.config import Publication, Settings
from feedsvc.db.engine import dialect_of, insert_for, insert_for_dialect, utcnow
from feedsvc.db.models import (
    ACTIVE,
    BOUNCED,
    CANCELLED,
    KIND_CONFIRM,
    KIND_MANAGE,
    KIND_RECONFIRM,
    PENDING,
    QUEUED,
    UNSUBSCRIBED,
    OutboxMessage,
    Subscriber,
    SubscriberEvent,
    SubscriberSection,
    section_key,
)
from feedsvc.mail import notices
from feedsvc.ops import metrics
from feedsvc.outbox import rules, sends
from feedsvc.subscribers import welcome
from feedsvc.subscribers.addresses import normalise_email
from feedsvc.subscribers.privacy import lift_suppression
from feedsvc.subscribers.tokens import CONFIRM, MANAGE, UNSUBSCRIBE, TokenError, link, resolve_payload

NOTICE_INTERVAL = timedelta(minutes=10)
WRITE_BATCH = 500  # subscribers per DELETE of section rows (SQLite binds at most 32,766 values)
#: events that mean the owner once ended the subscription (or a mailbox refused it): an import never undoes them.
LEFT_EVENTS = ("unsubscribed", "bounced", "complained")


class NoSections(ValueError):
    """None of the requested sections exists."""


def choose_sections(publication: Publication, requested: Iterable[str]) -> list[str]:
    """The requested slugs that exist, in the publication's order; NoSections when none does."""
    wanted = set(requested)
    chosen = [slug for slug in publication.slugs if slug in wanted]
    if not chosen:
        raise NoSections("choose at least one section")
    return chosen


def _enqueue_notice(
    session: Session, settings: Settings, subscriber: _Claim, kind: str, now: datetime, request: Sequence[str] = ()
) -> None:
    if kind in (KIND_CONFIRM, KIND_RECONFIRM):
        asked = [int(now.timestamp() * 1000), list(request)] if request else []
        links = {"confirm_url": link(settings, CONFIRM, subscriber.id, subscriber.token_version, *asked)}
    else:
        links = {}
    links["manage_url"] = link(settings, MANAGE, subscriber.id, subscriber.token_version)
    links["unsubscribe_url"] = link(settings, UNSUBSCRIBE, subscriber.id, subscriber.token_version)
    notice = notices.render(
        settings, KIND_CONFIRM if kind == KIND_RECONFIRM else kind, subscriber.email, subscriber.lang, links
    )
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


@cache
def _new_subscriber(dialect: str) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING id`` of a pending subscriber (Core, built once per dialect).

    A new row is created with its first mail claimed (``notified_at``): only its creator can do that, and with
    its ``sections_key`` (`add_sections` writes the rows).
    """
    now = bindparam("now", type_=Subscriber.__table__.c.created_at.type)
    names = ("email", "source", "lang", "sections_key")
    values = {name: bindparam(name) for name in names}
    return (
        insert_for_dialect(dialect, Subscriber.__table__)
        .values(
            status=PENDING, token_version=1, bounce_count=0, created_at=now, updated_at=now, notified_at=now, **values
        )
        .on_conflict_do_nothing(index_elements=[Subscriber.__table__.c.email])
        .returning(Subscriber.__table__.c.id)
    )


def set_sections(session: Session, chosen: Mapping[int, Sequence[str]]) -> None:
    """The one writer of changed sections (subscriber id → slugs): the `subscriber_sections` rows and `sections_key`."""
    ids = list(chosen)
    for start in range(0, len(ids), WRITE_BATCH):
        part = ids[start : start + WRITE_BATCH]
        session.execute(delete(SubscriberSection).where(SubscriberSection.subscriber_id.in_(part)))
    add_sections(session, chosen)
    if ids:
        session.execute(update(Subscriber), [{"id": sid, "sections_key": section_key(s)} for sid, s in chosen.items()])


def add_sections(session: Session, chosen: Mapping[int, Sequence[str]]) -> None:
    """The `subscriber_sections` rows, for `set_sections` and for a subscriber just created with its `sections_key`."""
    rows = [{"subscriber_id": sid, "section": slug} for sid, slugs in chosen.items() for slug in dict.fromkeys(slugs)]
    if rows:
        session.execute(insert_for(session, SubscriberSection.__table__), rows)


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

    A new address becomes pending with the chosen sections. A known one (pending, unsubscribed, bounced)
    keeps its status and sections: the confirmation link carries the request, and only confirming it
    applies it. An active subscriber gets their manage link instead. At most one mail per address per
    NOTICE_INTERVAL. Raises InvalidAddress or NoSections before writing anything.
    """
    now = now or utcnow()
    email = normalise_email(address)
    chosen = choose_sections(settings.publication, sections)
    values = {"email": email, "source": source, "lang": lang, "sections_key": section_key(chosen), "now": now}
    created = session.execute(_new_subscriber(dialect_of(session)), values).scalar_one_or_none()
    if created is not None:
        add_sections(session, {created: chosen})
        _log(session, created, "subscribe_requested", now, f"source={source}")
        metrics.count_on_commit(session, metrics.SIGNUPS)
        claim: _Claim | None = _Claim(created, email, PENDING, 1, lang)  # claimed by creating it
    else:
        claim = _claim_notice(session, email, now)
    if claim is None:
        return Outcome("throttled")
    if claim.status == ACTIVE:
        _enqueue_notice(session, settings, claim, KIND_MANAGE, now)
        return Outcome("manage_queued", claim.id)
    kind = KIND_CONFIRM
    if claim.status != PENDING:
        kind = KIND_RECONFIRM
        _log(session, claim.id, "resubscribe_requested", now, f"was={claim.status}")
    _enqueue_notice(session, settings, claim, kind, now, chosen)
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


@dataclass(frozen=True)
class Confirmation:
    """What a confirmation link would do: the subscriber, and the sections confirming gives them."""

    subscriber: Subscriber
    sections: list[str]


def confirmation(session: Session, settings: Settings, token: str, *, lock: bool = False) -> Confirmation:
    """The subscriber and sections a confirmation link names; TokenError("stale") when it no longer counts.

    A link is stale when the subscription ended (unsubscribed, bounced) after the link was asked for:
    subscribing again sends a new one. For an active subscriber confirming changes nothing.
    """
    subscriber, extra = resolve_payload(session, settings, CONFIRM, token, lock=lock)
    asked_ms, requested = _request_of(extra)
    ended = {UNSUBSCRIBED: subscriber.unsubscribed_at, BOUNCED: subscriber.bounced_at}.get(subscriber.status)
    if subscriber.status not in (PENDING, ACTIVE) and (
        asked_ms is None or ended is None or asked_ms <= int(ended.timestamp() * 1000)
    ):
        raise TokenError("stale")
    if subscriber.status == ACTIVE or not requested:
        return Confirmation(subscriber, subscriber.section_slugs)
    try:
        return Confirmation(subscriber, choose_sections(settings.publication, requested))
    except NoSections:
        return Confirmation(subscriber, subscriber.section_slugs or list(settings.publication.slugs))


def _request_of(extra: list[object]) -> tuple[int | None, list[str]]:
    """(when it was asked, in epoch ms; the sections asked for) from a confirmation token's extra values."""
    if len(extra) == 2 and type(extra[0]) is int and isinstance(extra[1], list):
        return extra[0], [slug for slug in extra[1] if isinstance(slug, str)]
    return None, []  # a link from before requests travelled in it


def confirm(session: Session, settings: Settings, token: str, *, now: datetime | None = None) -> Subscriber:
    """Activate the subscriber a confirmation token names, with the sections it asked for. Confirming twice
    is harmless; TokenError("stale") as `confirmation` says."""
    now = now or utcnow()
    asked = confirmation(session, settings, token, lock=True)
    subscriber = asked.subscriber
    if subscriber.status != ACTIVE:
        was = subscriber.status
        if sorted(asked.sections) != sorted(subscriber.section_slugs):
            set_sections(session, {subscriber.id: asked.sections})
            session.expire(subscriber, ["sections"])
        subscriber.status = ACTIVE
        subscriber.confirmed_at = now
        subscriber.updated_at = now
        subscriber.bounce_count = 0
        subscriber.bounce_score = 0.0
        _log(session, subscriber.id, "confirmed", now, "" if was == PENDING else f"was={was}")
        metrics.count_on_commit(session, metrics.CONFIRMATIONS)
        # Double opt-in is consent: an address erased earlier is no longer suppressed.
        lift_suppression(session, subscriber.email)
        if settings.publication.welcome_mail:
            welcome.queue_welcome(session, settings, subscriber, now)
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
    set_sections(session, {subscriber.id: chosen})
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
        .where(sends.rows_of(session, [subscriber.id]), OutboxMessage.state == QUEUED)
        .values(state=CANCELLED, updated_at=now, last_error="unsubscribed", message=None)
        .execution_options(synchronize_session=False)
    )
    _log(session, subscriber.id, "unsubscribed", now, how)
    metrics.count_on_commit(session, metrics.UNSUBSCRIBES.labels(how))
    return True


def resubscribe(
    session: Session, settings: Settings, subscriber: Subscriber, *, now: datetime | None = None
) -> Outcome:
    """From the manage page of an ended subscription: a new confirmation, for the sections it had."""
    sections = subscriber.section_slugs or list(settings.publication.slugs)
    return subscribe(session, settings, subscriber.email, sections, lang=subscriber.lang, source="manage", now=now)


def ever_left(session: Session, subscriber_ids: Iterable[int]) -> set[int]:
    """Those of `subscriber_ids` that ever unsubscribed, bounced or complained, whatever their status now."""
    ids = list(subscriber_ids)
    if not ids:
        return set()
    left_event = select(SubscriberEvent.subscriber_id).where(SubscriberEvent.kind.in_(LEFT_EVENTS))
    query = select(Subscriber.id).where(
        Subscriber.id.in_(ids),
        or_(
            Subscriber.unsubscribed_at.is_not(None),
            Subscriber.bounced_at.is_not(None),
            Subscriber.status.in_((UNSUBSCRIBED, BOUNCED)),
            Subscriber.id.in_(left_event),
        ),
    )
    return set(session.scalars(query))


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
    """Count a hard bounce with the one bounce rule (feedsvc.bounces.scoring); True if the subscriber became bounced."""
    from feedsvc.bounces.classify import BouncePolicy
    from feedsvc.bounces.scoring import hard_bounce

    bounced = hard_bounce(session, subscriber_id, reason, BouncePolicy(limit=limit), now or utcnow())
    held = session.identity_map.get(Session.identity_key(Subscriber, subscriber_id))
    if held is not None:  # scored in Core statements: the session's object reads the row again when next used
        session.expire(held)
    return bounced
