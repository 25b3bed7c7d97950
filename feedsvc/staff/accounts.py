"""Staff accounts: add, list, remove, change role, set and check passwords (argon2id via argon2-cffi).

Every change is written to the audit log in the same transaction, so no change goes unrecorded.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from feedsvc.db.engine import utcnow
from feedsvc.staff import audit, sessions
from feedsvc.staff.models import StaffMember
from feedsvc.staff.roles import check_role
from feedsvc.subscribers.addresses import normalise_email

MIN_PASSWORD_LENGTH = 12
_HASHER = PasswordHasher()


@functools.cache
def dummy_hash() -> str:
    """The hash checked when the address is unknown, so a wrong address costs as long as a wrong password.

    Made on first use, not at import: a web process (and `feedsvc worker`) should not start with an argon2 hash.
    """
    return _HASHER.hash("feedsvc: no such staff member")


class StaffError(ValueError):
    """A staff change that cannot be made: `kind` says which (unknown, exists, short_password), for the pages'
    own words; the message is the CLI's."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Member:
    """A staff member as listed: address, role, and whether a password is set."""

    email: str
    role: str
    has_password: bool


def get_member(session: Session, email: str) -> StaffMember:
    """The staff row of `email`; StaffError if there is none."""
    member = session.scalar(select(StaffMember).where(StaffMember.email == normalise_email(email)))
    if member is None:
        raise StaffError(f"no staff member {email!r}", "unknown")
    return member


def hash_password(password: str) -> str:
    """The argon2id hash of `password`; StaffError when it is shorter than MIN_PASSWORD_LENGTH."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters", "short_password")
    return _HASHER.hash(password)


def add(session: Session, email: str, role: str, actor: str, password: str | None = None, client: str = "") -> Member:
    """Add a staff member with `role` (and a password, if given), done by `actor` from `client` (an address, or ""
    for the CLI); StaffError if the address is staff already."""
    address = normalise_email(email)
    check_role(role)
    if session.scalar(select(StaffMember.id).where(StaffMember.email == address)) is not None:
        raise StaffError(f"{address} is staff already", "exists")
    hashed = hash_password(password) if password is not None else None
    now = utcnow()
    session.add(StaffMember(email=address, role=role, password_hash=hashed, created_at=now, updated_at=now))
    audit.record(session, actor, "staff.add", f"{address} {role}", client)
    return Member(address, role, hashed is not None)


def members(session: Session) -> list[Member]:
    """Every staff member, by address."""
    rows = session.scalars(select(StaffMember).order_by(StaffMember.email))
    return [Member(r.email, r.role, r.password_hash is not None) for r in rows]


def remove(session: Session, email: str, actor: str, client: str = "") -> None:
    """Remove a staff member; StaffError if unknown."""
    member = get_member(session, email)
    sessions.end_all(session, member.id)
    session.delete(member)
    audit.record(session, actor, "staff.remove", member.email, client)


def set_role(session: Session, email: str, role: str, actor: str, client: str = "") -> None:
    """Give a staff member another role; StaffError if unknown."""
    member = get_member(session, email)
    old = member.role
    member.role, member.updated_at = check_role(role), utcnow()
    audit.record(session, actor, "staff.role", f"{member.email} {old} -> {role}", client)


def set_password(session: Session, email: str, password: str, actor: str) -> None:
    """Set a staff member's password (hashed), ending their sessions; StaffError if unknown or too short."""
    member = get_member(session, email)
    member.password_hash, member.updated_at = hash_password(password), utcnow()
    sessions.end_all(session, member.id)
    audit.record(session, actor, "staff.password", member.email)


def authenticate(session: Session, email: str, password: str) -> Member | None:
    """The member whose address and password these are, or None; as slow for an unknown address as a wrong
    password, so the answer's timing does not tell which addresses are staff."""
    try:
        address = normalise_email(email)
    except ValueError:
        address = ""
    dummy = dummy_hash()  # made before anything is looked up: the first attempt costs the same for every address
    member = session.scalar(select(StaffMember).where(StaffMember.email == address)) if address else None
    stored = member.password_hash if member is not None and member.password_hash else dummy
    try:
        _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if member is None or not member.password_hash:
        return None
    return Member(member.email, member.role, True)
