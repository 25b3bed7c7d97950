"""Sign-ups, confirmations and unsubscribes are counted in the subscription workflow, once each, when their
transaction commits (a rolled-back one counts nothing; doing it twice counts once)."""

from __future__ import annotations

import pytest
from metrics_support import Samples, parse, value
from sqlalchemy import select

from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.db.models import Subscriber
from feedsvc.ops import metrics
from feedsvc.subscribers import subscriptions, tokens
from feedsvc.subscribers.tokens import CONFIRM


def scrape(db: Database) -> Samples:
    return parse(metrics.exposition(db).decode())


def counts(db: Database) -> tuple[float, float, float]:
    samples = scrape(db)
    return (
        value(samples, "feedsvc_signups_total"),
        value(samples, "feedsvc_confirmations_total"),
        value(samples, "feedsvc_unsubscribes_total", how="one-click"),
    )


def moved(db: Database, before: tuple[float, float, float]) -> tuple[float, ...]:
    return tuple(b - a for a, b in zip(before, counts(db), strict=True))


def the_subscriber(db: Database, email: str) -> Subscriber:
    with db.session(readonly=True) as session:
        return session.scalars(select(Subscriber).where(Subscriber.email == email)).one()


def test_each_action_moves_its_counter_by_exactly_one(db: Database, settings: Settings) -> None:
    email = "counted@example.org"
    start = counts(db)
    with db.session() as session:
        subscriptions.subscribe(session, settings, email, ["industry"])
    assert moved(db, start) == (1, 0, 0)
    with db.session() as session:  # asking again (throttled, or a known address) is no new sign-up
        subscriptions.subscribe(session, settings, email, ["industry"])
    assert moved(db, start) == (1, 0, 0)
    reader = the_subscriber(db, email)
    token = tokens.make_token(settings, CONFIRM, reader.id, reader.token_version)
    for _ in range(2):  # confirming twice is one confirmation
        with db.session() as session:
            subscriptions.confirm(session, settings, token)
    assert moved(db, start) == (1, 1, 0)
    for _ in range(2):  # and unsubscribing twice one unsubscribe
        with db.session() as session:
            subscriber = session.get(Subscriber, reader.id)
            assert subscriber is not None
            subscriptions.unsubscribe(session, subscriber, how="one-click")
    assert moved(db, start) == (1, 1, 1)


def sign_up_then_fail(db: Database, settings: Settings, email: str) -> None:
    with db.session() as session:
        subscriptions.subscribe(session, settings, email, ["industry"])
        raise RuntimeError("the request failed after the sign-up was written")


def test_a_rolled_back_sign_up_is_not_counted(db: Database, settings: Settings) -> None:
    start = counts(db)
    with pytest.raises(RuntimeError):
        sign_up_then_fail(db, settings, "undone@example.org")
    with db.session() as session:
        subscriptions.subscribe(session, settings, "kept@example.org", ["industry"])
    assert moved(db, start) == (1, 0, 0)
