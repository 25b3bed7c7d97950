"""Signed links: confirm, manage and unsubscribe tokens, and the keyed id permutation they carry. No Flask.

Confirmation tokens are signed (itsdangerous) and expire after `CONFIRM_MAX_AGE`; manage and unsubscribe
tokens are signed per subscriber and per purpose and do not expire (RFC 8058 one-click links live in old
mails). All of a subscriber's tokens are revoked by bumping `token_version`. Only the exact string that
was issued is accepted: anything else (a trailing byte base64 would drop, say) is ``invalid``.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode, int_to_bytes
from sqlalchemy import select

from feedsvc.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from feedsvc.db.models import Subscriber

CONFIRM_MAX_AGE = timedelta(days=3)
CONFIRM, MANAGE, UNSUBSCRIBE = "confirm", "manage", "unsubscribe"
PURPOSES = (CONFIRM, MANAGE, UNSUBSCRIBE)

MAX_SUBSCRIBER_ID = 2**31 - 1  # subscribers.id is a 32-bit integer on PostgreSQL
_ID_BITS = 64
_HALF = _ID_BITS // 2
_HALF_MASK = (1 << _HALF) - 1


class TokenError(Exception):
    """A link that cannot be used: `reason` is ``invalid`` (tampered, foreign, unknown), ``expired`` or ``stale``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _serializer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=f"feedsvc.{purpose}")


def _round(key: bytes, index: int, half: int) -> int:
    digest = hmac.new(key, index.to_bytes(1, "big") + half.to_bytes(_HALF // 8, "big"), hashlib.sha256).digest()
    return int.from_bytes(digest[: _HALF // 8], "big")


def mask_id(settings: Settings, value: int, *, reverse: bool = False) -> int:
    """A keyed permutation of 64-bit numbers, so tokens do not show subscriber ids (or how many there are).

    Four Feistel rounds with HMAC-SHA256 as the round function (Luby-Rackoff): without the secret key the
    masked number says nothing about the id; with it, `reverse=True` gives the id back.
    """
    if not 0 <= value < 1 << _ID_BITS:
        raise ValueError("out of range")
    key = hashlib.sha256(b"feedsvc.subscriber-id\0" + settings.secret_key.encode()).digest()
    left, right = value >> _HALF, value & _HALF_MASK
    if not reverse:
        for index in range(4):
            left, right = right, left ^ _round(key, index, right)
    else:
        for index in reversed(range(4)):
            left, right = right ^ _round(key, index, left), left
    return left << _HALF | right


def make_token(settings: Settings, purpose: str, subscriber_id: int, token_version: int, *extra: object) -> str:
    """A signed token for `purpose` (confirm, manage, unsubscribe) naming one subscriber and token version.

    `extra` JSON values ride along signed (a confirmation carries the request it confirms).
    """
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return str(_serializer(settings, purpose).dumps([mask_id(settings, subscriber_id), token_version, *extra]))


def read_token_payload(settings: Settings, purpose: str, token: str) -> tuple[int, int, list[object]]:
    """(subscriber id, token version, extra values) from a token of `purpose`; TokenError if forged,
    altered, foreign or expired."""
    max_age = int(CONFIRM_MAX_AGE.total_seconds()) if purpose == CONFIRM else None
    serializer = _serializer(settings, purpose)
    try:
        value, issued = serializer.loads(token, max_age=max_age, return_timestamp=True)
    except SignatureExpired as exc:
        raise TokenError("expired") from exc
    except (BadSignature, UnicodeError, ValueError) as exc:
        raise TokenError("invalid") from exc
    # base64 decoding skips what it cannot read (a trailing "=", "é" or zero-width space), so a valid
    # signature does not pin the string: accept only the exact token that was issued.
    if not hmac.compare_digest(token.encode("utf-8", "surrogatepass"), _issued_form(serializer, value, issued)):
        raise TokenError("invalid")
    if not (isinstance(value, list) and len(value) >= 2 and all(type(v) is int for v in value[:2])):
        raise TokenError("invalid")
    try:
        subscriber_id = mask_id(settings, value[0], reverse=True)
    except ValueError as exc:
        raise TokenError("invalid") from exc
    if not 0 < subscriber_id <= MAX_SUBSCRIBER_ID:  # e.g. signed with a key that has since changed
        raise TokenError("invalid")
    return subscriber_id, value[1], value[2:]


def _issued_form(serializer: URLSafeTimedSerializer, value: object, issued: datetime) -> bytes:
    """The one token string `serializer` issues for `value` signed at `issued`."""
    signer = serializer.make_signer(serializer.salt)
    body = serializer.dump_payload(value) + b"." + base64_encode(int_to_bytes(int(issued.timestamp())))
    return body + b"." + signer.get_signature(body)


def read_token(settings: Settings, purpose: str, token: str) -> tuple[int, int]:
    """(subscriber id, token version) from a token of `purpose`; TokenError if forged, foreign or expired."""
    subscriber_id, version, _ = read_token_payload(settings, purpose, token)
    return subscriber_id, version


def link(settings: Settings, purpose: str, subscriber_id: int, token_version: int, *extra: object) -> str:
    """The absolute URL of a confirm, manage or unsubscribe link (also for List-Unsubscribe in issue mail)."""
    return f"{settings.base_url}/{purpose}/{make_token(settings, purpose, subscriber_id, token_version, *extra)}"


def resolve(session: Session, settings: Settings, purpose: str, token: str, *, lock: bool = False) -> Subscriber:
    """The subscriber a token of `purpose` names; TokenError if it is not a current token of a subscriber."""
    return resolve_payload(session, settings, purpose, token, lock=lock)[0]


def resolve_payload(
    session: Session, settings: Settings, purpose: str, token: str, *, lock: bool = False
) -> tuple[Subscriber, list[object]]:
    """`resolve`, and the extra values the token carries."""
    from sqlalchemy.orm import selectinload  # the web's objects; `feedsvc worker` only makes links, in no session

    from feedsvc.db.models import Subscriber

    subscriber_id, version, extra = read_token_payload(settings, purpose, token)
    query = select(Subscriber).where(Subscriber.id == subscriber_id).options(selectinload(Subscriber.sections))
    if lock:
        query = query.with_for_update()
    subscriber = session.scalars(query).one_or_none()
    if subscriber is None or subscriber.token_version != version:
        raise TokenError("invalid")
    return subscriber, extra
