"""The outbox ledger's shared rules: how a notice is queued, who a kind of mail may still go to, and how a
stored message is read. No Flask.

Every message to send is an `OutboxMessage` row written before sending starts (by the web request or the
publish that asked for it, in the same transaction): notices by `queue_notice`, an issue's mail by
`feedsvc.outbox.sends.publish`. `feedsvc.outbox.worker.SendWorker` claims rows under a lease, sends them
and records each outcome; see its module docstring for the ledger's life cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import TYPE_CHECKING

from feedsvc.db.tables import (
    ACTIVE,
    BOUNCED,
    KIND_CONFIRM,
    KIND_ISSUE,
    KIND_MANAGE,
    KIND_RECONFIRM,
    KIND_WELCOME,
    PENDING,
    PRIORITY_TRANSACTIONAL,
    QUEUED,
    SUBSCRIBER_STATUSES,
    UNSUBSCRIBED,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from feedsvc.db.models import OutboxMessage
    from feedsvc.mail import notices

__all__ = ["SEND_TO", "queue_notice", "stored_message"]

# Which subscriber statuses a kind of mail may still go to when it is sent.
SEND_TO: Mapping[str, tuple[str, ...]] = {
    KIND_CONFIRM: (PENDING,),
    KIND_RECONFIRM: (UNSUBSCRIBED, BOUNCED),
    KIND_MANAGE: SUBSCRIBER_STATUSES,  # an unsubscribed reader still downloads, erases or resubscribes
    KIND_ISSUE: (ACTIVE,),
    KIND_WELCOME: (ACTIVE,),
}


def queue_notice(
    session: Session, kind: str, subscriber_id: int | None, recipient: str, notice: notices.Notice, now: datetime
) -> OutboxMessage:
    """Queue a rendered notice (confirm, manage; a staff link has no subscriber) to go first, in the caller's
    transaction; the new row."""
    from feedsvc.db.models import OutboxMessage  # an ORM workflow's row: the sender of a notice holds a session

    row = OutboxMessage(
        kind=kind,
        priority=PRIORITY_TRANSACTIONAL,
        subscriber_id=subscriber_id,
        recipient=recipient,
        subject=notice.subject,
        message=notice.to_bytes(),
        state=QUEUED,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    return row


def stored_message(row_id: int, kind: str, message: bytes | None) -> EmailMessage:
    """The message a row carries: a rendered notice (confirm, manage) or RFC 5322 bytes."""
    if message is None:
        raise ValueError(f"outbox row {row_id} ({kind}) has no stored message")
    if message.startswith(b"{"):
        from feedsvc.mail import notices  # here: Jinja2 loads only in a worker that sends notices

        return notices.Notice.from_bytes(message).message()
    parsed = BytesParser(policy=policy.default).parsebytes(message)
    assert isinstance(parsed, EmailMessage)
    return parsed
