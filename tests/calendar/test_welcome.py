"""The welcome mail once a reader confirms: their sections, the manage link, how to unsubscribe; zh and en."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.db.models import KIND_WELCOME, OutboxMessage, Subscriber
from feedsvc.outbox.rules import SEND_TO, stored_message
from feedsvc.subscribers import subscriptions, tokens
from feedsvc.subscribers.tokens import CONFIRM, MANAGE, UNSUBSCRIBE


def _welcome_on(settings: Settings, on: bool = True) -> Settings:
    return settings.with_overrides(publication=dataclasses.replace(settings.publication, welcome_mail=on))


def _confirm(db: Database, settings: Settings, email: str, sections: list[str], lang: str = "zh-CN") -> Subscriber:
    with db.session() as s:
        subscriptions.subscribe(s, settings, email, sections, lang=lang)
    with db.session() as s:
        sub = s.scalars(select(Subscriber).where(Subscriber.email == email)).one()
        subscriptions.confirm(s, settings, tokens.make_token(settings, CONFIRM, sub.id, sub.token_version))
        s.expunge(sub)
    return sub


def _welcomes(db: Database) -> list[OutboxMessage]:
    with db.session(readonly=True) as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.kind == KIND_WELCOME)))


@pytest.mark.parametrize(("lang", "first"), [("zh-CN", "您好！"), ("en", "Hello,")])
def test_welcome_carries_sections_manage_link_and_unsubscribe(
    db: Database, settings: Settings, lang: str, first: str
) -> None:
    settings = _welcome_on(settings)
    sub = _confirm(db, settings, "reader@example.org", ["industry", "research"], lang)
    [row] = _welcomes(db)
    message = stored_message(row.id, row.kind, row.message)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert text.startswith(first)
    manage = tokens.link(settings, MANAGE, sub.id, sub.token_version)
    unsubscribe = tokens.link(settings, UNSUBSCRIBE, sub.id, sub.token_version)
    for body in (text, html):
        assert manage in body and unsubscribe in body
        assert "行业、研究" in body and "Industry, Research" in body  # both languages, the reader's sections only
    assert "欢迎订阅" in message["Subject"] and "Welcome" in message["Subject"]
    assert 'style="' in html and "<style" not in html  # inlined, like the issue mail
    assert row.recipient == "reader@example.org" and SEND_TO[KIND_WELCOME] == ("active",)


def test_welcome_is_sent_once_and_can_be_turned_off(db: Database, settings: Settings) -> None:
    on = _welcome_on(settings)
    sub = _confirm(db, on, "once@example.org", ["industry"])
    with db.session() as s:  # confirming again changes nothing
        subscriptions.confirm(s, on, tokens.make_token(on, CONFIRM, sub.id, sub.token_version))
    assert len(_welcomes(db)) == 1
    _confirm(db, _welcome_on(settings, False), "quiet@example.org", ["industry"])
    assert [r.recipient for r in _welcomes(db)] == ["once@example.org"]
    assert settings.publication.welcome_mail is True  # feedsvc.toml: [mail] welcome = true
    assert type(settings.publication).__dataclass_fields__["welcome_mail"].default is True  # on unless turned off
