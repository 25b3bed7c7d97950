"""Sign-ups at scale (issue 13): queued requests are decided in batches, and the web request's count and queue
are single statements (on PostgreSQL each its own transaction, the count's without waiting for its flush)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import event, func, select

from feedsvc import ratelimit
from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.db.models import OutboxMessage, Subscriber, SubscriberEvent, SubscriptionRequest
from feedsvc.subscribers import requests, subscriptions


def _count(db: Database, table: type) -> int:
    with db.session(readonly=True) as s:
        return s.scalar(select(func.count()).select_from(table)) or 0


def test_queued_requests_are_decided_in_one_transaction_with_one_mail_per_address(
    db: Database, settings: Settings
) -> None:
    with db.session() as s:
        subscriptions.subscribe(s, settings, "known@example.org", ["industry"])  # mailed moments ago
    with db.standalone() as connection:
        for email in ("b@example.org", "a@example.org", "b@example.org", "known@example.org", "c@example.org"):
            requests.queue(connection, settings, requests.SUBSCRIBE, email, ["research"], lang="en")
    commits: list[object] = []

    def committed(connection: object) -> None:
        commits.append(connection)

    event.listen(db.engine, "commit", committed)
    try:
        assert requests.process(db, settings) == 5
    finally:
        event.remove(db.engine, "commit", committed)
    assert len(commits) == 1  # one DELETE took all five, one COMMIT decided them
    with db.session(readonly=True) as s:
        mail = sorted(s.scalars(select(OutboxMessage.recipient)))
        langs = dict(s.execute(select(Subscriber.email, Subscriber.lang)).all())
    # a new address is created with its first mail claimed; the second request for it, and the address mailed
    # moments ago, are throttled
    assert mail == ["a@example.org", "b@example.org", "c@example.org", "known@example.org"]
    assert langs == {"known@example.org": "zh-CN", "a@example.org": "en", "b@example.org": "en", "c@example.org": "en"}
    assert _count(db, SubscriberEvent) == 2 * 4 and _count(db, SubscriptionRequest) == 0


def test_a_batch_with_a_request_that_cannot_be_decided_is_decided_one_by_one(db: Database, settings: Settings) -> None:
    with db.standalone() as connection:
        requests.queue(connection, settings, requests.SUBSCRIBE, "first@example.org", ["industry"], lang="en")
        connection.execute(  # as an earlier process left it: its section was removed from feedsvc.toml since
            sa.insert(SubscriptionRequest.__table__).values(
                action=requests.SUBSCRIBE,
                email="gone@example.org",
                sections="gone",
                lang="en",
                source="form",
                created_at=sa.func.now(),
            )
        )
        requests.queue(connection, settings, requests.SUBSCRIBE, "last@example.org", ["industry"], lang="en")
    assert requests.process(db, settings) == 3
    with db.session(readonly=True) as s:
        assert set(s.scalars(select(Subscriber.email))) == {"first@example.org", "last@example.org"}
    assert _count(db, OutboxMessage) == 2 and _count(db, SubscriptionRequest) == 0


def test_a_standalone_rate_limit_hit_counts_and_leaves_the_connection_durable(db: Database) -> None:
    limit = ratelimit.Limit.parse("2/60")
    key = ratelimit.client_key("signup", "192.0.2.7", "secret")
    with db.standalone() as connection:
        assert ratelimit.hit(connection, key, limit, 1_000_000)
        after = connection.exec_driver_sql("SHOW synchronous_commit").scalar() if db.dialect == "postgresql" else ""
    with db.standalone() as connection:
        assert ratelimit.hit(connection, key, limit, 1_000_001)
        assert not ratelimit.hit(connection, key, limit, 1_000_002)  # each hit committed and counted
    assert after == ("on" if db.dialect == "postgresql" else "")  # the relaxed flush was the statement's own
