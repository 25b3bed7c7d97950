"""Migration 0004: send states get words of their own, and existing rows are converted both ways."""

from __future__ import annotations

import sqlalchemy as sa

from feedsvc.db.engine import Database, current_revision, downgrade, head_revision, upgrade

ROW = (
    "INSERT INTO issues (number, issue_date, title, subject, sections, source_name, source, send_state, "
    "enqueued, skipped_no_sections, published_at, updated_at) VALUES "
    "(:n, '2024-01-22', 't', 's', 'industry', 'f.md', '# t', :state, 0, 0, :at, :at)"
)


def _states(db: Database) -> dict[int, str]:
    with db.engine.connect() as connection:
        return dict(connection.execute(sa.text("SELECT number, send_state FROM issues ORDER BY number")).all())


def _insert(db: Database, states: dict[int, str]) -> None:
    with db.engine.begin() as connection:
        for number, state in states.items():
            connection.execute(sa.text(ROW), {"n": number, "state": state, "at": "2024-01-22 08:00:00+00:00"})


def _refused(db: Database, state: str) -> bool:
    try:
        _insert(db, {99: state})
    except sa.exc.IntegrityError:
        return True
    with db.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM issues WHERE number = 99"))
    return False


def test_send_states_are_converted_both_ways(db: Database) -> None:
    assert current_revision(db.engine) == head_revision()
    try:
        downgrade(db.engine, "0003")
        _insert(db, {1: "sending", 2: "paused", 3: "cancelled"})
        upgrade(db.engine, "0004")
        assert _states(db) == {1: "running", 2: "paused", 3: "stopped"}
        assert _refused(db, "sending") and _refused(db, "cancelled") and not _refused(db, "running")
        downgrade(db.engine, "0003")
        assert _states(db) == {1: "sending", 2: "paused", 3: "cancelled"}
        assert _refused(db, "stopped") and not _refused(db, "cancelled")
    finally:
        upgrade(db.engine, "head")
        with db.engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM issues"))
