"""The audit log: every staff action recorded with who, what, when and from where, and read back newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedsvc.db.engine import utcnow
from feedsvc.staff.models import AuditEntry


@dataclass(frozen=True)
class Entry:
    """An audit entry as shown to owners and printed by `feedsvc audit`."""

    at: datetime
    actor: str
    action: str
    detail: str
    client: str

    def as_json(self) -> dict[str, str]:
        """The entry for `feedsvc audit --json`."""
        return {
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "detail": self.detail,
            "client": self.client,
        }


def record(session: Session, actor: str, action: str, detail: str = "", client: str = "") -> None:
    """Add one entry: `actor` did `action` (with `detail`) from `client` (an address, or "" for the CLI)."""
    session.add(AuditEntry(at=utcnow(), actor=actor, action=action, detail=detail, client=client))


def entries(session: Session, limit: int = 200, offset: int = 0) -> list[Entry]:
    """The newest `limit` entries after skipping the `offset` newest, newest first."""
    rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).offset(offset).limit(limit))
    return [Entry(r.at, r.actor, r.action, r.detail, r.client) for r in rows]
