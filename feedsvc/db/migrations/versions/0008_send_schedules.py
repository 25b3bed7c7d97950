"""send_schedules: the next free slot of the fleet-wide send rate (issue 13, one rate for the fleet)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 21:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "send_schedules",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("next_slot", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_send_schedules")),
    )


def downgrade() -> None:
    op.drop_table("send_schedules")
