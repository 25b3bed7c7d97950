"""Migration 0012 rebuilds the outbox table on SQLite (to drop a foreign key): the bounces that point at outbox
rows keep their links both ways. PostgreSQL alters the table in place, so it has nothing to lose here."""

from __future__ import annotations

from pathlib import Path

from feedsvc.db.engine import Database, downgrade

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
