"""Issue 16, item 6: the web request does the same work for every address; the decision comes after."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import func, select
from subscribe_support import csrf, signup

from feedsvc.config import Settings
from feedsvc.db.engine import utcnow
from feedsvc.db.models import OutboxMessage, Subscriber, SubscriberEvent, SubscriptionRequest
from feedsvc.subscribers import requests, subscriptions
from feedsvc.web import create_app

TABLES = (Subscriber, SubscriberEvent, OutboxMessage, SubscriptionRequest)


@pytest.fixture
def deferred(settings: Settings) -> Iterator[Flask]:
    """The app as it runs in production (not TESTING): it queues requests, and `feedsvc worker` decides them."""
    app = create_app(settings)
    yield app
    app.extensions["feedsvc.db"].dispose()


def counts(app: Flask) -> dict[str, int]:
    with app.extensions["feedsvc.db"].session(readonly=True) as s:
        return {t.__table__.name: s.scalar(select(func.count()).select_from(t)) or 0 for t in TABLES}


def test_the_request_writes_the_same_for_known_and_unknown_addresses(deferred: Flask, settings: Settings) -> None:
    with deferred.extensions["feedsvc.db"].session() as s:
        subscriptions.subscribe(s, settings, "known@example.org", ["industry"])
    client = deferred.test_client()
    before = counts(deferred)
    for email in ("known@example.org", "new@example.org"):
        assert signup(client, email, ["industry"]).status_code == 200
    token = csrf(client, "/manage")
    for email in ("known@example.org", "nobody@example.org"):
        assert client.post("/manage", data={"csrf_token": token, "email": email}).status_code == 200
    after = counts(deferred)
    assert after == {**before, "subscription_requests": 4}  # one queued row each, nothing else


def test_the_worker_decides_a_queued_request_at_once(deferred: Flask, settings: Settings) -> None:
    """On PostgreSQL the decider polls only every minute here, so only the trigger's NOTIFY can wake it in time."""
    database = deferred.extensions["feedsvc.db"]
    listens = database.dialect == "postgresql"
    decider = requests.Decider(database, settings, poll_seconds=60 if listens else 0.1)
    stop = threading.Event()
    thread = decider.start(stop)
    try:
        deadline = time.monotonic() + 10
        while listens and not decider.listening and time.monotonic() < deadline:
            time.sleep(0.02)
        assert decider.listening == listens
        started = time.monotonic()
        assert signup(deferred.test_client(), "reader@example.org", ["industry"]).status_code == 200
        while counts(deferred)["outbox"] == 0 and time.monotonic() < started + 10:
            time.sleep(0.02)
        assert counts(deferred) == {"subscribers": 1, "subscriber_events": 2, "outbox": 1, "subscription_requests": 0}
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


def _queue_raw(app: Flask, email: str, sections: str) -> None:
    """A queued request as an earlier process left it (no checks: the rules may have changed since)."""
    with app.extensions["feedsvc.db"].session() as s:
        s.add(
            SubscriptionRequest(
                action=requests.SUBSCRIBE,
                email=email,
                sections=sections,
                lang="zh-CN",
                source="form",
                created_at=utcnow(),
            )
        )


def test_a_request_that_cannot_be_decided_is_dropped_and_does_not_block_the_rest(
    deferred: Flask, settings: Settings
) -> None:
    _queue_raw(deferred, "first@example.org", "gone")  # a section renamed in feedsvc.toml since it was queued
    _queue_raw(deferred, "second@example.org", "industry")
    assert requests.process(deferred.extensions["feedsvc.db"], settings) == 2
    with deferred.extensions["feedsvc.db"].session(readonly=True) as s:
        assert set(s.scalars(select(Subscriber.email))) == {"second@example.org"}
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    assert counts(deferred)["subscription_requests"] == 0


def test_the_worker_decides_requests_a_stopped_web_process_left(deferred: Flask, settings: Settings) -> None:
    from builders import cli_env
    from click.testing import CliRunner

    from feedsvc.cli import main

    _queue_raw(deferred, "left@example.org", "industry")
    env = cli_env(settings)
    result = CliRunner().invoke(main, ["worker", "--once"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with deferred.extensions["feedsvc.db"].session(readonly=True) as s:
        assert set(s.scalars(select(Subscriber.email))) == {"left@example.org"}
    assert counts(deferred)["subscription_requests"] == 0
