"""A reader's sections_key names their variant (migration 0013); a subscriber's rows are found by the unique index."""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa
from delivery_support import add_subscribers, outbox_index_sql
from sqlalchemy import select
from sqlalchemy.orm import Session

from feedsvc.config import Settings
from feedsvc.content.model import Issue
from feedsvc.db.engine import Database, downgrade, upgrade, utcnow
from feedsvc.db.models import ACTIVE, CANCELLED, QUEUED, OutboxMessage, Subscriber, SubscriberSection, section_key
from feedsvc.outbox import sends
from feedsvc.outbox.worker import SendWorker
from feedsvc.subscribers import importer, privacy, subscriptions

UNIQUE = "uq_outbox_issue_number_subscriber_id"


def _keys(session: Session) -> dict[str, str]:
    return {str(e): str(k) for e, k in session.execute(select(Subscriber.email, Subscriber.sections_key))}


def _rows_key(session: Session, subscriber_id: int) -> str:
    where = SubscriberSection.subscriber_id == subscriber_id
    return section_key(session.scalars(select(SubscriberSection.section).where(where)))


def test_an_issue_without_some_sections_narrows_each_readers_variant(db: Database, seed_issue: Issue) -> None:
    issue = seed_issue.only(["industry", "research"])
    with db.session() as session:
        ids = add_subscribers(
            session,
            [
                ("all@example.org", ACTIVE, list(seed_issue.slugs)),
                ("content@example.org", ACTIVE, ["content"]),  # nothing of theirs in this issue
                ("gone@example.org", ACTIVE, ["research", "retired-section"]),  # a slug no longer published
                ("one@example.org", ACTIVE, ["industry"]),
            ],
        )
    with db.session(readonly=True) as session:
        planned = sends.plan(session, issue.slugs)
    with db.session() as session:
        result = sends.publish(session, issue, "x")
    with db.session(readonly=True) as session:
        variants = {r.subscriber_id: r.sections for r in session.scalars(select(OutboxMessage))}
    assert variants == {
        ids["all@example.org"]: "industry;research",
        ids["gone@example.org"]: "research",
        ids["one@example.org"]: "industry",
    }
    assert (result.enqueued, result.skipped_no_sections) == (3, 1)
    assert planned == ({"industry": 1, "industry;research": 1, "research": 1}, 1)


def test_every_way_of_choosing_sections_keeps_the_key(db: Database, settings: Settings) -> None:
    publication = settings.publication
    with db.session() as s:  # a sign-up, then a change of sections
        subscriptions.subscribe(s, settings, "reader@example.org", ["research", "industry"])
        subscriber = s.scalars(select(Subscriber)).one()
        assert _keys(s) == {"reader@example.org": "industry;research"} and _rows_key(s, subscriber.id) == (
            "industry;research"
        )
        assert subscriptions.change_sections(s, subscriber, ["content"], publication)
    data = b"email,sections\nnew@example.org,technology;capital\nreader@example.org,people\n"
    with db.session() as s:  # an import: a new reader, and a pending one activated with the file's sections
        result = importer.import_rows(s, settings, importer.read(data, settings), consented=True)
        assert result.activated == 2, result
    with db.session(readonly=True) as s:
        ids = {str(e): int(i) for e, i in s.execute(select(Subscriber.email, Subscriber.id))}
        keys = _keys(s)
        assert keys == {"reader@example.org": "people", "new@example.org": "capital;technology"}
        assert keys == {email: _rows_key(s, sid) for email, sid in ids.items()}


def test_a_subscribers_rows_are_cancelled_exported_and_erased_across_issues(
    db: Database, settings: Settings, seed_issue: Issue
) -> None:
    with db.session() as s:
        ids = add_subscribers(s, [("a@example.org", ACTIVE, ["industry"]), ("b@example.org", ACTIVE, ["industry"])])
    with db.session() as s:
        sends.publish(s, seed_issue, "x")
        sends.publish(s, replace(seed_issue, number=399), "x")
        subscriber = s.get(Subscriber, ids["a@example.org"])
        assert subscriber is not None
        subscriptions.request_manage_link(s, settings, "a@example.org")  # a transactional row (issue_number NULL)
    with db.session() as s:
        subscriber = s.get(Subscriber, ids["a@example.org"])
        assert subscriber is not None and subscriptions.unsubscribe(s, subscriber)
    with db.session(readonly=True) as s:
        states = {(r.subscriber_id, r.issue_number, r.state) for r in s.scalars(select(OutboxMessage))}
        exported = privacy.export(s, s.get(Subscriber, ids["a@example.org"]))  # type: ignore[arg-type]
    assert states == {
        (ids["a@example.org"], seed_issue.number, CANCELLED),
        (ids["a@example.org"], 399, CANCELLED),
        (ids["a@example.org"], None, CANCELLED),
        (ids["b@example.org"], seed_issue.number, QUEUED),
        (ids["b@example.org"], 399, QUEUED),
    }
    assert len(exported["mail"]) == 3
    with db.session() as s:
        assert privacy.delete_subscribers(s, Subscriber.id == ids["a@example.org"]) == 1
    with db.session(readonly=True) as s:
        owners = sorted(r.subscriber_id for r in s.scalars(select(OutboxMessage)))
    assert owners == [ids["b@example.org"]] * 2


