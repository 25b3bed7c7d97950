"""subscribers.sections_key; the outbox keeps only the indexes a send needs (issue 13, enqueueing a million rows)

`subscribers.sections_key` is the reader's chosen slugs as the outbox names a variant (sorted, joined by
';'), written with the `subscriber_sections` rows by their one writer
(feedsvc.subscribers.subscriptions.set_sections). Enqueueing reads each reader's variant from it instead of
grouping `subscriber_sections` per reader, and counts the readers of each set from an index on (status,
sections_key). The outbox's (subscriber_id, state) index goes: a subscriber's
rows are found through the unique (issue_number, subscriber_id) index, one probe per issue in the outbox
(feedsvc.outbox.sends.rows_of), so a send no longer inserts a million entries into an index ordered by
subscriber. The message_id index holds only rows that have one (none when they are enqueued).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 14:30:00
"""

from __future__ import annotations

import itertools

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade() -> None:
    op.add_column("subscribers", sa.Column("sections_key", sa.String(512), nullable=False, server_default=""))
    _fill_keys()
    op.create_index("ix_subscribers_status_sections_key", "subscribers", ["status", "sections_key"])
    op.drop_index("ix_outbox_subscriber_id_state", table_name="outbox")
    op.drop_index("ix_outbox_message_id", table_name="outbox")
    where = sa.text("message_id IS NOT NULL")
    op.create_index("ix_outbox_message_id", "outbox", ["message_id"], sqlite_where=where, postgresql_where=where)


def _fill_keys() -> None:
    """Every subscriber's key from their section rows (slugs sorted, joined by ';'), in batches."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            # COLLATE "C": code point order, as Python's sorted() spells every key the code writes
            "UPDATE subscribers SET sections_key = chosen.key FROM (SELECT subscriber_id, string_agg(section, ';' "
            'ORDER BY section COLLATE "C") AS key FROM subscriber_sections GROUP BY subscriber_id) '
            "AS chosen WHERE chosen.subscriber_id = subscribers.id"
        )
        return
    update = sa.text("UPDATE subscribers SET sections_key = :key WHERE id = :id")
    rows = bind.execute(sa.text("SELECT subscriber_id, section FROM subscriber_sections ORDER BY subscriber_id"))
    keys = []  # streamed: one subscriber's rows are adjacent; Python's sorted() is the code's spelling
    for subscriber_id, group in itertools.groupby(rows, key=lambda row: int(row[0])):
        keys.append({"id": subscriber_id, "key": ";".join(sorted({str(row[1]) for row in group}))})
        if len(keys) == BATCH:
            bind.execute(update, keys)
            keys = []
    if keys:
        bind.execute(update, keys)


def downgrade() -> None:
    op.drop_index("ix_outbox_message_id", table_name="outbox")
    op.create_index("ix_outbox_message_id", "outbox", ["message_id"])
    op.create_index("ix_outbox_subscriber_id_state", "outbox", ["subscriber_id", "state"])
    op.drop_index("ix_subscribers_status_sections_key", table_name="subscribers")
    op.execute("ALTER TABLE subscribers DROP COLUMN sections_key")
