"""issues: each published issue, its Markdown as published and the state of its send

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 13:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "issues",
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("subject", sa.String(length=998), nullable=False),
        sa.Column("sections", sa.String(length=512), nullable=False),
        sa.Column("source_name", sa.String(length=500), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("send_state", sa.String(length=16), nullable=False),
        sa.Column("enqueued", sa.Integer(), nullable=False),
        sa.Column("skipped_no_sections", sa.Integer(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("send_state IN ('sending', 'paused', 'cancelled')", name=op.f("ck_issues_send_state")),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_issues")),
    )


def downgrade() -> None:
    op.drop_table("issues")