def test_a_subscribers_rows_are_looked_up_through_the_unique_index(db: Database, seed_issue: Issue) -> None:
    with db.session() as s:
        add_subscribers(s, [(f"r{i}@example.org", ACTIVE, ["industry"]) for i in range(50)])
    with db.session() as s:
        sends.publish(s, seed_issue, "x")
    with db.session() as s:
        query = select(OutboxMessage.id).where(sends.rows_of(s, [7]))  # as export and erasure ask
        compiled = query.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True})
        if db.dialect == "postgresql":
            s.execute(sa.text("SET LOCAL enable_seqscan = off"))  # a table this small is read whole otherwise
            plan = "\n".join(str(r[0]) for r in s.execute(sa.text(f"EXPLAIN {compiled}")))
        else:
            plan = "\n".join(str(r[-1]) for r in s.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}")))
    # SQLite names the unique constraint's index sqlite_autoindex_outbox_1: its columns tell it.
    unique = UNIQUE if db.dialect == "postgresql" else "(issue_number=? AND subscriber_id=?)"
    assert unique in plan and "Seq Scan" not in plan and "SCAN outbox" not in plan, plan


def test_migration_0013_fills_every_key_and_keeps_only_the_indexes_a_send_needs(db: Database) -> None:
    downgrade(db.engine, "0012")
    now = utcnow()
    with db.engine.begin() as c:
        # "a-c" and "ab": a collation that skips '-' orders them the other way round from the code's sorted()
        for n, slugs in enumerate([["research", "industry"], [], ["content"], ["ab", "a-c"]]):
            sid = c.execute(
                sa.text(
                    "INSERT INTO subscribers (email, status, source, lang, token_version, bounce_count, created_at, "
                    "updated_at) VALUES (:e, 'active', 'test', 'zh-CN', 1, 0, :now, :now) RETURNING id"
                ),
                {"e": f"m{n}@example.org", "now": now},
            ).scalar_one()
            for slug in slugs:
                c.execute(sa.text("INSERT INTO subscriber_sections VALUES (:i, :s)"), {"i": sid, "s": slug})
    upgrade(db.engine)
    with db.session(readonly=True) as s:
        assert _keys(s) == {
            "m0@example.org": "industry;research",
            "m1@example.org": "",
            "m2@example.org": "content",
            "m3@example.org": section_key(["ab", "a-c"]),
        }
    indexes = outbox_index_sql(db)
    assert "ix_outbox_subscriber_id_state" not in indexes
    assert "message_id IS NOT NULL" in indexes["ix_outbox_message_id"], indexes
    downgrade(db.engine, "0012")
    before = outbox_index_sql(db)
    assert "ix_outbox_subscriber_id_state" in before and "WHERE" not in before["ix_outbox_message_id"]
    upgrade(db.engine)


def test_a_row_whose_subscriber_was_erased_meanwhile_keeps_no_address(db: Database, settings: Settings) -> None:
    # No foreign key since 0012: a publish racing an erasure can leave a row of a subscriber now gone.
    now = utcnow()
    with db.session() as s:
        row = {"kind": "issue", "issue_number": 398, "sections": "industry", "recipient": "gone@example.org"}
        s.add(OutboxMessage(**row, subscriber_id=987654, next_attempt_at=now, created_at=now, updated_at=now))
    SendWorker(db, settings, concurrency=1, poll_interval=0).run(until_idle=True)
    with db.session(readonly=True) as s:
        row = s.scalars(select(OutboxMessage)).one()
    assert (row.state, row.recipient, row.last_error) == ("skipped", "", "subscriber erased")
