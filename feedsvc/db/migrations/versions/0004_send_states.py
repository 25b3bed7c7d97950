"""issues.send_state: a send is running, paused or stopped (it was sending, paused, cancelled)

The old words were also outbox row states ("sending", "cancelled"), so a state named two different
things. Existing rows are converted both ways.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 20:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NEW = {"sending": "running", "cancelled": "stopped"}  # paused stays paused


def _states(condition: str, renames: dict[str, str]) -> None:
    """Replace the CHECK constraint of issues.send_state with `condition`, renaming stored values between."""
    with op.batch_alter_table("issues") as batch:
        batch.drop_constraint(op.f("ck_issues_send_state"), type_="check")
    for old, new in renames.items():
        issues = sa.table("issues", sa.column("send_state", sa.String))
        op.execute(issues.update().where(issues.c.send_state == old).values(send_state=new))
    with op.batch_alter_table("issues") as batch:
        batch.create_check_constraint(op.f("ck_issues_send_state"), condition)


def upgrade() -> None:
    _states("send_state IN ('running', 'paused', 'stopped')", NEW)


def downgrade() -> None:
    _states("send_state IN ('sending', 'paused', 'cancelled')", {new: old for old, new in NEW.items()})
