"""The bounces' migrations keep every row, on SQLite and PostgreSQL: 0009 and 0011 down to 0008 and up again with
rows in the tables they touch and in those that point at them; and 0012, which rebuilds the outbox table on SQLite
(to drop a foreign key), keeps the bounces' links to outbox rows both ways."""

from __future__ import annotations

from pathlib import Path

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


ROWS = [
    "INSERT INTO outbox (id, kind, priority, recipient, subject, state, attempts, next_attempt_at, created_at,"
    " updated_at) VALUES (7, 'issue', 0, 'a@example.org', 's', 'sent', 1, '2026-01-01', '2026-01-01', '2026-01-01')",
    "INSERT INTO bounce_reports (id, received_at, source, report_type, outcome, matched, unmatched, raw)"
    " VALUES (1, '2026-01-01', 'test', 'dsn', 'recorded', 1, 0, x'00')",
    "INSERT INTO bounces (id, report_id, outbox_id, kind, status, diagnostic, source, counted, effect, at)"
    " VALUES (1, 1, 7, 'hard', '5.1.1', 'user unknown', 'test', 1, 'scored', '2026-01-01')",
]


def _links(database: Database) -> list[tuple[int, int | None]]:
    with database.engine.connect() as connection:
        return [tuple(r) for r in connection.exec_driver_sql("SELECT id, outbox_id FROM bounces")]


def test_rebuilding_the_outbox_on_sqlite_keeps_the_bounces_links(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'feedsvc.db'}")
    try:
        database.upgrade("0011")
        with database.engine.begin() as connection:
            for statement in ROWS:
                connection.exec_driver_sql(statement)
        database.upgrade("0012")
        assert _links(database) == [(1, 7)]
        downgrade(database.engine, "0011")
        assert _links(database) == [(1, 7)]
    finally:
        database.dispose()
