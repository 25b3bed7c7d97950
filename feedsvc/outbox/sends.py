"""The ledger of an issue's send: publish (record + enqueue), its counts, and pause, resume and cancel. No Flask.

Publishing records the issue (its Markdown as published, so a worker on any machine can render it) and,
in the same transaction, writes one outbox row per active subscriber whose chosen sections this issue
has, with the *variant* (the slugs they get, sorted, joined by ';'), named from the reader's
``sections_key``. That is one ``INSERT … SELECT`` from subscribers: the database does the work, in one
statement, whatever the number of subscribers; a second publish of the number enqueues nothing. Rows
are written before any is sent: a ledger, not a checkpoint, so a crash can never make the send forget who is left.

A send is ``running`` (workers claim its rows), ``paused`` (workers leave its rows alone and hand back
those they hold but have not started) or ``stopped`` (cancelled: its queued rows become ``cancelled``;
rows in flight finish), and shows as ``finished`` when it runs with nothing left. Resuming a stopped
send queues its cancelled rows again: they were never sent.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select, text, update

from feedsvc.db.engine import insert_for, utcnow
from feedsvc.db.tables import (
    ACTIVE,
    CANCELLED,
    FAILED,
    KIND_ISSUE,
    PRIORITY_BULK,
    QUEUED,
    SEND_PAUSED,
    SEND_RUNNING,
    SEND_STOPPED,
    SENDING,
    SENT,
    SKIPPED,
    UTCDateTime,
    issues,
    outbox,
    section_key,
    subscribers,
)

if TYPE_CHECKING:
    from feedsvc.content.model import Issue
    from feedsvc.db.engine import Executor

# Send states of an issue: running, paused, stopped (cancelled by the publisher), and finished.
RUNNING, PAUSED, STOPPED = SEND_RUNNING, SEND_PAUSED, SEND_STOPPED
FINISHED = "finished"  # shown, never stored: a running send with nothing left


@dataclass(frozen=True)
class PublishResult:
    """What `publish` did: rows enqueued, active subscribers left out (none of their sections), and
    whether the issue had been published before (then nothing is enqueued)."""

    number: int
    enqueued: int
    skipped_no_sections: int
    already_published: bool


@dataclass(frozen=True)
class IssueCounts:
    """Outbox rows of one issue by state."""

    number: int
    queued: int = 0
    sending: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0
    state: str = ""

    def to_json(self) -> dict[str, int]:
        """The documented `feedsvc status --json` object."""
        return {
            "number": self.number,
            "queued": self.queued,
            "sending": self.sending,
            "sent": self.sent,
            "failed": self.failed,
            "skipped": self.skipped,
        }

    @property
    def remaining(self) -> int:
        """Rows still to go: queued or being sent."""
        return self.queued + self.sending

    @property
    def progress(self) -> str:
        """The send as a publisher reads it: running, paused, stopped, or finished (nothing left to send)."""
        return FINISHED if self.state == RUNNING and self.remaining == 0 else self.state


class SendError(Exception):
    """A send cannot be changed as asked (unknown issue, or the state does not allow it)."""


# ------------------------------------------------------------------------------------------ variants


def variant_of(chosen_key: str, slugs: Iterable[str]) -> str:
    """The variant a reader whose `sections_key` is `chosen_key` gets of an issue with `slugs` ('' for none)."""
    return section_key(set(chosen_key.split(";")) & set(slugs)) if chosen_key else ""


def _section_sets(session: Executor) -> dict[str, int]:
    """Active subscribers per chosen section set (`subscribers.c.sections_key`; '' for none chosen)."""
    chosen = subscribers.c.sections_key
    rows = session.execute(select(chosen, func.count()).where(subscribers.c.status == ACTIVE).group_by(chosen))
    return {str(key): int(count) for key, count in rows}


def plan(session: Executor, slugs: Sequence[str]) -> tuple[dict[str, int], int]:
    """For a dry run: active recipients per variant, and active subscribers with none of `slugs`."""
    per_variant: dict[str, int] = {}
    skipped = 0
    for key, count in _section_sets(session).items():
        variant = variant_of(key, slugs)
        if variant:
            per_variant[variant] = per_variant.get(variant, 0) + count
        else:
            skipped += count
    return dict(sorted(per_variant.items(), key=lambda item: (-item[1], item[0]))), skipped


# ------------------------------------------------------------------------------------------- publish


def publish(
    session: Executor, issue: Issue, source: str, *, source_name: str = "", now: datetime | None = None
) -> PublishResult:
    """Record `issue` (its Markdown `source` as published) and enqueue its mail, in the caller's transaction.

    A second publish of the same number enqueues nothing: subscribers who joined since do not get an old
    issue by surprise, and the unique (issue, subscriber) constraint would refuse doubles anyway.
    """
    from feedsvc.mail.newsletter import (
        subject_for,  # here, so that the worker, which imports sends, never loads premailer
    )

    now = now or utcnow()
    slugs = issue.slugs
    created = session.execute(
        insert_for(session, issues)
        .values(
            number=issue.number,
            issue_date=issue.date,
            title=issue.title[:500],
            subject=subject_for(issue)[:998],
            sections=";".join(slugs),
            source_name=source_name[:500],
            source=source,
            send_state=RUNNING,
            enqueued=0,
            skipped_no_sections=0,
            published_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[issues.c.number])
        .returning(issues.c.number)
    ).scalar_one_or_none()
    if created is None:
        return PublishResult(issue.number, 0, 0, already_published=True)
    sets = _section_sets(session)
    enqueued = _enqueue(session, issue.number, slugs, sets, now)
    # counted in the same snapshot as `sets` (readers confirmed in between are enqueued, not counted here)
    skipped = sum(count for key, count in sets.items() if not variant_of(key, slugs))
    session.execute(
        update(issues).where(issues.c.number == issue.number).values(enqueued=enqueued, skipped_no_sections=skipped)
    )
    return PublishResult(issue.number, enqueued, skipped, already_published=False)


def _enqueue(session: Executor, number: int, slugs: Sequence[str], sets: dict[str, int], now: datetime) -> int:
    """One outbox row per active subscriber with at least one of `slugs`: a single INSERT … SELECT from subscribers.

    `sets` (the chosen section sets in use) turns each reader's `sections_key` into their variant: the key
    itself when the issue has all of it (one CASE branch per set it has only part of); readers of a set it
    has nothing of, or of a set not in `sets` (chosen since they were counted), are left out. Only `publish`
    calls this, in the transaction that has just recorded the issue, so no row of it exists yet; the unique
    (issue, subscriber) constraint refuses doubles all the same. Returns how many were written.
    """
    variants = {key: variant_of(key, slugs) for key in sorted(sets)}
    included = [key for key, variant in variants.items() if variant]
    if not included:
        return 0
    narrowed = {key: variant for key, variant in variants.items() if variant and variant != key}
    chosen = subscribers.c.sections_key
    source = select(
        literal(KIND_ISSUE),
        literal(PRIORITY_BULK),
        subscribers.c.id,
        literal(number),
        case(narrowed, value=chosen, else_=chosen) if narrowed else chosen,
        subscribers.c.email,
        literal(QUEUED),
        literal(0),
        literal(now, UTCDateTime()),
        literal(now, UTCDateTime()),
        literal(now, UTCDateTime()),
    ).where(subscribers.c.status == ACTIVE, chosen.in_(included))
    columns = [
        "kind",
        "priority",
        "subscriber_id",
        "issue_number",
        "sections",
        "recipient",
        "state",
        "attempts",
        "next_attempt_at",
        "created_at",
        "updated_at",
    ]
    statement = (
        insert_for(session, outbox)
        .from_select(columns, source)
        .execution_options(preserve_rowcount=True)  # SQLAlchemy leaves an INSERT's rowcount at -1 otherwise
    )
    return max(session.execute(statement).rowcount, 0)


def rows_of(
    session: Executor, subscriber_ids: Collection[int], numbers: Sequence[int] | None = None
) -> ColumnElement[bool]:
    """WHERE for every outbox row of these subscribers, through the unique (issue_number, subscriber_id) index.

    Issue rows are found one probe per issue the outbox holds (`numbers`, read here when not given:
    `issues_in_outbox`), transactional rows under issue_number NULL.
    """
    numbers = issues_in_outbox(session) if numbers is None else numbers
    ids = list(subscriber_ids)
    transactional = and_(outbox.c.issue_number.is_(None), outbox.c.subscriber_id.in_(ids))
    if not numbers:
        return transactional
    return or_(and_(outbox.c.issue_number.in_(list(numbers)), outbox.c.subscriber_id.in_(ids)), transactional)


def issues_in_outbox(session: Executor) -> list[int]:
    """The distinct issue numbers the outbox holds rows of."""
    return list(session.scalars(ISSUES_IN_OUTBOX))


#: the distinct issue numbers in the outbox, one step along the unique index per issue (a loose index scan).
ISSUES_IN_OUTBOX = text(
    "WITH RECURSIVE numbers(n) AS ("
    " SELECT (SELECT issue_number FROM outbox WHERE issue_number IS NOT NULL ORDER BY issue_number LIMIT 1)"
    " UNION ALL SELECT (SELECT issue_number FROM outbox WHERE issue_number > numbers.n ORDER BY issue_number LIMIT 1)"
    " FROM numbers WHERE numbers.n IS NOT NULL"
    ") SELECT n FROM numbers WHERE n IS NOT NULL"
)


# -------------------------------------------------------------------------------------------- status


def counts(session: Executor, numbers: Sequence[int] | None = None) -> list[IssueCounts]:
    """Outbox rows per published issue and state, newest issue first (every published issue is listed)."""
    query = (
        select(outbox.c.issue_number, outbox.c.state, func.count())
        .where(outbox.c.kind == KIND_ISSUE)
        .group_by(outbox.c.issue_number, outbox.c.state)
    )
    states = select(issues.c.number, issues.c.send_state)
    if numbers:
        query = query.where(outbox.c.issue_number.in_(list(numbers)))
        states = states.where(issues.c.number.in_(list(numbers)))
    state_of: dict[int, str] = {int(n): str(state) for n, state in session.execute(states)}
    by_issue: dict[int, dict[str, int]] = {n: {} for n in state_of}
    for number, state, count in session.execute(query):
        by_issue.setdefault(int(number), {})[str(state)] = int(count)
    return [
        IssueCounts(
            number=number,
            queued=values.get(QUEUED, 0),
            sending=values.get(SENDING, 0),
            sent=values.get(SENT, 0),
            failed=values.get(FAILED, 0),
            skipped=values.get(SKIPPED, 0),
            cancelled=values.get(CANCELLED, 0),
            state=state_of.get(number, ""),
        )
        for number, values in sorted(by_issue.items(), reverse=True)
    ]


# ----------------------------------------------------------------------------- pause, resume, cancel


def _send_state(session: Executor, number: int) -> str:
    """The send state of issue `number`, its row locked for the change that follows."""
    found = session.scalar(select(issues.c.send_state).where(issues.c.number == number).with_for_update())
    if found is None:
        raise SendError(f"issue {number} has not been published")
    return str(found)


def _set_send_state(session: Executor, number: int, state: str, now: datetime) -> None:
    session.execute(update(issues).where(issues.c.number == number).values(send_state=state, updated_at=now))


def pause(session: Executor, number: int, *, now: datetime | None = None) -> None:
    """Stop claiming rows of this issue; workers hand back rows they hold but have not started."""
    if _send_state(session, number) == STOPPED:
        raise SendError(f"the send of issue {number} was cancelled; resume it to send the rest")
    _set_send_state(session, number, PAUSED, now or utcnow())


def resume(session: Executor, number: int, *, now: datetime | None = None) -> int:
    """Let workers claim this issue's rows again; a cancelled send queues its cancelled rows again (how many)."""
    now = now or utcnow()
    requeued = 0
    if _send_state(session, number) == STOPPED:
        requeued = (
            session.execute(
                update(outbox)
                .where(and_(outbox.c.issue_number == number, outbox.c.state == CANCELLED))
                .values(state=QUEUED, next_attempt_at=now, updated_at=now)
            ).rowcount
            or 0
        )
    _set_send_state(session, number, RUNNING, now)
    return requeued


