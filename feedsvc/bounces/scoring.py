"""The subscriber's bounce score: the one place where a bounce changes a subscriber. No Flask.

Hard +1, soft +0.5 at most once a day; a score whose last bounce is `stale_days` old starts again from 0; at
`limit` an active or pending subscriber becomes bounced. Every call also keeps the bounce (`Bounce`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedsvc.bounces.classify import HARD, POLICY, SCORE, SOFT, BouncePolicy, classify_status, enhanced_status
from feedsvc.bounces.models import Bounce
from feedsvc.db.models import ACTIVE, PENDING, Subscriber, SubscriberEvent

__all__ = ["current_score", "record_refusal", "score_bounce"]

SOFT_INTERVAL = timedelta(days=1)


def current_score(subscriber: Subscriber, policy: BouncePolicy, now: datetime) -> float:
    """The score as it counts now: 0 once its last bounce is `policy.stale_days` old."""
    if subscriber.bounce_scored_at is None or subscriber.bounce_scored_at <= now - timedelta(days=policy.stale_days):
        return 0.0
    return float(subscriber.bounce_score or 0.0)


def score_bounce(
    session: Session,
    subscriber: Subscriber,
    bounce: Bounce,
    policy: BouncePolicy,
    now: datetime,
) -> str:
    """Count a hard or soft `bounce` (added to the session) for `subscriber` (locked by the caller); its effect."""
    session.add(bounce)
    if bounce.kind not in SCORE:
        raise ValueError(f"only hard and soft bounces are scored, not {bounce.kind!r}")
    if subscriber.status not in (ACTIVE, PENDING):
        bounce.effect = "left"
        return bounce.effect
    if bounce.kind == SOFT and session.scalar(
        select(Bounce.id)
        .where(
            Bounce.subscriber_id == subscriber.id,
            Bounce.kind == SOFT,
            Bounce.counted.is_(True),
            Bounce.at > now - SOFT_INTERVAL,
        )
        .limit(1)
    ):
        bounce.effect = "soft_today"
        return bounce.effect
    subscriber.bounce_score = current_score(subscriber, policy, now) + SCORE[bounce.kind]
    subscriber.bounce_scored_at = now
    subscriber.bounce_count += 1
    subscriber.updated_at = now
    bounce.counted = True
    words = " ".join(x for x in (bounce.kind, bounce.status, bounce.diagnostic) if x)
    session.add(SubscriberEvent(subscriber_id=subscriber.id, kind="bounce", detail=words[:500], at=now))
    if subscriber.bounce_score >= policy.limit:
        subscriber.status = "bounced"
        subscriber.bounced_at = now
        session.add(SubscriberEvent(subscriber_id=subscriber.id, kind="bounced", detail="", at=now))
        bounce.effect = "bounced"
    else:
        bounce.effect = "scored"
    return bounce.effect


def record_refusal(
    session: Session,
    *,
    subscriber_id: int | None,
    outbox_id: int | None,
    issue_number: int | None,
    reply: str,
    policy: BouncePolicy,
    now: datetime,
    source: str = "smtp",
    kind: str = "",
) -> str:
    """A refusal at SMTP time (a 5xx reply `reply`), through the same rule as a report; its effect."""
    kind = kind or classify_status(enhanced_status(reply), reply)
    bounce = Bounce(
        subscriber_id=subscriber_id,  # a policy block keeps it too, uncounted: erasing the reader erases it
        outbox_id=outbox_id,
        issue_number=issue_number,
        kind=kind,
        status=enhanced_status(reply),
        diagnostic=reply[:1000],
        source=source,
        counted=False,
        effect="",
        at=now,
    )
    if kind == POLICY:
        bounce.effect = "policy"
        session.add(bounce)
        return bounce.effect
    subscriber = session.get(Subscriber, subscriber_id, with_for_update=True) if subscriber_id is not None else None
    if subscriber is None:
        return "erased"
    return score_bounce(session, subscriber, bounce, policy, now)


def hard_bounce(session: Session, subscriber_id: int, reason: str, policy: BouncePolicy, now: datetime) -> bool:
    """A hard bounce with no outbox row (the older `record_bounce` call); True if the subscriber became bounced."""
    return (
        record_refusal(
            session,
            subscriber_id=subscriber_id,
            outbox_id=None,
            issue_number=None,
            reply=reason,
            policy=policy,
            now=now,
            kind=HARD,
        )
        == "bounced"
    )
