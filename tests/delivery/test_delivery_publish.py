"""Publishing: record the issue, enqueue one row per interested active subscriber, set-based and idempotent."""

from __future__ import annotations

import pytest
from delivery_support import add_subscribers
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from feedsvc.content.model import Issue
from feedsvc.db.engine import Database, utcnow
from feedsvc.db.models import ACTIVE, BOUNCED, PENDING, UNSUBSCRIBED, OutboxMessage, section_key
from feedsvc.outbox import sends


def test_publish_enqueues_per_subscriber_variant_and_counts_the_rest(db: Database, seed_issue: Issue) -> None:
    assert set(seed_issue.slugs) >= {"industry", "research"}
    missing = [
        s for s in ("industry", "content", "technology", "capital", "people", "research") if s not in seed_issue.slugs
    ]
    with db.session() as session:
        ids = add_subscribers(
            session,
            [
                ("all@example.org", ACTIVE, ["industry", "content", "technology", "capital", "people", "research"]),
                ("two@example.org", ACTIVE, ["research", "industry"]),
                ("pending@example.org", PENDING, ["industry"]),
                ("left@example.org", UNSUBSCRIBED, ["industry"]),
                ("bounced@example.org", BOUNCED, ["industry"]),
                ("none@example.org", ACTIVE, missing),  # nothing of theirs in this issue (maybe no sections at all)
            ],
        )
    with db.session() as session:
        result = sends.publish(session, seed_issue, "# source", source_name="398.md")
    assert (result.enqueued, result.skipped_no_sections, result.already_published) == (2, 1, False)
    with db.session() as session:
        rows = {
            r.subscriber_id: r
            for r in session.scalars(select(OutboxMessage).where(OutboxMessage.issue_number == seed_issue.number))
        }
    assert set(rows) == {ids["all@example.org"], ids["two@example.org"]}
    assert rows[ids["two@example.org"]].sections == "industry;research"
    assert rows[ids["all@example.org"]].sections == section_key(seed_issue.slugs)
    row = rows[ids["two@example.org"]]
    assert (row.kind, row.state, row.recipient, row.attempts) == ("issue", "queued", "two@example.org", 0)


def test_publishing_again_enqueues_nothing_new(db: Database, seed_issue: Issue) -> None:
    with db.session() as session:
        add_subscribers(session, [(f"r{i}@example.org", ACTIVE, ["industry"]) for i in range(5)])
    with db.session() as session:
        first = sends.publish(session, seed_issue, "x")
    with db.session() as session:
        late = add_subscribers(session, [("late@example.org", ACTIVE, ["industry"])])
    with db.session() as session:
        again = sends.publish(session, seed_issue, "x")
    assert first.enqueued == 5
    assert again.already_published and again.enqueued == 0
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 5
        row = session.scalars(select(OutboxMessage).limit(1)).one()
        double = {c: getattr(row, c) for c in ("kind", "priority", "issue_number", "sections", "recipient", "state")}
    with pytest.raises(IntegrityError), db.session() as session:  # the unique (issue, subscriber) constraint
        session.execute(insert(OutboxMessage), [{**double, "subscriber_id": row.subscriber_id, "attempts": 0,
                        "next_attempt_at": utcnow(), "created_at": utcnow(), "updated_at": utcnow()}])  # fmt: skip
    with db.session(readonly=True) as session:  # the late reader got no row of the old issue
        assert session.scalar(select(func.count()).where(OutboxMessage.subscriber_id == late["late@example.org"])) == 0


def test_dry_run_plan_counts_recipients_per_section_set(db: Database, seed_issue: Issue) -> None:
    with db.session() as session:
        add_subscribers(
            session,
            [(f"a{i}@example.org", ACTIVE, ["industry"]) for i in range(3)]
            + [(f"b{i}@example.org", ACTIVE, ["research", "industry"]) for i in range(2)]
            + [("c@example.org", UNSUBSCRIBED, ["industry"])],
        )
        per_variant, skipped = sends.plan(session, seed_issue.slugs)
    assert per_variant == {"industry": 3, "industry;research": 2}
    assert skipped == 0
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0  # a plan writes nothing


def test_enqueue_is_one_statement_for_many_subscribers(db: Database, seed_issue: Issue) -> None:
    with db.session() as session:
        add_subscribers(session, [(f"m{i}@example.org", ACTIVE, ["industry", "research"]) for i in range(3000)])
    statements: list[str] = []
    from sqlalchemy import event

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with db.session() as session:
            result = sends.publish(session, seed_issue, "x")
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert result.enqueued == 3000
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO OUTBOX")]
    assert len(inserts) == 1 and "SELECT" in inserts[0].upper()


def test_status_counts_and_pause_resume_cancel(db: Database, seed_issue: Issue) -> None:
    with db.session() as session:
        add_subscribers(session, [(f"s{i}@example.org", ACTIVE, ["industry"]) for i in range(4)])
        sends.publish(session, seed_issue, "x")
    with db.session() as session:
        [c] = sends.counts(session)
    assert c.to_json() == {"number": seed_issue.number, "queued": 4, "sending": 0, "sent": 0, "failed": 0, "skipped": 0}
    with db.session() as session:
        sends.pause(session, seed_issue.number)
        assert sends.halted_issues(session) == {seed_issue.number: "paused"}
    with db.session() as session:
        assert sends.cancel(session, seed_issue.number) == 4
        with pytest.raises(sends.SendError):
            sends.pause(session, seed_issue.number)
    with db.session() as session:
        [c] = sends.counts(session)
        assert (c.queued, c.cancelled, c.state) == (0, 4, "stopped")
        assert sends.resume(session, seed_issue.number) == 4
    with db.session() as session:
        [c] = sends.counts(session)
        assert (c.queued, c.cancelled, c.state) == (4, 0, "running")
        assert sends.halted_issues(session) == {}
    with db.session() as session, pytest.raises(sends.SendError):
        sends.pause(session, 9999)


def test_a_running_send_with_nothing_left_reads_as_finished() -> None:
    assert sends.IssueCounts(1, sent=3, failed=1, state=sends.RUNNING).progress == sends.FINISHED
    assert sends.IssueCounts(1, queued=1, sent=2, state=sends.RUNNING).progress == sends.RUNNING
    assert sends.IssueCounts(1, sending=1, state=sends.RUNNING).progress == sends.RUNNING
    assert sends.IssueCounts(1, cancelled=3, state=sends.STOPPED).progress == sends.STOPPED
