"""Migrations 0009 and 0011 down to 0008 and up again, on SQLite and PostgreSQL, with rows in the tables they
touch and in the tables that point at those: nothing is lost either way."""

from __future__ import annotations

import sqlalchemy as sa
from bounce_rows import readers, sent_row

from feedsvc.db.engine import Database, current_revision, downgrade, head_revision, upgrade
from feedsvc.staff import accounts

COUNTED = ("subscribers", "subscriber_sections", "subscriber_events", "outbox", "staff", "audit_log")


def _counts(db: Database) -> dict[str, int]:
    with db.engine.connect() as connection:
        return {t: connection.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in COUNTED}  # noqa: S608


def test_0009_and_0011_go_down_to_0008_and_up_again_keeping_every_row(db: Database) -> None:
    assert current_revision(db.engine) == head_revision()
    readers(db, 2)
    sent_row(db, "reader0@example.org")
    with db.session() as session:
        accounts.add(session, "owner@example.org", "owner", "test")
    with db.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO subscriber_events (subscriber_id, kind, detail, at) "
                "SELECT id, 'x', '', created_at FROM subscribers"
            )
        )
    before = _counts(db)
    assert all(before.values()), before
    try:
        downgrade(db.engine, "0008")
        assert _counts(db) == before
        upgrade(db.engine, "head")
        assert _counts(db) == before
    finally:
        upgrade(db.engine, "head")
