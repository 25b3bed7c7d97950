"""The welcome mail a reader gets once they confirm: their sections, the manage link, how to unsubscribe.

Queued through the outbox like every notice (outbox/rules.py `queue_notice`), in the confirming transaction,
so it goes exactly when the confirmation commits. `[mail] welcome = false` in feedsvc.toml turns it off.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from feedsvc.config import Settings
from feedsvc.db.models import KIND_WELCOME, Subscriber, SubscriberEvent
from feedsvc.mail import notices
from feedsvc.outbox import rules
from feedsvc.subscribers.tokens import MANAGE, UNSUBSCRIBE, link


def queue_welcome(session: Session, settings: Settings, subscriber: Subscriber, now: datetime) -> None:
    """Queue the welcome mail for `subscriber` (just confirmed) in the caller's transaction."""
    publication = settings.publication
    slugs = subscriber.section_slugs
    values = {
        "manage_url": link(settings, MANAGE, subscriber.id, subscriber.token_version),
        "unsubscribe_url": link(settings, UNSUBSCRIBE, subscriber.id, subscriber.token_version),
        "sections_zh": "、".join(publication.section_label(s, "zh-CN") for s in slugs),
        "sections_en": ", ".join(publication.section_label(s, "en") for s in slugs),
    }
    notice = notices.render(settings, KIND_WELCOME, subscriber.email, subscriber.lang, values)
    rules.queue_notice(session, KIND_WELCOME, subscriber.id, subscriber.email, notice, now)
    session.add(SubscriberEvent(subscriber_id=subscriber.id, kind="welcome_mail_queued", detail="", at=now))