def cancel(session: Executor, number: int, *, now: datetime | None = None) -> int:
    """Cancel the rest of this issue's send: its queued rows become cancelled (how many). Rows in flight finish."""
    now = now or utcnow()
    _send_state(session, number)
    _set_send_state(session, number, STOPPED, now)
    return cancel_queued(session, now, number)


def cancel_queued(session: Executor, now: datetime, number: int | None = None) -> int:
    """Mark queued rows of issue `number` (or of every cancelled send) cancelled; how many."""
    if number is not None:
        numbers = [number]
    else:
        numbers = list(session.scalars(select(issues.c.number).where(issues.c.send_state == STOPPED)))
        if not numbers:
            return 0
    result = session.execute(
        update(outbox)
        .where(and_(outbox.c.issue_number.in_(numbers), outbox.c.state == QUEUED, outbox.c.kind == KIND_ISSUE))
        .values(state=CANCELLED, updated_at=now)
    )
    return max(result.rowcount, 0)


def halted_issues(session: Executor) -> dict[int, str]:
    """Issues whose send is paused or cancelled: number → state."""
    rows = session.execute(select(issues.c.number, issues.c.send_state).where(issues.c.send_state != RUNNING))
    return {int(n): str(s) for n, s in rows}


def issue_source(session: Executor, number: int) -> tuple[str, str] | None:
    """The Markdown of a published issue as published, and its file name."""
    row = session.execute(select(issues.c.source, issues.c.source_name).where(issues.c.number == number)).first()
    return (row[0], row[1]) if row else None
