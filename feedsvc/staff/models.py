"""The staff tables' ORM classes (their tables are in feedsvc.db.tables): `StaffMember`, one per person on the
team, `AuditEntry`, what they did, `StaffSession`, who is logged in (migration 0009), and `ApiToken` (0010)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Mapped

from feedsvc.db import tables
from feedsvc.db.models import Base


class StaffMember(Base):
    """A member of the team: a normalised address, a role, and an argon2 password hash (None until set)."""

    __table__ = tables.staff

    id: Mapped[int]
    email: Mapped[str]
    role: Mapped[str]
    password_hash: Mapped[str | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    totp_secret: Mapped[str | None]
    totp_last_step: Mapped[int]
    totp_pending_secret: Mapped[str | None]
    totp_pending_at: Mapped[datetime | None]


class AuditEntry(Base):
    """One staff action: who (`actor`, an address or "cli"), what (`action`, `detail`), when, from where."""

    __table__ = tables.audit_log

    id: Mapped[int]
    at: Mapped[datetime]
    actor: Mapped[str]
    action: Mapped[str]
    detail: Mapped[str]
    client: Mapped[str]


class StaffSession(Base):
    """A logged-in browser: the SHA-256 of its random cookie value (never the value), whose it is, and when."""

    __table__ = tables.staff_sessions

    id_hash: Mapped[str]
    staff_id: Mapped[int]
    created_at: Mapped[datetime]
    seen_at: Mapped[datetime]


class ApiToken(Base):
    """A staff member's API token (migration 0010): only its SHA-256 is kept; it goes when the member goes."""

    __table__ = tables.api_tokens

    id: Mapped[int]
    staff_id: Mapped[int]
    name: Mapped[str]
    token_hash: Mapped[str]
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
