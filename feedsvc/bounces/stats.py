"""Bounce figures per issue and a subscriber's bounce history, for `feedsvc status` and the admin pages. No Flask."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from feedsvc.bounces.classify import COMPLAINT, HARD, POLICY, SOFT
from feedsvc.bounces.models import Bounce, BounceReport

__all__ = ["COMPLAINT_LINE", "IssueBounces", "history", "per_issue", "unmatched_reports"]

#: Gmail's and Yahoo's 2024 bulk-sender rules: stay below 0.3% complaints.
COMPLAINT_LINE = 0.003


@dataclass(frozen=True)
class IssueBounces:
    """What came back for one issue's send: outbox rows with a hard or soft bounce, a policy block, a complaint."""

    number: int
    sent: int = 0
    bounced_hard: int = 0
    bounced_soft: int = 0
    policy: int = 0
    complaints: int = 0

    @property
    def complaint_rate(self) -> float:
        """Complaints per message sent (0 before anything was sent)."""
        return self.complaints / self.sent if self.sent else 0.0

    @property
    def over_line(self) -> bool:
        """Whether the complaint rate has reached the 0.3% line."""
        return self.complaint_rate >= COMPLAINT_LINE

    def to_json(self) -> dict[str, int | float]:
        """The keys `feedsvc status --json` adds per issue."""
        return {
            "bounced_hard": self.bounced_hard,
            "bounced_soft": self.bounced_soft,
            "policy": self.policy,
            "complaints": self.complaints,
            "complaint_rate": round(self.complaint_rate, 6),
        }


def per_issue(session: Session, sent: dict[int, int]) -> dict[int, IssueBounces]:
    """The figures of each issue in `sent` (issue number → messages sent), counted once per outbox row."""
    if not sent:
        return {}
    rows = session.execute(
        select(Bounce.issue_number, Bounce.kind, func.count(distinct(Bounce.outbox_id)))
        .where(Bounce.issue_number.in_(list(sent)), Bounce.kind.in_((HARD, SOFT, POLICY, COMPLAINT)))
        .group_by(Bounce.issue_number, Bounce.kind)
    )
    found: dict[int, dict[str, int]] = {}
    for number, kind, count in rows:
        found.setdefault(int(number), {})[str(kind)] = int(count)
    return {
        number: IssueBounces(
            number=number,
            sent=count,
            bounced_hard=found.get(number, {}).get(HARD, 0),
            bounced_soft=found.get(number, {}).get(SOFT, 0),
            policy=found.get(number, {}).get(POLICY, 0),
            complaints=found.get(number, {}).get(COMPLAINT, 0),
        )
        for number, count in sent.items()
    }


@dataclass(frozen=True)
class HistoryEntry:
    """One bounce or complaint of a subscriber, with the server's own words."""

    at: datetime
    kind: str
    status: str
    diagnostic: str
    effect: str
    issue_number: int | None
    source: str


def history(session: Session, subscriber_id: int, limit: int = 100) -> list[HistoryEntry]:
    """A subscriber's bounces and complaints, newest first."""
    rows = session.scalars(
        select(Bounce)
        .where(Bounce.subscriber_id == subscriber_id)
        .order_by(Bounce.at.desc(), Bounce.id.desc())
        .limit(limit)
    )
    return [HistoryEntry(b.at, b.kind, b.status, b.diagnostic, b.effect, b.issue_number, b.source) for b in rows]


def unmatched_reports(session: Session, since: datetime | None = None) -> int:
    """How many recipient results of the reports taken in matched no mail we sent."""
    query = select(func.coalesce(func.sum(BounceReport.unmatched), 0))
    if since is not None:
        query = query.where(BounceReport.received_at >= since)
    return int(session.scalar(query) or 0)


def sent_per_issue(counts: Sequence[object]) -> dict[int, int]:
    """Issue number → messages sent, from `feedsvc.outbox.sends.counts`."""
    return {int(c.number): int(c.sent) for c in counts}  # type: ignore[attr-defined]
