"""bounces: reports taken in, bounces and complaints, the subscriber's bounce score (issue 10)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 23:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bounce_reports",
        sa.Column("id", _ID, nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("report_type", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("unmatched", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bounce_reports")),
    )
    op.create_index(op.f("ix_bounce_reports_received_at"), "bounce_reports", ["received_at"])
    op.create_table(
        "bounces",
        sa.Column("id", _ID, nullable=False),
        sa.Column("report_id", _ID, nullable=True),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("outbox_id", _ID, nullable=True),
        sa.Column("issue_number", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("diagnostic", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("effect", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"], ["bounce_reports.id"], name=op.f("fk_bounces_report_id_bounce_reports"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"], name=op.f("fk_bounces_subscriber_id_subscribers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name=op.f("fk_bounces_outbox_id_outbox"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bounces")),
    )
    op.create_index(op.f("ix_bounces_subscriber_id_at"), "bounces", ["subscriber_id", "at"])
    op.create_index(op.f("ix_bounces_issue_number_kind"), "bounces", ["issue_number", "kind"])
    op.create_index(op.f("ix_bounces_outbox_id"), "bounces", ["outbox_id"])
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("bounce_score", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("bounce_scored_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_outbox_message_id"), "outbox", ["message_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_outbox_message_id"), table_name="outbox")
    # Never a copy of the table on SQLite: dropping the old one would run the ON DELETE CASCADE of every table
    # pointing at subscribers (its sections, events, outbox rows). SQLite 3.35+ drops a column in place.
    with op.batch_alter_table("subscribers", recreate="never") as batch:
        batch.drop_column("bounce_scored_at")
        batch.drop_column("bounce_score")
    op.drop_table("bounces")
    op.drop_table("bounce_reports")
