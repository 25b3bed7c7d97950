"""staff.totp_pending_secret and totp_pending_at: the TOTP secret being enrolled waits on the server, not in the
signed (readable) session cookie

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 14:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.add_column(sa.Column("totp_pending_secret", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("totp_pending_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("staff", recreate="never") as batch:  # in place: no cascade from a copied table
        batch.drop_column("totp_pending_at")
        batch.drop_column("totp_pending_secret")
