"""The subscriber list as the staff read it: filtered by status and section, a page at a time. No Flask."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from feedsvc.db.models import Subscriber, SubscriberSection

MAX_PAGE = 500


@dataclass(frozen=True)
class Listed:
    """One subscriber as listed."""

    id: int
    email: str
    status: str
    sections: list[str]
    source: str
    created_at: datetime
    confirmed_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        """The subscriber as the API answers it."""
        return {
            "id": self.id,
            "email": self.email,
            "status": self.status,
            "sections": self.sections,
            "source": self.source,
            "created_at": self.created_at.isoformat(),
            "confirmed_at": self.confirmed_at.isoformat() if self.confirmed_at else None,
        }


@dataclass(frozen=True)
class Page:
    """One page of the list: its rows, and how many match in all."""

    rows: list[Listed]
    total: int
    offset: int
    limit: int


def listed(subscriber: Subscriber) -> Listed:
    """`subscriber` as listed."""
    return Listed(
        subscriber.id,
        subscriber.email,
        subscriber.status,
        subscriber.section_slugs,
        subscriber.source,
        subscriber.created_at,
        subscriber.confirmed_at,
    )


def page(
    session: Session, *, status: str | None = None, section: str | None = None, offset: int = 0, limit: int = 50
) -> Page:
    """Subscribers with `status` and `section` (either may be None: any), by id, `limit` from `offset`."""
    limit = max(1, min(limit, MAX_PAGE))
    where = []
    if status:
        where.append(Subscriber.status == status)
    if section:
        where.append(
            Subscriber.id.in_(select(SubscriberSection.subscriber_id).where(SubscriberSection.section == section))
        )
    total = session.scalar(select(func.count()).select_from(Subscriber).where(*where)) or 0
    rows = session.scalars(
        select(Subscriber)
        .where(*where)
        .options(selectinload(Subscriber.sections))
        .order_by(Subscriber.id)
        .offset(offset)
        .limit(limit)
    )
    return Page([listed(s) for s in rows], total, offset, limit)
