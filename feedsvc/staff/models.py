"""The staff tables: `StaffMember`, one per person on the team, `AuditEntry`, what they did, `StaffSession`,
who is logged in (migration 0009), and `ApiToken` (migration 0010). The secret being enrolled: migration 0014."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from feedsvc.db.models import Base
from feedsvc.staff.roles import ROLES


class StaffMember(Base):
    """A member of the team: a normalised address, a role, and an argon2 password hash (None until set)."""

    __tablename__ = "staff"
    __table_args__ = (CheckConstraint(f"role IN ({', '.join(repr(r) for r in ROLES)})", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    totp_secret: Mapped[str | None] = mapped_column(String(64), default=None)  # base32; None: no second factor
    totp_last_step: Mapped[int] = mapped_column(
        BigInteger, default=0, server_default="0"
    )  # the newest time step used (no replays)
    totp_pending_secret: Mapped[str | None] = mapped_column(String(64), default=None)  # being enrolled (0014)
    totp_pending_at: Mapped[datetime | None] = mapped_column(default=None)  # when it was made (it expires)


class AuditEntry(Base):
    """One staff action: who (`actor`, an address or "cli"), what (`action`, `detail`), when, from where."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="")
    client: Mapped[str] = mapped_column(String(64), default="")


class StaffSession(Base):
    """A logged-in browser: the SHA-256 of its random cookie value (never the value), whose it is, and when."""

    __tablename__ = "staff_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    seen_at: Mapped[datetime]


class ApiToken(Base):
    """A staff member's API token (migration 0010): only its SHA-256 is kept; it goes when the member goes."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
