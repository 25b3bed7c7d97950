"""Password logins: failed attempts limited per account and per client, with no oracle. No Flask.

A locked account and an unknown address answer exactly like a wrong password, and each costs the same
argon2 verification (accounts.authenticate checks a dummy hash when there is nothing to check), so neither
the answer nor its timing tells which addresses are staff, or which are locked.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from feedsvc import ratelimit
from feedsvc.staff import accounts, audit
from feedsvc.staff.models import StaffMember
from feedsvc.staff.roles import OWNER
from feedsvc.subscribers.addresses import normalise_email

ACCOUNT_LIMIT = ratelimit.Limit(count=10, window=900)  # failed logins per address per 15 minutes
CLIENT_LIMIT = ratelimit.Limit(count=20, window=600)  # failed logins per client per 10 minutes


def _address(email: str) -> str:
    try:
        return normalise_email(email)
    except ValueError:
        return email.strip().lower()[:320]


def _keys(secret: str, email: str, client: str) -> list[tuple[str, ratelimit.Limit]]:
    return [
        (ratelimit.client_key("staff-login-account", _address(email), secret), ACCOUNT_LIMIT),
        (ratelimit.client_key("staff-login-client", client, secret), CLIENT_LIMIT),
    ]


def locked(session: Session, secret: str, email: str, client: str, now: datetime) -> bool:
    """True when the address or the client has used up its failed attempts (reads, counts nothing)."""
    return any(ratelimit.exceeded(session, key, limit, now.timestamp()) for key, limit in _keys(secret, email, client))


def fail(session: Session, secret: str, email: str, client: str, now: datetime, detail: str = "") -> None:
    """Count one failed attempt against the address and the client, and audit it."""
    for key, limit in _keys(secret, email, client):
        ratelimit.hit(session, key, limit, now.timestamp())
    audit.record(session, _address(email), "login.failed", detail, client)


def check_password(
    session: Session, secret: str, email: str, password: str, client: str, now: datetime
) -> StaffMember | None:
    """The member these credentials are for, unless wrong or locked (then None, the failure counted)."""
    is_locked = locked(session, secret, email, client, now)
    member = accounts.authenticate(session, email, password)  # always the argon2 work, locked or not
    if member is None or is_locked:
        fail(session, secret, email, client, now, "locked" if is_locked else "password")
        return None
    return session.scalar(select(StaffMember).where(StaffMember.email == member.email))


def any_staff(session: Session) -> bool:
    """True once there is at least one staff member (then FEEDSVC_ADMIN_PASSWORD does nothing)."""
    return session.scalar(select(StaffMember.id).limit(1)) is not None


def add_first_owner(session: Session, email: str, password: str, actor: str = "bootstrap") -> StaffMember | None:
    """The first owner, made only while there is no staff at all (None once there is), even when requests race.

    Two bootstraps at once must not make two owners. SQLite runs one writer at a time (every transaction
    begins IMMEDIATE), so the second sees the first's row. On PostgreSQL the staff table is locked in SHARE ROW
    EXCLUSIVE mode, which conflicts with itself and with every insert (a `feedsvc staff add` too), until the
    transaction ends; the check after it then sees what the other transaction committed. Callers check
    `any_staff` first without the lock, so a request after bootstrap takes no lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE staff IN SHARE ROW EXCLUSIVE MODE"))
    if any_staff(session):
        return None
    member = accounts.add(session, email, OWNER, actor, password)
    session.flush()
    return session.scalar(select(StaffMember).where(StaffMember.email == member.email))
