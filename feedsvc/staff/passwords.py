"""Set-password links for staff, mailed through the outbox: signed, expiring and single-use. No Flask.

A link names the member and a fingerprint of their current password hash, and carries the time it was made.
Setting a password changes the hash, so every link made before no longer matches: each link works once.
Links expire after LINK_MAX_AGE. The signing salt is the staff's own, so no subscriber link can pass for one.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from feedsvc.config import Settings
from feedsvc.i18n import DEFAULT_LANGUAGE
from feedsvc.mail import notices
from feedsvc.outbox import rules
from feedsvc.staff import accounts, audit, sessions
from feedsvc.staff.models import StaffMember
from feedsvc.subscribers.addresses import normalise_email

LINK_MAX_AGE = timedelta(hours=24)
KIND = "staff_password"  # the outbox kind and the templates/email/ name of the mail
SALT = "feedsvc.staff-password"


class LinkError(Exception):
    """A set-password link that cannot be used (forged, expired, used already, member gone)."""


def _serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key, salt=SALT)


def _fingerprint(settings: Settings, member: StaffMember) -> str:
    stamp = f"{member.id}:{member.password_hash or ''}".encode()
    return hmac.new(settings.secret_key.encode(), stamp, hashlib.sha256).hexdigest()[:32]


def make_token(settings: Settings, member: StaffMember, now: datetime) -> str:
    """A set-password token for `member`, valid for LINK_MAX_AGE from `now` and until a password is set."""
    return str(_serializer(settings).dumps([member.id, _fingerprint(settings, member), int(now.timestamp())]))


def resolve(session: Session, settings: Settings, token: str, now: datetime) -> StaffMember:
    """The member a current set-password token names; LinkError otherwise."""
    serializer = _serializer(settings)
    try:
        value = serializer.loads(token)
    except (BadSignature, UnicodeError, ValueError) as exc:
        raise LinkError("invalid") from exc
    if serializer.dumps(value) != token:  # only the exact string issued (base64 decoding is lenient)
        raise LinkError("invalid")
    if not (isinstance(value, list) and len(value) == 3 and type(value[0]) is int and type(value[2]) is int):
        raise LinkError("invalid")
    if now.timestamp() - value[2] > LINK_MAX_AGE.total_seconds():
        raise LinkError("expired")
    member = session.get(StaffMember, value[0])
    if member is None or not hmac.compare_digest(str(value[1]), _fingerprint(settings, member)):
        raise LinkError("used")
    return member


def _link_notice(settings: Settings, member: StaffMember, lang: str, now: datetime) -> notices.Notice:
    """The rendered mail with `member`'s set-password link."""
    url = f"{settings.base_url}/admin/password/{make_token(settings, member, now)}"
    return notices.render(settings, KIND, member.email, lang, {"password_url": url})


def queue_link(session: Session, settings: Settings, member: StaffMember, lang: str, now: datetime) -> None:
    """Queue the mail with `member`'s set-password link in the outbox (first in line), in this transaction."""
    rules.queue_notice(session, KIND, None, member.email, _link_notice(settings, member, lang, now), now)


def invite(session: Session, settings: Settings, email: str, now: datetime) -> None:
    """Mail a new member (already added in this transaction) the link to set their first password."""
    session.flush()
    member = session.scalar(select(StaffMember).where(StaffMember.email == normalise_email(email)))
    if member is None:
        raise accounts.StaffError(f"no staff member {email!r}", "unknown")
    queue_link(session, settings, member, DEFAULT_LANGUAGE, now)


def request_reset(session: Session, settings: Settings, email: str, lang: str, now: datetime, client: str) -> None:
    """Mail a reset link if `email` is a staff member's; nothing otherwise (the caller answers the same)."""
    try:
        address = normalise_email(email)
    except ValueError:
        return
    member = session.scalar(select(StaffMember).where(StaffMember.email == address))
    if member is None:
        # The same rendering for an address that is not staff, thrown away: the answer's timing tells nothing.
        _link_notice(settings, StaffMember(id=0, email=address), lang, now)
        return
    queue_link(session, settings, member, lang, now)
    audit.record(session, member.email, "password.reset_request", "", client)


def set_by_link(session: Session, settings: Settings, token: str, password: str, now: datetime, client: str) -> str:
    """Set the password a link is for (ending the member's sessions); the member's address. LinkError,
    or StaffError for a weak password."""
    member = resolve(session, settings, token, now)
    member.password_hash, member.updated_at = accounts.hash_password(password), now
    sessions.end_all(session, member.id)
    audit.record(session, member.email, "password.set", "by mailed link", client)
    return member.email
