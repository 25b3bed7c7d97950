"""subscription_requests: sign-up and manage-link requests, decided after the web answer (issue 16, timing);
addresses stored with a Unicode domain get their IDNA form (the form normalise_email gives now)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 20:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from email_validator import EmailNotValidError, validate_email

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscription_requests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("sections", sa.String(length=512), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_requests")),
    )
    _idna_domains()


def _idna_domains() -> None:
    """`a@例子.广告` becomes `a@xn--fsqu00a.xn--4rr70v`, unless that address is stored already. An address
    whose local part is not ASCII stays as it is (a sign-up or import refuses such an address now)."""
    subscribers = sa.table("subscribers", sa.column("id", sa.Integer), sa.column("email", sa.String))
    connection = op.get_bind()
    rows = connection.execute(sa.select(subscribers.c.id, subscribers.c.email)).all()
    taken = {email for _, email in rows}
    for sid, email in rows:
        local = email.rpartition("@")[0]
        if email.isascii() or not local.isascii():
            continue
        try:
            ascii_email = (validate_email(email, check_deliverability=False).ascii_email or "").lower()
        except EmailNotValidError:
            continue
        if ascii_email and ascii_email not in taken:
            connection.execute(subscribers.update().where(subscribers.c.id == sid).values(email=ascii_email))
            taken.add(ascii_email)


def downgrade() -> None:
    op.drop_table("subscription_requests")
