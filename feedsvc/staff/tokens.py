"""Per-staff API tokens: create (shown once), list, revoke, and resolve a presented token to its member. No Flask.

A token is ``fsvc_`` and 43 URL-safe characters (256 random bits), so a leaked one is easy to recognise in a
log or a repository scan. Only its SHA-256 is stored: with that much entropy a slow hash adds nothing, and
one indexed lookup finds it. A token acts with its owner's role as it is *now*: the role is read from the
staff table on every use, and a removed member's tokens are deleted with them (ON DELETE CASCADE).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from feedsvc.db.engine import utcnow
from feedsvc.staff import audit
from feedsvc.staff.accounts import StaffError, get_member
from feedsvc.staff.models import ApiToken, StaffMember
from feedsvc.subscribers.addresses import normalise_email

PREFIX = "fsvc_"
MAX_NAME = 100
#: last use is written at most this often per token, so a busy script does not write on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Token:
    """A token as listed: never its secret."""

    id: int
    email: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def label(self) -> str:
        """How the audit log names it: ``token 3 (deploy)``."""
        return f"token {self.id} ({self.name})" if self.name else f"token {self.id}"

    def as_json(self) -> dict[str, object]:
        """The token for `feedsvc staff token list --json`."""
        when = {k: (v.isoformat() if v else None) for k, v in self._times().items()}
        return {"id": self.id, "email": self.email, "name": self.name, **when}

    def _times(self) -> dict[str, datetime | None]:
        return {"created_at": self.created_at, "last_used_at": self.last_used_at, "revoked_at": self.revoked_at}


@dataclass(frozen=True)
class Caller:
    """Who a valid token speaks for: the member's address and current role, and the token."""

    email: str
    role: str
    token: Token


def digest(secret: str) -> str:
    """The stored form of a token: its SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def looks_like_token(secret: str) -> bool:
    """True when `secret` has a token's shape (prefix, length); anything else is refused without a lookup."""
    return secret.startswith(PREFIX) and 40 <= len(secret) <= 80 and secret.isascii()


def _token(row: ApiToken, email: str) -> Token:
    return Token(row.id, email, row.name, row.created_at, row.last_used_at, row.revoked_at)


def create(session: Session, email: str, actor: str, name: str = "") -> tuple[str, Token]:
    """A new token for the staff member `email`: (the secret, shown only now; the token). StaffError if unknown."""
    if len(name) > MAX_NAME:
        raise StaffError(f"a token name has at most {MAX_NAME} characters", "token_name")
    member = get_member(session, email)
    secret = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(staff_id=member.id, name=name.strip(), token_hash=digest(secret), created_at=utcnow())
    session.add(row)
    session.flush()
    token = _token(row, member.email)
    audit.record(session, actor, "token.create", f"{member.email} {token.label}")
    return secret, token


def tokens(session: Session, email: str | None = None) -> list[Token]:
    """Every token (or those of `email`), by member and id, revoked ones included."""
    query = select(ApiToken, StaffMember.email).join(StaffMember).order_by(StaffMember.email, ApiToken.id)
    if email:
        query = query.where(StaffMember.email == normalise_email(email))
    return [_token(row, address) for row, address in session.execute(query)]


def revoke(session: Session, token_id: int, actor: str) -> Token:
    """Revoke a token (it answers 401 from now on); revoking twice is harmless. StaffError if unknown."""
    found = session.execute(
        select(ApiToken, StaffMember.email).join(StaffMember).where(ApiToken.id == token_id)
    ).one_or_none()
    if found is None:
        raise StaffError(f"no API token {token_id}", "unknown_token")
    row, email = found
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(session, actor, "token.revoke", f"{email} {_token(row, email).label}")
    return _token(row, email)


def resolve(session: Session, secret: str, *, now: datetime | None = None) -> Caller | None:
    """The caller a presented token speaks for, with the member's current role, or None (unknown, revoked,
    member removed). Records the use (at most once per LAST_USED_RESOLUTION)."""
    if not looks_like_token(secret):
        return None
    found = session.execute(
        select(ApiToken, StaffMember.email, StaffMember.role)
        .join(StaffMember)
        .where(ApiToken.token_hash == digest(secret), ApiToken.revoked_at.is_(None))
    ).one_or_none()
    if found is None:
        return None
    row, email, role = found
    now = now or utcnow()
    if row.last_used_at is None or row.last_used_at <= now - LAST_USED_RESOLUTION:
        session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        row.last_used_at = now
    return Caller(email, role, _token(row, email))
