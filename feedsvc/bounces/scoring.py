"""The subscriber's bounce score: the one place where a bounce changes a subscriber. No Flask, no ORM.

Hard +1, soft +0.5 at most once a day; a score whose last bounce is `stale_days` old starts again from 0; at
`limit` an active or pending subscriber becomes bounced. Every call also keeps the bounce (a `bounces` row).
Written in Core statements, so that `feedsvc worker` scores a refusal without loading the ORM; a session
runs them as well (bounce intake), in its own transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import insert, select, update

from feedsvc.bounces.classify import HARD, POLICY, SCORE, SOFT, BouncePolicy, classify_status, enhanced_status
from feedsvc.db.tables import ACTIVE, BOUNCED, PENDING, bounces, subscriber_events, subscribers

if TYPE_CHECKING:
    from feedsvc.db.engine import Executor

__all__ = ["current_score", "record_refusal", "score_bounce"]

SOFT_INTERVAL = timedelta(days=1)


class Scored(Protocol):
    """What the score is read from: a subscriber object or row."""

    bounce_score: float
    bounce_scored_at: datetime | None


def current_score(subscriber: Scored, policy: BouncePolicy, now: datetime) -> float:
    """The score as it counts now: 0 once its last bounce is `policy.stale_days` old."""
    if subscriber.bounce_scored_at is None or subscriber.bounce_scored_at <= now - timedelta(days=policy.stale_days):
        return 0.0
    return float(subscriber.bounce_score or 0.0)


def score_bounce(
    executor: Executor, subscriber_id: int, bounce: dict[str, Any], policy: BouncePolicy, now: datetime
) -> str:
    """Count a hard or soft bounce (the `bounces` row's values) for the subscriber, whose row is locked here, and
    keep the bounce with what it did; its effect ("erased" when the subscriber is gone: nothing is kept then)."""
    kind = bounce["kind"]
    if kind not in SCORE:
        raise ValueError(f"only hard and soft bounces are scored, not {kind!r}")
    found = executor.execute(
        select(subscribers.c.status, subscribers.c.bounce_score, subscribers.c.bounce_scored_at)
        .where(subscribers.c.id == subscriber_id)
        .with_for_update()
    ).first()
    if found is None:
        return "erased"
    effect = _apply(executor, subscriber_id, found, bounce, policy, now)
    counted = effect in ("scored", "bounced")
    executor.execute(
        insert(bounces).values({**bounce, "subscriber_id": subscriber_id, "counted": counted, "effect": effect})
    )
    return effect


def _apply(
    executor: Executor, subscriber_id: int, found: Any, bounce: dict[str, Any], policy: BouncePolicy, now: datetime
) -> str:
    """Change the subscriber (row `found`: status and score) for `bounce`, with their events; what it did."""
    if found.status not in (ACTIVE, PENDING):
        return "left"
    kind = bounce["kind"]
    if kind == SOFT and executor.scalar(
        select(bounces.c.id)
        .where(
            bounces.c.subscriber_id == subscriber_id,
            bounces.c.kind == SOFT,
            bounces.c.counted.is_(True),
            bounces.c.at > now - SOFT_INTERVAL,
        )
        .limit(1)
    ):
        return "soft_today"
    score = current_score(found, policy, now) + SCORE[kind]
    bounced = score >= policy.limit
    changes: dict[str, Any] = {"bounce_score": score, "bounce_scored_at": now, "updated_at": now}
    if bounced:
        changes.update(status=BOUNCED, bounced_at=now)
    executor.execute(
        update(subscribers)
        .where(subscribers.c.id == subscriber_id)
        .values({**changes, "bounce_count": subscribers.c.bounce_count + 1})
    )
    words = " ".join(x for x in (kind, bounce.get("status", ""), bounce.get("diagnostic", "")) if x)
    events = [{"kind": "bounce", "detail": words[:500]}] + ([{"kind": "bounced", "detail": ""}] if bounced else [])
    executor.execute(insert(subscriber_events), [{"subscriber_id": subscriber_id, "at": now, **e} for e in events])
    return "bounced" if bounced else "scored"


def record_refusal(
    executor: Executor,
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
    bounce = {
        "outbox_id": outbox_id,
        "issue_number": issue_number,
        "kind": kind,
        "status": enhanced_status(reply),
        "diagnostic": reply[:1000],
        "source": source,
        "at": now,
    }
    if kind == POLICY:  # a policy block keeps its subscriber (erasing them erases it) but never counts against them
        executor.execute(
            insert(bounces).values({**bounce, "subscriber_id": subscriber_id, "counted": False, "effect": "policy"})
        )
        return "policy"
    if subscriber_id is None:
        return "erased"
    return score_bounce(executor, subscriber_id, bounce, policy, now)


def hard_bounce(executor: Executor, subscriber_id: int, reason: str, policy: BouncePolicy, now: datetime) -> bool:
    """A hard bounce with no outbox row (the older `record_bounce` call); True if the subscriber became bounced."""
    return (
        record_refusal(
            executor,
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
