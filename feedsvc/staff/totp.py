"""Time-based one-time passwords (RFC 6238, pyotp) for owners who enrol: secrets, codes, and no replays. No Flask.

A code is accepted for its 30-second step and one step either side (clock drift), and only for a step later
than the newest one the member has used, so a code seen over a shoulder cannot be used a second time.
The secret being enrolled waits on the member's row (never in a cookie) for ENROL_WINDOW, until a code of it
turns TOTP on.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta

import pyotp

from feedsvc.staff.models import StaffMember

DRIFT_STEPS = 1
ENROL_WINDOW = timedelta(minutes=10)  # from showing a new secret to the code that confirms it


def new_secret() -> str:
    """A fresh base32 secret (160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, email: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app takes (typed in, or as a QR code elsewhere)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def matching_step(secret: str, code: str, now: datetime, after: int = 0) -> int | None:
    """The time step `code` is valid for (near `now`, later than `after`), or None."""
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for offset in range(-DRIFT_STEPS, DRIFT_STEPS + 1):
        step = current + offset
        if step > after and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def use_code(member: StaffMember, code: str, now: datetime) -> bool:
    """True (and the step remembered) when `code` is a fresh valid code of the member's secret."""
    if not member.totp_secret:
        return False
    step = matching_step(member.totp_secret, code, now, member.totp_last_step or 0)
    if step is None:
        return False
    member.totp_last_step = step
    return True


def _pending(member: StaffMember, now: datetime) -> str | None:
    at = member.totp_pending_at
    return member.totp_pending_secret if at is not None and now - at <= ENROL_WINDOW else None


def pending_secret(member: StaffMember, now: datetime) -> str:
    """The secret `member` is enrolling: the one still under way (a reload shows it again), else a new one."""
    secret = _pending(member, now)
    if secret is None:
        secret = new_secret()
        member.totp_pending_secret, member.totp_pending_at = secret, now
    return secret


def enrol(member: StaffMember, code: str, now: datetime) -> bool:
    """True (TOTP on, the pending secret spent) when `code` is valid for the unexpired secret being enrolled."""
    secret = _pending(member, now)
    step = matching_step(secret, code, now) if secret and not member.totp_secret else None
    if step is None:
        return False
    member.totp_secret, member.totp_last_step = secret, step
    member.totp_pending_secret = member.totp_pending_at = None
    return True
