"""scheduled_issues (publish at a time, fired once) and search_entries (the archive search index, issue 15)

SQLite gets an FTS5 table over the entries' bigram tokens; PostgreSQL a tsvector column with a GIN index.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "scheduled_issues",
        sa.Column("id", _ID, nullable=False),
        sa.Column("issue_number", sa.Integer(), nullable=False),
        sa.Column("source_name", sa.String(length=500), nullable=False),
        sa.Column("source", sa.LargeBinary(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("fired_by", sa.String(length=128), nullable=True),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'fired', 'cancelled', 'failed')", name=op.f("ck_scheduled_issues_state")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_issues")),
    )
    op.create_index(
        "ix_scheduled_issues_due", "scheduled_issues", ["due_at"], postgresql_where=sa.text("state = 'pending'")
    )
    op.create_table(
        "search_entries",
        sa.Column("id", _ID, nullable=False),
        sa.Column("issue_number", sa.Integer(), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("item_key", sa.String(length=64), nullable=False),
        sa.Column("section", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_entries")),
    )
    op.create_index(op.f("ix_search_entries_issue_number"), "search_entries", ["issue_number"])
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE search_fts USING fts5(tokens, tokenize = 'unicode61 remove_diacritics 0')")
    else:
        op.execute("ALTER TABLE search_entries ADD COLUMN document tsvector")
        op.execute("CREATE INDEX ix_search_entries_document ON search_entries USING gin (document)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE search_fts")
    op.drop_table("search_entries")
    op.drop_index("ix_scheduled_issues_due", table_name="scheduled_issues")
    op.drop_table("scheduled_issues")
