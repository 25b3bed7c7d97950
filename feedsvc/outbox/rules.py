"""The outbox ledger's shared rules: who a kind of mail may still go to, how a stored message is read,
and what housekeeping forgets. No Flask.

Every message to send is an `OutboxMessage` row written before sending starts (by the web request or the
publish that asked for it, in the same transaction). `feedsvc.outbox.worker.SendWorker` claims rows under a
lease, sends them and records each outcome; see its module docstring for the ledger's life cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from sqlalchemy import delete
from sqlalchemy.orm import Session

from feedsvc import ratelimit
from feedsvc.db.models import (
    ACTIVE,
    BOUNCED,
    CANCELLED,
    FAILED,
    KIND_CONFIRM,
    KIND_ISSUE,
    KIND_MANAGE,
    KIND_RECONFIRM,
    PENDING,
    PRIORITY_TRANSACTIONAL,
    SENT,
    SKIPPED,
    SUBSCRIBER_STATUSES,
    UNSUBSCRIBED,
    OutboxMessage,
)
from feedsvc.mail import notices
from feedsvc.subscribers import subscriptions

FINAL_STATES = (SENT, FAILED, CANCELLED, SKIPPED)
TRANSACTIONAL_KEEP = timedelta(days=90)

# Which subscriber statuses a kind of mail may still go to when it is sent.
SEND_TO: Mapping[str, tuple[str, ...]] = {
    KIND_CONFIRM: (PENDING,),
    KIND_RECONFIRM: (UNSUBSCRIBED, BOUNCED),
    KIND_MANAGE: SUBSCRIBER_STATUSES,  # an unsubscribed reader still downloads, erases or resubscribes
    KIND_ISSUE: (ACTIVE,),
}


def stored_message(row_id: int, kind: str, message: bytes | None) -> EmailMessage:
    """The message a row carries: a rendered notice (confirm, manage) or RFC 5322 bytes."""
    if message is None:
        raise ValueError(f"outbox row {row_id} ({kind}) has no stored message")
    if message.startswith(b"{"):
        return notices.Notice.from_bytes(message).message()
    parsed = BytesParser(policy=policy.default).parsebytes(message)
    assert isinstance(parsed, EmailMessage)
    return parsed


def prune(session: Session, now: datetime, keep: timedelta = TRANSACTIONAL_KEEP) -> int:
    """Delete finished transactional rows older than `keep` (their history goes with them); how many."""
    result = session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.priority == PRIORITY_TRANSACTIONAL,
            OutboxMessage.state.in_(FINAL_STATES),
            OutboxMessage.updated_at < now - keep,
        )
    )
    return result.rowcount or 0


def housekeeping(session: Session, now: datetime) -> None:
    """Forget what is no longer needed: old rate-limit counters, unconfirmed sign-ups, old transactional rows."""
    ratelimit.prune(session, now.timestamp())
    subscriptions.purge_unconfirmed(session, now=now)
    prune(session, now)
