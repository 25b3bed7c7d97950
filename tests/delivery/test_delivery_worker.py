"""The sending worker against loopback SMTP servers, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from pathlib import Path

import pytest
from delivery_support import add_subscribers, subscribe_many
from smtp_misbehaving import MisbehavingSmtp
from sqlalchemy import func, select, text, update

from feedsvc.bounces import verp
from feedsvc.config import Settings
from feedsvc.content.model import Issue
from feedsvc.db.engine import Database, utcnow
from feedsvc.db.models import ACTIVE, BOUNCED, OutboxMessage, Subscriber
from feedsvc.mail import newsletter
from feedsvc.mail.transport import SmtpTransport
from feedsvc.outbox import sends
from feedsvc.outbox.renders import VariantCache
from feedsvc.outbox.retry import RetryPolicy
from feedsvc.outbox.worker import SendWorker
from feedsvc.subscribers import privacy

FAST_RETRY = RetryPolicy(base_seconds=0, jitter=0, deadline_seconds=3600, bounce_limit=1)


def publish(db: Database, issue: Issue) -> sends.PublishResult:
    with db.session() as session:
        return sends.publish(session, issue, issue.source and open(issue.source, encoding="utf-8").read())


def worker(db: Database, settings: Settings, url: str, **kwargs: object) -> SendWorker:
    kwargs.setdefault("policy", FAST_RETRY)
    return SendWorker(db, settings, transport_factory=lambda: SmtpTransport(url), **kwargs)  # type: ignore[arg-type]


def states(db: Database, number: int) -> dict[str, int]:
    with db.session() as session:
        rows = session.execute(
            select(OutboxMessage.state, func.count())
            .where(OutboxMessage.issue_number == number)
            .group_by(OutboxMessage.state)
        )
        return {str(state): int(count) for state, count in rows}


def test_every_subscriber_gets_the_issue_exactly_once(db: Database, settings: Settings, seed_issue: Issue) -> None:
    ids = subscribe_many(db, 150, ["industry", "research"])
    subscribe_many(db, 50, list(seed_issue.slugs), prefix="all")
    assert publish(db, seed_issue).enqueued == 200
    with MisbehavingSmtp() as server:
        stats = worker(db, settings, server.url, concurrency=4).run(until_idle=True)
    assert stats.sent == 200
    assert len(server.accepted) == 200 and set(server.accepted.values()) == {1}
    assert states(db, seed_issue.number) == {"sent": 200}
    with db.session() as session:
        row = session.scalars(
            select(OutboxMessage).where(OutboxMessage.subscriber_id == ids["reader0@example.org"])
        ).one()
    sealed = verp.message_id_part(settings, row.id)
    assert row.message_id == f"<issue.{seed_issue.number}.{sealed}@feedsvc.example.org>"
    assert row.sent_at is not None and row.lease_owner is None
    assert sorted(server.message_ids) == sorted(set(server.message_ids))


def test_the_message_is_personal_and_carries_only_the_chosen_sections(
    db: Database, settings: Settings, seed_issue: Issue
) -> None:
    subscribe_many(db, 1, ["research"], prefix="solo")
    publish(db, seed_issue)
    with MisbehavingSmtp() as server:
        worker(db, settings, server.url, concurrency=1).run(until_idle=True)
    [received] = server.received
    message = received.message
    assert message["To"] == "solo0@example.org"
    assert message["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/unsubscribe/")
    html = message.get_body(("html",)).get_content()
    research = next(s for s in seed_issue.sections if s.slug == "research")
    industry = next(s for s in seed_issue.sections if s.slug == "industry")
    assert research.items[0].title.split()[0] in html
    assert industry.items[0].title not in html
    assert "FEEDSVC-" not in html  # every placeholder was filled


def test_misbehaving_server_good_delivered_bad_failed_nothing_lost(
    db: Database, settings: Settings, seed_issue: Issue
) -> None:
    ids = subscribe_many(db, 120, ["industry"])
    bad = {f"reader{i}@example.org" for i in range(0, 120, 15)}
    publish(db, seed_issue)
    with MisbehavingSmtp(reject=bad, temp_fail_rate=0.3, drop_rate=0.05, seed=5) as server:
        stats = worker(db, settings, server.url, concurrency=3).run(until_idle=True)
    good = set(ids) - bad
    assert set(server.accepted) == good and set(server.accepted.values()) == {1}
    assert server.dropped > 0 and sum(server.temporary.values()) > 0
    assert stats.retried > 0
    assert states(db, seed_issue.number) == {"sent": len(good), "failed": len(bad)}
    with db.session() as session:
        bounced = set(session.scalars(select(Subscriber.email).where(Subscriber.status == BOUNCED)))
        errors = set(session.scalars(select(OutboxMessage.last_error).where(OutboxMessage.state == "failed")))
    assert bounced == bad  # bounce limit 1 in FAST_RETRY
    assert all("550" in e for e in errors)


def test_temporary_failures_stop_at_the_deadline(db: Database, settings: Settings, seed_issue: Issue) -> None:
    subscribe_many(db, 3, ["industry"])
    publish(db, seed_issue)
    with MisbehavingSmtp(temp_fail_rate=1.0) as server:
        policy = RetryPolicy(base_seconds=0, jitter=0, deadline_seconds=0)
        worker(db, settings, server.url, policy=policy).run(until_idle=True)
    assert states(db, seed_issue.number) == {"failed": 3}
    with db.session() as session:
        errors = list(session.scalars(select(OutboxMessage.last_error)))
    assert all(e.startswith("gave up after 1 attempts") for e in errors)


def test_retries_wait_for_their_backoff(db: Database, settings: Settings, seed_issue: Issue) -> None:
    subscribe_many(db, 2, ["industry"])
    publish(db, seed_issue)
    with MisbehavingSmtp(temp_fail_rate=1.0) as server:
        worker(db, settings, server.url, policy=RetryPolicy(base_seconds=600, jitter=0)).run(until_idle=True)
    assert states(db, seed_issue.number) == {"queued": 2}
    with db.session() as session:
        rows = list(session.scalars(select(OutboxMessage)))
    assert all(r.attempts == 1 and r.next_attempt_at > utcnow() + dt.timedelta(seconds=500) for r in rows)


def test_unsubscribed_after_enqueue_is_not_sent(db: Database, settings: Settings, seed_issue: Issue) -> None:
    ids = subscribe_many(db, 10, ["industry"])
    publish(db, seed_issue)
    with db.session() as session:
        session.execute(
            update(Subscriber).where(Subscriber.id == ids["reader3@example.org"]).values(status="unsubscribed")
        )
        privacy.delete_subscribers(session, Subscriber.id == ids["reader4@example.org"])
    with MisbehavingSmtp() as server:
        stats = worker(db, settings, server.url).run(until_idle=True)
    assert "reader3@example.org" not in server.accepted and len(server.accepted) == 8
    assert stats.skipped == 1  # the erased one's row went with it (privacy.delete_subscribers)
    assert states(db, seed_issue.number) == {"sent": 8, "skipped": 1}


def test_pause_resume_and_cancel(db: Database, settings: Settings, seed_issue: Issue) -> None:
    subscribe_many(db, 20, ["industry"])
    publish(db, seed_issue)
    with db.session() as session:
        sends.pause(session, seed_issue.number)
    with MisbehavingSmtp() as server:
        assert worker(db, settings, server.url).run(until_idle=True).sent == 0
        assert states(db, seed_issue.number) == {"queued": 20}
        with db.session() as session:
            sends.resume(session, seed_issue.number)
            sends.cancel(session, seed_issue.number)
        assert worker(db, settings, server.url).run(until_idle=True).sent == 0
        assert states(db, seed_issue.number) == {"cancelled": 20}
        with db.session() as session:
            sends.resume(session, seed_issue.number)
        assert worker(db, settings, server.url).run(until_idle=True).sent == 20
    assert len(server.accepted) == 20


def test_a_pause_during_the_send_hands_back_unstarted_rows(db: Database, settings: Settings, seed_issue: Issue) -> None:
    subscribe_many(db, 60, ["industry"])
    publish(db, seed_issue)
    with MisbehavingSmtp() as server:
        paused = threading.Event()

        def pause_after_ten(stats: object) -> None:
            if server.total_accepted >= 10 and not paused.is_set():
                with db.session() as session:
                    sends.pause(session, seed_issue.number)
                paused.set()

        # A slow rate keeps most rows waiting in the worker when the pause comes.
        run = worker(db, settings, server.url, concurrency=2, rate=50.0, tick_interval=0, on_tick=pause_after_ten)
        stats = run.run(until_idle=True)
    assert paused.is_set()
    counted = states(db, seed_issue.number)
    assert counted.get("sending", 0) == 0
    assert counted["sent"] == server.total_accepted == stats.sent < 60
    assert counted["queued"] == 60 - stats.sent
    with db.session() as session:
        attempts = set(session.scalars(select(OutboxMessage.attempts).where(OutboxMessage.state == "queued")))
    assert attempts == {0}  # handed back, not counted as tried


def test_expired_leases_are_taken_over_and_a_late_outcome_is_not_recorded(
    db: Database, settings: Settings, seed_issue: Issue
) -> None:
    subscribe_many(db, 5, ["industry"])
    publish(db, seed_issue)
    past = utcnow() - dt.timedelta(seconds=1)
    with db.session() as session:  # a worker that died holding every row
        session.execute(
            update(OutboxMessage).values(state="sending", lease_owner="dead:1:x", lease_expires_at=past, attempts=1)
        )
    with MisbehavingSmtp() as server:
        stats = worker(db, settings, server.url).run(until_idle=True)
    assert stats.requeued_expired == 5 and stats.sent == 5
    assert states(db, seed_issue.number) == {"sent": 5}
    from feedsvc.outbox.queue import Job, Outcome, claim, record

    with db.session() as session:
        row = session.scalars(select(OutboxMessage).limit(1)).one()
        job = Job(
            row.id, row.kind, row.subscriber_id, row.recipient, row.issue_number, row.sections, None, 1, row.created_at
        )
        late = record(session, "dead:1:x", [Outcome(job, "temporary", error="451 late")], FAST_RETRY, utcnow())
    assert late.lost == 1
    assert states(db, seed_issue.number) == {"sent": 5}
    with db.session() as session:  # a late 5xx from the dead worker counts no bounce against the reader
        late = record(session, "dead:1:x", [Outcome(job, "permanent", error="550 late")], FAST_RETRY, utcnow())
    assert (late.lost, late.failed) == (1, 0)
    with db.session(readonly=True) as session:
        assert session.scalars(select(Subscriber.bounce_count).where(Subscriber.id == job.subscriber_id)).one() == 0
    assert states(db, seed_issue.number) == {"sent": 5}
    # While a live worker holds the row again, the dead one's late outcome is not recorded either.
    with db.session() as session:
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id == job.id).values(state="queued", next_attempt_at=past)
        )
    with db.session() as session:
        claimed, _ = claim(session, "alive:1:y", limit=10, lease_seconds=60, now=utcnow())
    assert [j.id for j in claimed] == [job.id]
    with db.session() as session:
        late = record(session, "dead:1:x", [Outcome(job, "sent", message_id="<late@x>")], FAST_RETRY, utcnow())
    assert late.lost == 1
    with db.session(readonly=True) as session:
        row = session.get(OutboxMessage, job.id)
        assert row is not None and (row.state, row.lease_owner) == ("sending", "alive:1:y")


def test_several_workers_share_a_send_without_doubles(db: Database, settings: Settings, seed_issue: Issue) -> None:
    subscribe_many(db, 400, ["industry"])
    publish(db, seed_issue)
    with MisbehavingSmtp() as server:
        databases = [Database(settings.database_url) for _ in range(4)]
        workers = [worker(d, settings, server.url, concurrency=2, batch_size=10) for d in databases]
        threads = [threading.Thread(target=w.run, kwargs={"until_idle": True}) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for d in databases:
            d.dispose()
    assert len(server.accepted) == 400 and set(server.accepted.values()) == {1}
    assert sum(w.stats.sent for w in workers) == 400
    assert sum(1 for w in workers if w.stats.sent) >= 2  # the work really was shared
    assert states(db, seed_issue.number) == {"sent": 400}


def test_transactional_mail_goes_first_and_through_the_same_worker(
    db: Database, settings: Settings, seed_issue: Issue
) -> None:
    from feedsvc.subscribers import subscriptions

    subscribe_many(db, 5, ["industry"])
    publish(db, seed_issue)
    with db.session() as session:
        subscriptions.subscribe(session, settings, "new@example.org", ["industry"])
    with MisbehavingSmtp() as server:
        worker(db, settings, server.url, concurrency=1).run(until_idle=True)
    order = [address for received in server.received for address in received.rcpt_tos]
    assert order[0] == "new@example.org" and len(order) == 6


def test_active_subscribers_only(db: Database, settings: Settings, seed_issue: Issue) -> None:
    with db.session() as session:
        add_subscribers(session, [("a@example.org", ACTIVE, ["industry"]), ("p@example.org", "pending", ["industry"])])
    publish(db, seed_issue)
    with MisbehavingSmtp() as server:
        worker(db, settings, server.url).run(until_idle=True)
    assert set(server.accepted) == {"a@example.org"}


def test_the_retry_deadline_counts_from_the_first_attempt_not_the_enqueue(
    db: Database, settings: Settings, seed_issue: Issue
) -> None:
    # A long rate-limited send reaches its last rows days after the enqueue: they still get their retries.
    subscribe_many(db, 2, ["industry"])
    publish(db, seed_issue)
    long_ago = utcnow() - dt.timedelta(days=3)
    with db.session() as session:
        session.execute(update(OutboxMessage).values(created_at=long_ago, next_attempt_at=long_ago))
    policy = RetryPolicy(base_seconds=0, jitter=0, deadline_seconds=86400)
    from feedsvc.outbox.queue import Outcome, claim, record

    with db.session() as session:
        jobs, _ = claim(session, "w", limit=10, lease_seconds=60, now=utcnow())
    first = {j.id: j.first_attempt_at for j in jobs}
    with db.session() as session:
        record(session, "w", [Outcome(j, "temporary", error="451 later") for j in jobs], policy, utcnow())
    assert states(db, seed_issue.number) == {"queued": 2}  # retried, although enqueued 3 days ago
    with db.session() as session:
        again, _ = claim(session, "w", limit=10, lease_seconds=60, now=utcnow())
    assert {j.id: j.first_attempt_at for j in again} == first  # kept from the first claim
    assert all(v is not None and v > long_ago for v in first.values())


def test_a_database_error_is_survived_and_no_outcome_is_lost(
    db: Database, settings: Settings, seed_issue: Issue, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    import feedsvc.outbox.queue

    subscribe_many(db, 30, ["industry"])
    publish(db, seed_issue)
    real_record, real_claim = feedsvc.outbox.queue.record, feedsvc.outbox.queue.claim
    failures = {"record": 2, "claim": 1}

    def flaky(name, real):  # type: ignore[no-untyped-def]
        def step(*args, **kwargs):  # type: ignore[no-untyped-def]
            if failures[name]:
                failures[name] -= 1
                raise OperationalError("UPDATE outbox", {}, Exception("database is locked"))
            return real(*args, **kwargs)

        return step

    monkeypatch.setattr(feedsvc.outbox.queue, "record", flaky("record", real_record))
    monkeypatch.setattr(feedsvc.outbox.queue, "claim", flaky("claim", real_claim))
    with MisbehavingSmtp() as server:
        stats = worker(db, settings, server.url, concurrency=2).run(until_idle=True)
    assert failures == {"record": 0, "claim": 0}
    assert stats.sent == 30 and set(server.accepted.values()) == {1} and len(server.accepted) == 30
    assert states(db, seed_issue.number) == {"sent": 30}


def test_a_claimed_row_goes_out_as_the_built_message_byte_for_byte(
    db: Database, settings: Settings, seed_issue: Issue
) -> None:
    from email import message_from_bytes
    from email.utils import parsedate_to_datetime

    from feedsvc.mail import message as mail_message
    from feedsvc.outbox.queue import claim
    from feedsvc.subscribers import tokens

    subscribe_many(db, 1, ["industry"])
    publish(db, seed_issue)
    with db.session() as session:
        [job], _ = claim(session, "w", limit=10, lease_seconds=60, now=utcnow())
    assert job.subscriber_id is not None and job.issue_number == seed_issue.number
    cache = VariantCache(db, settings)
    envelope, data = cache.prepare(job)
    publication = settings.publication
    message_id = mail_message.make_message_id(
        publication, "issue", seed_issue.number, verp.message_id_part(settings, job.id)
    )
    assert (envelope.sender, envelope.recipients, envelope.message_id) == (
        publication.from_address,
        (job.recipient,),
        message_id,
    )
    links = mail_message.Links(
        manage=tokens.link(settings, tokens.MANAGE, job.subscriber_id, job.token_version),
        unsubscribe=tokens.link(settings, tokens.UNSUBSCRIBE, job.subscriber_id, job.token_version),
    )
    sent_at = parsedate_to_datetime(str(message_from_bytes(data)["Date"]))
    rendered = cache.rendered(seed_issue.number, job.sections or "", job.lang)
    built = mail_message.build_message(rendered, job.recipient, links, publication, message_id=message_id, date=sent_at)
    assert data == mail_message.serialise(built)


def test_leases_are_renewed_while_a_slow_send_holds_rows(db: Database, settings: Settings, seed_issue: Issue) -> None:
    # Two workers with a 3-second lease and a slow server (0.3 s a message, one connection, 20 rows claimed at
    # a time): rows wait in a worker for up to 6 s, twice the lease, so only lease renewal (every second) keeps
    # the other worker, which re-queues expired leases every 1.5 s, from taking them over and sending them
    # again. (With a 1-second lease a busy machine's stall of two thirds of a second let one expire.)
    subscribe_many(db, 40, ["industry"])
    publish(db, seed_issue)
    short = settings.with_overrides(lease_seconds=3)

    class SlowTransport(SmtpTransport):
        def send(self, envelope, data):  # type: ignore[no-untyped-def]
            time.sleep(0.3)
            super().send(envelope, data)

    with MisbehavingSmtp() as server:
        workers = [
            SendWorker(
                Database(short.database_url),
                short,
                concurrency=1,
                batch_size=20,
                transport_factory=lambda: SlowTransport(server.url),
            )
            for _ in range(2)
        ]
        threads = [threading.Thread(target=w.run, kwargs={"until_idle": True}) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for w in workers:
            w.db.dispose()
    assert len(server.accepted) == 40 and set(server.accepted.values()) == {1}
    assert sum(w.stats.requeued_expired for w in workers) == 0 and sum(w.stats.lost for w in workers) == 0
    assert states(db, seed_issue.number) == {"sent": 40}


def test_a_connection_lost_after_the_server_took_the_message_is_retried_and_counted(
    db: Database, settings: Settings, seed_issue: Issue
) -> None:
    # The server stores the message, then the connection dies before its "250": the worker cannot know it
    # arrived, so it sends again (same Message-ID). Exactly those messages arrive twice, nothing is lost.
    subscribe_many(db, 80, ["industry"])
    publish(db, seed_issue)
    with MisbehavingSmtp(drop_after_accept=0.1, seed=9) as server:
        worker(db, settings, server.url, concurrency=2).run(until_idle=True)
    assert server.dropped_after_accept > 0
    assert len(server.accepted) == 80
    assert sum(server.accepted.values()) == 80 + server.dropped_after_accept
    # Each re-send carried the same Message-ID (one message may have lost its "250" twice).
    assert len(set(server.message_ids)) == 80
    assert len(server.message_ids) - 80 == server.dropped_after_accept
    assert states(db, seed_issue.number) == {"sent": 80}


def test_the_render_cache_keeps_only_the_latest_issues(
    db: Database, settings: Settings, seed_issue: Issue, seed_path: Path
) -> None:
    cache = VariantCache(db, settings)
    cache.KEEP_ISSUES = 2
    renders: dict[int, newsletter.RenderedEmail] = {}
    for number in (501, 502, 503):
        source = seed_path.read_text(encoding="utf-8").replace("第 398 期", f"第 {number} 期")
        with db.session() as session:
            sends.publish(session, dataclasses.replace(seed_issue, number=number), source)
        renders[number] = cache.rendered(number, "technology", "zh-CN")
        assert renders[number].number == number
    # The recorded Markdown changes under the cache: the two kept issues render as they were, the
    # oldest one, let go, is read and rendered anew.
    with db.session() as session:
        session.execute(text("UPDATE issues SET source = replace(source, '行业动态周报', '改过的周报')"))
    assert cache.rendered(503, "technology", "zh-CN").subject == renders[503].subject
    assert cache.rendered(502, "technology", "zh-CN").subject == renders[502].subject
    assert cache.rendered(501, "technology", "zh-CN").subject.startswith("改过的周报")


def test_the_worker_takes_its_retry_policy_from_the_settings(
    db: Database, settings: Settings, seed_issue: Issue
) -> None:
    # No policy passed in: FEEDSVC_BOUNCE_LIMIT=1 from the environment makes one 5xx bounce the reader.
    subscribe_many(db, 3, ["industry"])
    publish(db, seed_issue)
    configured = settings.with_overrides(extra={**settings.extra, "FEEDSVC_BOUNCE_LIMIT": "1"})
    with MisbehavingSmtp(reject={"reader1@example.org"}) as server:
        runner = SendWorker(db, configured, transport_factory=lambda: SmtpTransport(server.url))
        runner.run(until_idle=True)
    assert runner.policy == RetryPolicy(bounce_limit=1)
    with db.session(readonly=True) as session:
        bounced = set(session.scalars(select(Subscriber.email).where(Subscriber.status == BOUNCED)))
    assert bounced == {"reader1@example.org"}
