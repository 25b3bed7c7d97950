"""Scheduled publishing: an issue file kept in the database and published at its time, exactly once.

`schedule` checks the file now (as a publish would) and stores its bytes; `fire_due`, called by every
worker, claims each due row by changing its state from pending in the same transaction that publishes it
through the one publish sequence (feedsvc/publishing.py), so of several workers racing exactly one
publishes and the others find nothing pending. A publish that fails marks the row failed with the
message, so it is not retried in a loop; the publisher fixes the file and schedules again.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, insert, select, update

from feedsvc.config import Publication, Settings
from feedsvc.db.engine import Database, utcnow
from feedsvc.db.tables import (
    SCHEDULE_CANCELLED,
    SCHEDULE_FAILED,
    SCHEDULE_FIRED,
    SCHEDULE_PENDING,
    issues,
    scheduled_issues,
)

if TYPE_CHECKING:
    from feedsvc.db.engine import Executor

SCHEDULED = scheduled_issues.c

log = logging.getLogger(__name__)


class ScheduleError(Exception):
    """The schedule cannot be made, moved or cancelled; the message says why."""


@dataclass(frozen=True)
class Scheduled:
    """A pending schedule as the shells show it."""

    issue_number: int
    source_name: str
    due_at: datetime

    def local(self, publication: Publication) -> str:
        """The due time in the publication's time zone, e.g. `2024-01-22 08:00 (Asia/Shanghai)`."""
        return format_local(self.due_at, publication)


def format_local(when: datetime, publication: Publication) -> str:
    """`when` in the publication's time zone, to the minute, with the zone's name."""
    return f"{when.astimezone(publication.zone):%Y-%m-%d %H:%M} ({publication.timezone})"


def parse_time(text: str, publication: Publication) -> datetime:
    """An ISO 8601 date-time (`2024-01-22T08:00+08:00`); without an offset it is read in the publication's
    time zone. ScheduleError if it is not one."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ScheduleError(f"{text!r} is not a date-time such as 2024-01-22T08:00+08:00") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=publication.zone)


def _refuse_past(due_at: datetime, now: datetime, publication: Publication) -> None:
    if due_at <= now:
        raise ScheduleError(
            f"{format_local(due_at, publication)} is in the past (now {format_local(now, publication)})"
        )


def _pending(session: Executor, number: int) -> Row[Any] | None:
    return session.execute(
        select(scheduled_issues).where(SCHEDULED.issue_number == number, SCHEDULED.state == SCHEDULE_PENDING)
    ).first()


def _change_pending(session: Executor, number: int, **values: object) -> Row[Any]:
    """Change issue `number`'s pending schedule (the row as it was); ScheduleError if none is pending, or it fired
    while this was asked (the UPDATE matches only a row still pending, so a fired publish is never relabelled)."""
    row = _pending(session, number)
    changed = None
    if row is not None:
        changed = session.execute(
            update(scheduled_issues).where(SCHEDULED.id == row.id, SCHEDULED.state == SCHEDULE_PENDING).values(**values)
        )
    if row is None or changed is None or changed.rowcount != 1:  # type: ignore[attr-defined]
        raise ScheduleError(f"issue {number} has no schedule waiting to fire")
    return row


def schedule(
    session: Executor, settings: Settings, path: Path, due_at: datetime, now: datetime | None = None
) -> Scheduled:
    """Check the issue at `path` and keep it to be published at `due_at` (aware, in the future).

    ScheduleError if the time has passed, the issue is published already or has a schedule (move it);
    PublishError if the file would not publish.
    """
    from feedsvc import publishing  # the publish sequence (site, renderer) only where an issue is checked or fired

    now = now or utcnow()
    _refuse_past(due_at, now, settings.publication)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise publishing.PublishError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    issue, _ = publishing.check_with_folder(path, data, settings)
    if session.scalar(select(issues.c.number).where(issues.c.number == issue.number)) is not None:
        raise ScheduleError(f"issue {issue.number} is published already")
    if _pending(session, issue.number) is not None:
        raise ScheduleError(f"issue {issue.number} is scheduled already: move or cancel that schedule")
    session.execute(
        insert(scheduled_issues).values(
            issue_number=issue.number,
            source_name=path.name,
            source=data,
            due_at=due_at,
            state=SCHEDULE_PENDING,
            created_at=now,
            updated_at=now,
        )
    )
    return Scheduled(issue.number, path.name, due_at)


def move(
    session: Executor, settings: Settings, number: int, due_at: datetime, now: datetime | None = None
) -> Scheduled:
    """Give issue `number`'s pending schedule the time `due_at`; ScheduleError if none or the time has passed."""
    now = now or utcnow()
    _refuse_past(due_at, now, settings.publication)
    row = _change_pending(session, number, due_at=due_at, updated_at=now)
    return Scheduled(number, row.source_name, due_at)


def cancel(session: Executor, number: int, now: datetime | None = None) -> None:
    """Cancel issue `number`'s pending schedule; ScheduleError if there is none (it may have fired)."""
    _change_pending(session, number, state=SCHEDULE_CANCELLED, updated_at=now or utcnow())


def pending(session: Executor) -> list[Scheduled]:
    """Every schedule waiting to fire, soonest first."""
    rows = session.execute(
        select(scheduled_issues).where(SCHEDULED.state == SCHEDULE_PENDING).order_by(SCHEDULED.due_at)
    )
    return [Scheduled(r.issue_number, r.source_name, r.due_at) for r in rows]


def fire_due(database: Database, settings: Settings, owner: str, clock: Callable[[], datetime] = utcnow) -> list[int]:
    """Publish every schedule that is due (by `clock`), each in its own transaction; the issue numbers this
    call published. Safe to call from any number of workers at once."""
    with database.transaction(readonly=True) as connection:
        due = connection.scalars(
            select(SCHEDULED.id).where(SCHEDULED.state == SCHEDULE_PENDING, SCHEDULED.due_at <= clock())
        ).all()
    return [number for row_id in due if (number := _fire(database, settings, row_id, owner, clock)) is not None]


def _fire(database: Database, settings: Settings, row_id: int, owner: str, clock: Callable[[], datetime]) -> int | None:
    """Claim row `row_id` and publish it in one transaction; None if another worker had it, or it failed."""
    from feedsvc import publishing

    try:
        with database.session() as session:
            now = clock()
            claimed = session.execute(
                update(scheduled_issues)
                .where(SCHEDULED.id == row_id, SCHEDULED.state == SCHEDULE_PENDING, SCHEDULED.due_at <= now)
                .values(state=SCHEDULE_FIRED, fired_by=owner, fired_at=now, updated_at=now)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = session.execute(select(scheduled_issues).where(SCHEDULED.id == row_id)).one()
            with tempfile.TemporaryDirectory(prefix="feedsvc-scheduled-") as folder:
                path = Path(folder) / row.source_name
                path.write_bytes(row.source)
                publishing.publish_issue(session, settings, path)
            return row.issue_number
    except publishing.PublishError as exc:
        log.error("scheduled issue (row %s) failed to publish: %s", row_id, exc)
        with database.transaction() as connection:
            connection.execute(
                update(scheduled_issues)
                .where(SCHEDULED.id == row_id, SCHEDULED.state == SCHEDULE_PENDING)
                .values(state=SCHEDULE_FAILED, last_error=str(exc)[:2000], updated_at=clock())
            )
        return None
