"""subscription_requests NOTIFYs feedsvc_subscription_requests on insert (PostgreSQL), so that the worker decides
a queued sign-up at once instead of at its next poll

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 19:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# The channel is feedsvc.subscribers.requests.CHANNEL; a migration states its own (it must not change later).
FUNCTION = """
CREATE FUNCTION feedsvc_subscription_requests_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('feedsvc_subscription_requests', '');
    RETURN NULL;
END
$$
"""
TRIGGER = """
CREATE TRIGGER subscription_requests_notify AFTER INSERT ON subscription_requests
FOR EACH STATEMENT EXECUTE FUNCTION feedsvc_subscription_requests_notify()
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":  # SQLite has no NOTIFY: the worker polls
        return
    op.execute(FUNCTION)
    op.execute(TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS subscription_requests_notify ON subscription_requests")
    op.execute("DROP FUNCTION IF EXISTS feedsvc_subscription_requests_notify()")
