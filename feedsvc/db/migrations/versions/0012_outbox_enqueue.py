"""outbox: no foreign key to subscribers, no (issue_number, state) index (issue 13, enqueueing a million rows)

Enqueueing an issue writes one outbox row per reader in one INSERT … SELECT. Each row's foreign-key check
(a per-row trigger and row lock on PostgreSQL) and each index cost that statement row by row. The key's
only duty, deleting a subscriber's rows with the subscriber, is done by the code that deletes subscribers
(feedsvc.subscribers.privacy.delete_subscribers); a row whose subscriber is gone is skipped at claim
anyway. Lookups by issue use the unique (issue_number, subscriber_id) index. The claim and lease indexes
stay partial (queued rows, rows being sent), so they hold only the rows workers look for.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 23:40:00
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

FOREIGN_KEY = "fk_outbox_subscriber_id_subscribers"
PARTIAL = {  # SQLite rebuilds the table to drop a foreign key; these are made again exactly as they were
    "ix_outbox_claim": (["priority", "next_attempt_at", "id"], "state = 'queued'"),
    "ix_outbox_lease": (["lease_expires_at"], "state = 'sending'"),
}


def upgrade() -> None:
    op.drop_index("ix_outbox_issue_number_state", table_name="outbox")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(FOREIGN_KEY, "outbox", type_="foreignkey")
        return
    for name in PARTIAL:
        op.drop_index(name, table_name="outbox")
    op.drop_index("ix_outbox_subscriber_id_state", table_name="outbox")
    with _bounce_links_kept(), op.batch_alter_table("outbox", recreate="always") as batch_op:
        batch_op.drop_constraint(FOREIGN_KEY, type_="foreignkey")
    _indexes()


@contextmanager
def _bounce_links_kept() -> Iterator[None]:
    """Rebuilding outbox on SQLite drops the old table, which would set bounces.outbox_id (ON DELETE SET NULL)
    to NULL: keep the links aside and put them back (PRAGMA foreign_keys cannot change inside the migration's
    transaction)."""
    op.execute("CREATE TEMPORARY TABLE bounce_links AS SELECT id, outbox_id FROM bounces WHERE outbox_id IS NOT NULL")
    yield
    op.execute(
        "UPDATE bounces SET outbox_id = (SELECT outbox_id FROM bounce_links WHERE bounce_links.id = bounces.id) "
        "WHERE id IN (SELECT id FROM bounce_links)"
    )
    op.execute("DROP TABLE bounce_links")


def _indexes() -> None:
    for name, (columns, where) in PARTIAL.items():
        op.create_index(name, "outbox", columns, sqlite_where=sa.text(where), postgresql_where=sa.text(where))
    op.create_index("ix_outbox_subscriber_id_state", "outbox", ["subscriber_id", "state"])


def downgrade() -> None:
    op.execute(
        "DELETE FROM outbox WHERE subscriber_id IS NOT NULL AND subscriber_id NOT IN (SELECT id FROM subscribers)"
    )
    if op.get_bind().dialect.name == "sqlite":
        for name in PARTIAL:
            op.drop_index(name, table_name="outbox")
        op.drop_index("ix_outbox_subscriber_id_state", table_name="outbox")
        with _bounce_links_kept(), op.batch_alter_table("outbox", recreate="always") as batch_op:
            batch_op.create_foreign_key(FOREIGN_KEY, "subscribers", ["subscriber_id"], ["id"], ondelete="CASCADE")
        _indexes()
    else:
        op.create_foreign_key(FOREIGN_KEY, "outbox", "subscribers", ["subscriber_id"], ["id"], ondelete="CASCADE")
    op.create_index("ix_outbox_issue_number_state", "outbox", ["issue_number", "state"])
