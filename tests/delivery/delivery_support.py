"""Helpers for delivery tests: subscribers written in bulk, outbox rows counted by state."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from feedsvc.db.engine import Database, utcnow
from feedsvc.db.models import ACTIVE, OutboxMessage, Subscriber
from feedsvc.subscribers import subscriptions


def add_subscribers(session: Session, people: Iterable[tuple[str, str, Sequence[str]]]) -> dict[str, int]:
    """Write subscribers (email, status, section slugs) directly; returns email → id."""
    now = utcnow()
    people = list(people)
    session.execute(
        insert(Subscriber),
        [
            {
                "email": email,
                "status": status,
                "source": "test",
                "lang": "zh-CN",
                "token_version": 1,
                "bounce_count": 0,
                "created_at": now,
                "updated_at": now,
                "confirmed_at": now if status == ACTIVE else None,
            }
            for email, status, _ in people
        ],
    )
    ids = {str(email): int(id_) for email, id_ in session.execute(select(Subscriber.email, Subscriber.id))}
    subscriptions.set_sections(session, {ids[email]: slugs for email, _, slugs in people})
    return {email: ids[email] for email, _, _ in people}


def subscribe_many(db: Database, count: int, slugs: Sequence[str], prefix: str = "reader") -> dict[str, int]:
    """`count` active subscribers with `slugs`."""
    with db.session() as session:
        return add_subscribers(session, ((f"{prefix}{i}@example.org", ACTIVE, slugs) for i in range(count)))


def by_state(db: Database) -> dict[str, int]:
    """Outbox rows by state."""
    with db.session(readonly=True) as session:
        rows = session.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state))
        return {str(state): int(count) for state, count in rows}


def outbox_index_sql(db: Database) -> dict[str, str]:
    """The outbox's indexes as the database states them (name → CREATE INDEX), to check their predicates."""
    if db.dialect == "sqlite":
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' AND sql IS NOT NULL"
    else:
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'outbox' AND schemaname = current_schema"
    with db.engine.connect() as connection:
        return {str(name): str(sql) for name, sql in connection.execute(text(query))}
