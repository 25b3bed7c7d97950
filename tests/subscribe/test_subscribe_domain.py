"""feedsvc.subscribers without the web: workflow, tokens, throttling, export, erasure."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select

from feedsvc import ratelimit
from feedsvc.config import Settings
from feedsvc.db.engine import Database, utcnow
from feedsvc.db.models import (
    ACTIVE,
    CANCELLED,
    PENDING,
    QUEUED,
    UNSUBSCRIBED,
    OutboxMessage,
    Subscriber,
    SubscriberEvent,
    SubscriberSection,
    Suppression,
)
from feedsvc.outbox.rules import stored_message
from feedsvc.subscribers import addresses, privacy, subscriptions, tokens
from feedsvc.subscribers.addresses import InvalidAddress
from feedsvc.subscribers.subscriptions import NoSections
from feedsvc.subscribers.tokens import CONFIRM, MANAGE, UNSUBSCRIBE, TokenError


def count(db: Database, model: type) -> int:
    with db.session(readonly=True) as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def outbox(db: Database) -> list[OutboxMessage]:
    with db.session(readonly=True) as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def subscriber(db: Database, email: str) -> Subscriber:
    with db.session(readonly=True) as s:
        found = s.scalars(select(Subscriber).where(Subscriber.email == email)).one()
        found.section_slugs  # noqa: B018 - load the sections while the session is open
        return found


def token_of(settings: Settings, db: Database, email: str, purpose: str) -> str:
    sub = subscriber(db, email)
    return tokens.make_token(settings, purpose, sub.id, sub.token_version)


def last_confirm_token(db: Database) -> str:
    """The token of the confirmation link in the newest confirmation mail of the outbox."""
    [*_, row] = [m for m in outbox(db) if m.kind in ("confirm", "reconfirm")]
    text = stored_message(row.id, row.kind, row.message).get_body(("plain",)).get_content()
    match = re.search(r"/confirm/([A-Za-z0-9._-]+)", text)
    assert match, text
    return match.group(1)


def confirmed(db: Database, settings: Settings, email: str, sections: list[str]) -> Subscriber:
    with db.session() as s:
        subscriptions.subscribe(s, settings, email, sections)
    with db.session() as s:
        subscriptions.confirm(s, settings, token_of(settings, db, email, CONFIRM))
    return subscriber(db, email)


# --- addresses --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Reader@Example.ORG", "reader@example.org"),
        ("  reader@example.org \n", "reader@example.org"),
        ("a@例子.广告", "a@xn--fsqu00a.xn--4rr70v"),  # the IDNA domain, which a To: header can carry
        ("a@xn--fsqu00a.xn--4rr70v", "a@xn--fsqu00a.xn--4rr70v"),
        ("ａ@ｅｘａｍｐｌｅ.ｃｏｍ", "a@example.com"),  # full-width: NFKC before anything else
    ],
)
def test_addresses_are_normalised(raw: str, normalised: str) -> None:
    assert addresses.normalise_email(raw) == normalised


@pytest.mark.parametrize(
    "raw", ["", "plain", "a@b", "a@localhost", "a@@example.org", "a b@example.org", "x" * 300, "用户@例子.广告"]
)
def test_bad_addresses_are_refused(raw: str) -> None:
    with pytest.raises(InvalidAddress):
        addresses.normalise_email(raw)


# --- subscribing ------------------------------------------------------------------------------------


def test_subscribe_creates_a_pending_subscriber_and_queues_one_confirmation(db: Database, settings: Settings) -> None:
    with db.session() as s:
        outcome = subscriptions.subscribe(s, settings, "Reader@Example.org", ["research", "industry", "nope"])
    assert outcome.action == "confirm_queued"
    sub = subscriber(db, "reader@example.org")
    assert (sub.status, sub.section_slugs, sub.source) == (PENDING, ["industry", "research"], "form")
    [row] = outbox(db)
    assert (row.kind, row.priority, row.state, row.recipient, row.subscriber_id) == (
        "confirm",
        0,
        QUEUED,
        "reader@example.org",
        sub.id,
    )
    assert row.message and b"/confirm/" in row.message


def test_one_mail_per_address_per_ten_minutes(db: Database, settings: Settings) -> None:
    start = utcnow()
    actions = []
    for minutes in (0, 1, 9, 10, 11, 25):
        with db.session() as s:
            outcome = subscriptions.subscribe(
                s, settings, "reader@example.org", ["industry"], now=start + timedelta(minutes=minutes)
            )
        actions.append(outcome.action)
    assert actions == ["confirm_queued", "throttled", "throttled", "confirm_queued", "throttled", "confirm_queued"]
    assert count(db, Subscriber) == 1
    assert count(db, OutboxMessage) == 3


def test_active_subscriber_gets_a_manage_link_and_keeps_their_sections(db: Database, settings: Settings) -> None:
    confirmed(db, settings, "reader@example.org", ["industry"])
    later = utcnow() + timedelta(minutes=11)
    with db.session() as s:
        outcome = subscriptions.subscribe(s, settings, "reader@example.org", ["capital"], now=later)
    assert outcome.action == "manage_queued"
    sub = subscriber(db, "reader@example.org")
    assert (sub.status, sub.section_slugs) == (ACTIVE, ["industry"])
    assert [m.kind for m in outbox(db)] == ["confirm", "welcome", "manage"]  # the welcome mail on confirming


def test_no_sections_is_refused_and_changes_nothing(db: Database, settings: Settings) -> None:
    with pytest.raises(NoSections), db.session() as s:
        subscriptions.subscribe(s, settings, "reader@example.org", ["unknown"])
    assert count(db, Subscriber) == 0


def test_confirm_activates_once_and_is_harmless_twice(db: Database, settings: Settings) -> None:
    with db.session() as s:
        subscriptions.subscribe(s, settings, "reader@example.org", ["industry"])
    token = token_of(settings, db, "reader@example.org", CONFIRM)
    for _ in range(2):
        with db.session() as s:
            sub = subscriptions.confirm(s, settings, token)
        assert sub.status == ACTIVE
    with db.session(readonly=True) as s:
        kinds = list(s.scalars(select(SubscriberEvent.kind).order_by(SubscriberEvent.id)))
    assert kinds.count("confirmed") == 1


def test_unsubscribe_cancels_queued_mail_and_resubscribing_needs_confirmation(db: Database, settings: Settings) -> None:
    sub = confirmed(db, settings, "reader@example.org", ["industry", "people"])
    now = utcnow()
    with db.session() as s:
        s.add(
            OutboxMessage(
                kind="issue",
                subscriber_id=sub.id,
                issue_number=398,
                sections="industry;people",
                recipient=sub.email,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
    for expected in (True, False):
        with db.session() as s:
            assert subscriptions.unsubscribe(s, s.get(Subscriber, sub.id), how="test") is expected
    assert [(m.kind, m.state) for m in outbox(db)] == [
        ("confirm", CANCELLED),
        ("welcome", CANCELLED),
        ("issue", CANCELLED),
    ]
    assert subscriber(db, sub.email).status == UNSUBSCRIBED
    # An old confirmation link does not bring the subscription back.
    with pytest.raises(TokenError) as error, db.session() as s:
        subscriptions.confirm(s, settings, token_of(settings, db, sub.email, CONFIRM))
    assert error.value.reason == "stale"
    with db.session() as s:
        outcome = subscriptions.subscribe(s, settings, sub.email, ["capital"], now=now + timedelta(minutes=11))
    assert outcome.action == "confirm_queued"
    # Asking again changes nothing until the owner confirms from the new mail (issue 16: consent).
    again = subscriber(db, sub.email)
    assert (again.status, again.section_slugs) == (UNSUBSCRIBED, ["industry", "people"])
    with db.session() as s:
        subscriptions.confirm(s, settings, last_confirm_token(db), now=now + timedelta(minutes=12))
    again = subscriber(db, sub.email)
    assert (again.status, again.section_slugs) == (ACTIVE, ["capital"])


def test_change_sections(db: Database, settings: Settings) -> None:
    sub = confirmed(db, settings, "reader@example.org", ["industry"])
    with db.session() as s:
        current = s.get(Subscriber, sub.id)
        assert subscriptions.change_sections(s, current, ["research", "content"], settings.publication)
        assert not subscriptions.change_sections(s, current, ["content", "research"], settings.publication)
        with pytest.raises(NoSections):
            subscriptions.change_sections(s, current, [], settings.publication)
    assert subscriber(db, sub.email).section_slugs == ["content", "research"]


# --- tokens -------------------------------------------------------------------------------------------


def test_tokens_are_per_purpose_and_revocable(db: Database, settings: Settings) -> None:
    sub = confirmed(db, settings, "reader@example.org", ["industry"])
    manage = tokens.make_token(settings, MANAGE, sub.id, sub.token_version)
    with db.session(readonly=True) as s:
        assert tokens.resolve(s, settings, MANAGE, manage).id == sub.id
        for purpose in (CONFIRM, UNSUBSCRIBE):  # a manage token is foreign to the other purposes
            with pytest.raises(TokenError):
                tokens.resolve(s, settings, purpose, manage)
        with pytest.raises(TokenError):  # tampered
            tokens.resolve(s, settings, MANAGE, manage[:-2] + ("AA" if manage[-2:] != "AA" else "BB"))
        other = settings.with_overrides(secret_key="another-installation")
        with pytest.raises(TokenError):  # another installation's key
            tokens.resolve(s, settings, MANAGE, tokens.make_token(other, MANAGE, sub.id, 1))
        with pytest.raises(TokenError):  # a subscriber that does not exist
            tokens.resolve(s, settings, MANAGE, tokens.make_token(settings, MANAGE, sub.id + 99, 1))
    with db.session() as s:
        assert subscriptions.reset_links(s, s.get(Subscriber, sub.id)) == 2
    with pytest.raises(TokenError), db.session(readonly=True) as s:
        tokens.resolve(s, settings, MANAGE, manage)


def test_confirmation_tokens_expire(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import itsdangerous.timed

    fresh = tokens.make_token(settings, CONFIRM, 1, 1)
    assert tokens.read_token(settings, CONFIRM, fresh) == (1, 1)
    signed_at = utcnow().timestamp() - tokens.CONFIRM_MAX_AGE.total_seconds() - 60
    monkeypatch.setattr(itsdangerous.timed, "time", SimpleNamespace(time=lambda: signed_at))
    old_confirm = tokens.make_token(settings, CONFIRM, 1, 1)
    old_manage = tokens.make_token(settings, MANAGE, 1, 1)
    monkeypatch.undo()
    with pytest.raises(TokenError) as error:
        tokens.read_token(settings, CONFIRM, old_confirm)
    assert error.value.reason == "expired"
    # Manage and unsubscribe tokens do not expire (RFC 8058 links live in old mail).
    assert tokens.read_token(settings, MANAGE, old_manage) == (1, 1)


@pytest.mark.parametrize("token", ["", "abc", "W10.x.y", "WzEsMV0", "." * 50, "../../etc/passwd", "ü" * 10])
def test_garbage_tokens_are_invalid(settings: Settings, token: str) -> None:
    with pytest.raises(TokenError) as error:
        tokens.read_token(settings, MANAGE, token)
    assert error.value.reason == "invalid"


def test_a_validly_signed_token_with_the_wrong_shape_is_invalid(settings: Settings) -> None:
    signer = URLSafeTimedSerializer(settings.secret_key, salt="feedsvc.manage")
    for payload in ({"id": 1}, [1], [1, "1"], [True, 1], "x"):
        with pytest.raises(TokenError):
            tokens.read_token(settings, MANAGE, signer.dumps(payload))


# --- export and erasure --------------------------------------------------------------------------------


def test_export_holds_everything_kept(db: Database, settings: Settings) -> None:
    sub = confirmed(db, settings, "reader@example.org", ["industry", "capital"])
    with db.session(readonly=True) as s:
        data = json.loads(privacy.export_json(s, s.get(Subscriber, sub.id)))
    assert data["email"] == "reader@example.org"
    assert data["status"] == ACTIVE
    assert data["sections"] == ["capital", "industry"]
    assert [e["event"] for e in data["events"]] == [
        "subscribe_requested",
        "confirm_mail_queued",
        "confirmed",
        "welcome_mail_queued",
    ]
    assert [(m["kind"], m["state"]) for m in data["mail"]] == [("confirm", "queued"), ("welcome", "queued")]
    assert data["confirmed_at"] is not None


def test_erase_removes_everything_but_a_hash_and_blocks_old_links(db: Database, settings: Settings) -> None:
    sub = confirmed(db, settings, "reader@example.org", ["industry"])
    manage = tokens.make_token(settings, MANAGE, sub.id, sub.token_version)
    with db.session() as s:
        privacy.erase(s, s.get(Subscriber, sub.id))
    for model in (Subscriber, SubscriberSection, SubscriberEvent, OutboxMessage):
        assert count(db, model) == 0, model
    with db.session(readonly=True) as s:
        [entry] = s.scalars(select(Suppression))
        assert entry.email_hash == privacy.email_hash("reader@example.org")
        assert "reader" not in entry.email_hash
        assert privacy.is_suppressed(s, "READER@example.org")
        with pytest.raises(TokenError):
            tokens.resolve(s, settings, MANAGE, manage)
    # Subscribing again through double opt-in is the reader's own consent: it lifts the suppression.
    with db.session() as s:
        subscriptions.subscribe(s, settings, "reader@example.org", ["industry"])
    again = subscriber(db, "reader@example.org")
    assert again.id != sub.id  # ids are never reused, so the erased subscriber's links stay dead
    with db.session(readonly=True) as s:
        assert privacy.is_suppressed(s, "reader@example.org")
    with db.session() as s:
        subscriptions.confirm(s, settings, token_of(settings, db, "reader@example.org", CONFIRM))
    with db.session(readonly=True) as s:
        assert not privacy.is_suppressed(s, "reader@example.org")


def test_unconfirmed_signups_are_purged_after_thirty_days(db: Database, settings: Settings) -> None:
    start = utcnow()
    with db.session() as s:
        subscriptions.subscribe(s, settings, "old@example.org", ["industry"], now=start - timedelta(days=31))
        subscriptions.subscribe(s, settings, "new@example.org", ["industry"], now=start - timedelta(days=1))
    with db.session() as s:  # a stranger keeps submitting the old address: that is no reason to keep it
        subscriptions.subscribe(s, settings, "old@example.org", ["people"], now=start - timedelta(hours=1))
    confirmed(db, settings, "kept@example.org", ["industry"])
    with db.session() as s:
        assert privacy.purge_unconfirmed(s, now=start) == 1
    with db.session(readonly=True) as s:
        assert sorted(s.scalars(select(Subscriber.email))) == ["kept@example.org", "new@example.org"]


def test_subscriber_rows_for_export(db: Database, settings: Settings) -> None:
    confirmed(db, settings, "b@example.org", ["research", "industry"])
    with db.session() as s:
        subscriptions.subscribe(s, settings, "a@example.org", ["people"])
    with db.session(readonly=True) as s:
        assert list(privacy.subscriber_rows(s)) == [
            ("a@example.org", PENDING, ["people"]),
            ("b@example.org", ACTIVE, ["industry", "research"]),
        ]
        assert list(privacy.subscriber_rows(s, ACTIVE)) == [("b@example.org", ACTIVE, ["industry", "research"])]


# --- rate limits ----------------------------------------------------------------------------------------


def test_rate_limit_counts_per_key_and_window(db: Database) -> None:
    limit = ratelimit.Limit.parse("3/60")
    key = ratelimit.client_key("signup", "192.0.2.1", "secret")
    assert "192.0.2.1" not in key
    results = []
    for t in (0, 1, 2, 3, 60):
        with db.session() as s:
            results.append(ratelimit.hit(s, key, limit, 1_000_020 + t))
    assert results == [True, True, True, False, True]  # 1_000_080 starts a new window
    with db.session() as s:
        assert ratelimit.hit(s, ratelimit.client_key("signup", "192.0.2.2", "secret"), limit, 1_000_022)
        assert ratelimit.prune(s, 1_000_020 + 86_400 * 2) == 2


def test_tokens_do_not_show_subscriber_ids(settings: Settings) -> None:
    masked = [tokens.mask_id(settings, n) for n in range(1, 200)]
    assert len(set(masked)) == 199 and all(0 <= m < 2**64 for m in masked)
    assert [tokens.mask_id(settings, m, reverse=True) for m in masked] == list(range(1, 200))
    assert sorted(masked) != masked  # no order to read a subscriber count from
    token = tokens.make_token(settings, "manage", 7, 1)
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert payload[0] not in (7, "7") and payload[1] == 1
    assert tokens.read_token(settings, "manage", token) == (7, 1)
    other = settings.with_overrides(secret_key="another-secret-key-0123456789")
    assert tokens.mask_id(other, 7) != tokens.mask_id(settings, 7)
    # A well-signed payload whose number unmasks to no possible id is an invalid token, never a query.
    impossible = [
        raw
        for raw in (0, 1, 2, 3, 2**64 - 1)
        if not 0 < tokens.mask_id(settings, raw, reverse=True) <= tokens.MAX_SUBSCRIBER_ID
    ]
    assert impossible  # 2**31 of 2**64 numbers are possible ids: these small ones almost surely are not
    for raw in impossible:
        forged = tokens._serializer(settings, "manage").dumps([raw, 1])
        with pytest.raises(tokens.TokenError):
            tokens.read_token(settings, "manage", forged)
