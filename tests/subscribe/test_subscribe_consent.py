"""Issue 16 for subscribers: consent only from the owner, formula-safe CSV, exact tokens, sendable addresses."""

from __future__ import annotations

import csv
import io
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from subscribe_support import Mailbox, csrf, link_in, signup, the_welcome

from feedsvc.bounces.classify import BouncePolicy
from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.db.models import ACTIVE, BOUNCED, PENDING, UNSUBSCRIBED, OutboxMessage, Subscriber
from feedsvc.subscribers import importer, privacy, subscriptions, tokens

FORMULA = "=cmd|'/ccalc'!a0@example.com"  # valid for email-validator


def db_of(app: Flask) -> Database:
    return app.extensions["feedsvc.db"]


def state_of(app: Flask, email: str) -> tuple[str, list[str]]:
    with db_of(app).session(readonly=True) as s:
        sub = s.scalars(select(Subscriber).where(Subscriber.email == email)).one()
        return sub.status, sub.section_slugs


def window_passes(app: Flask) -> None:
    """As if the 10-minute notice window had passed for every address."""
    with db_of(app).session() as s:
        s.execute(update(Subscriber).values(notified_at=None))


def confirm_from(client: FlaskClient, path: str):
    """What a click on the page's confirm button does (the CSRF token of this browser session)."""
    return client.post(path, data={"csrf_token": csrf(client)})


def subscribed(client: FlaskClient, mailbox: Mailbox, email: str, sections: list[str]) -> str:
    """Sign up and confirm; the manage page path."""
    signup(client, email, sections)
    [mail] = mailbox.deliver()
    done = confirm_from(client, link_in(mail, "confirm"))
    match = re.search(r'href="(/manage/[^"]+)"', done.get_data(as_text=True))
    assert match
    the_welcome(mailbox.deliver(), email)  # confirming sends the welcome mail
    return match.group(1)


# --- 1. consent ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ended", [UNSUBSCRIBED, BOUNCED])
def test_a_stranger_cannot_undo_an_unsubscribe_or_a_bounce(
    app: Flask, client: FlaskClient, mailbox: Mailbox, settings: Settings, ended: str
) -> None:
    manage = subscribed(client, mailbox, "victim@example.org", ["industry"])
    if ended == UNSUBSCRIBED:
        client.post(manage, data={"csrf_token": csrf(client, manage), "action": "unsubscribe"})
    else:
        with db_of(app).session() as s:
            sid = s.scalar(select(Subscriber.id))
            assert sid is not None
            subscriptions.record_bounce(s, sid, 1, "550 no such user")
    window_passes(app)
    stranger = csrf(client)
    response = client.post(
        "/subscribe", data={"csrf_token": stranger, "email": "victim@example.org", "sections": ["capital"]}
    )
    assert response.status_code == 200
    assert state_of(app, "victim@example.org") == (ended, ["industry"])
    [mail] = mailbox.deliver()  # the owner is asked, and only their click counts
    assert state_of(app, "victim@example.org") == (ended, ["industry"])
    assert confirm_from(client, link_in(mail, "confirm")).status_code == 200
    assert state_of(app, "victim@example.org") == (ACTIVE, ["capital"])


def test_a_confirmation_link_from_before_the_unsubscribe_stays_stale(
    app: Flask, client: FlaskClient, mailbox: Mailbox
) -> None:
    signup(client, "reader@example.org", ["industry"])
    [first] = mailbox.deliver()
    old = link_in(first, "confirm")
    assert confirm_from(client, old).status_code == 200
    with db_of(app).session() as s:
        sub = s.scalars(select(Subscriber)).one()
        subscriptions.unsubscribe(s, sub)
    window_passes(app)
    signup(client, "reader@example.org", ["capital"])
    [second] = mailbox.deliver()
    assert confirm_from(client, old).status_code == 409
    assert state_of(app, "reader@example.org") == (UNSUBSCRIBED, ["industry"])
    assert confirm_from(client, link_in(second, "confirm")).status_code == 200
    assert state_of(app, "reader@example.org") == (ACTIVE, ["capital"])


def test_a_stranger_cannot_overwrite_a_pending_subscribers_sections(
    app: Flask, client: FlaskClient, mailbox: Mailbox
) -> None:
    signup(client, "owner@example.org", ["industry", "people"])
    [own] = mailbox.deliver()
    window_passes(app)
    signup(client, "owner@example.org", ["capital"])
    [strangers] = mailbox.deliver()
    assert state_of(app, "owner@example.org") == (PENDING, ["industry", "people"])
    page = client.get(link_in(own, "confirm")).get_data(as_text=True)
    assert "资本" not in page  # each page shows what its own link confirms
    assert "资本" in client.get(link_in(strangers, "confirm")).get_data(as_text=True)
    assert confirm_from(client, link_in(own, "confirm")).status_code == 200
    assert state_of(app, "owner@example.org") == (ACTIVE, ["industry", "people"])
    # The stranger's link, clicked later, changes nothing: the subscription is confirmed already.
    assert confirm_from(client, link_in(strangers, "confirm")).status_code == 200
    assert state_of(app, "owner@example.org") == (ACTIVE, ["industry", "people"])


@pytest.mark.parametrize("consented", [True, False])
def test_an_import_never_reactivates_an_address_that_ever_left(
    app: Flask, client: FlaskClient, mailbox: Mailbox, settings: Settings, consented: bool
) -> None:
    for email in ("left@example.org", "was-left@example.org", "bounced@example.org"):
        subscribed(client, mailbox, email, ["industry"])
    with db_of(app).session() as s:
        people = {sub.email: sub for sub in s.scalars(select(Subscriber))}
        subscriptions.unsubscribe(s, people["left@example.org"])
        subscriptions.unsubscribe(s, people["was-left@example.org"])
        subscriptions.record_bounce(s, people["bounced@example.org"].id, 1, "550")
    with db_of(app).session() as s:  # as old code left it: a stranger's sign-up made them pending again
        s.execute(update(Subscriber).where(Subscriber.email == "was-left@example.org").values(status=PENDING))
    data = b"email,sections\nleft@example.org,\nwas-left@example.org,\nbounced@example.org,\n"
    with db_of(app).session() as s:
        result = importer.import_rows(s, settings, importer.read(data, settings), consented=consented)
    assert (result.left, result.activated, result.confirmations) == (3, 0, 0)
    assert state_of(app, "left@example.org")[0] == UNSUBSCRIBED
    assert state_of(app, "was-left@example.org")[0] == PENDING
    assert state_of(app, "bounced@example.org")[0] == BOUNCED
    assert mailbox.deliver() == []


# --- 2. CSV formula injection ------------------------------------------------------------------------------


def test_export_writes_formula_cells_as_text_and_import_reads_them_back(app: Flask, settings: Settings) -> None:
    with db_of(app).session() as s:
        for email in (FORMULA, "+plus@example.org", "-minus@example.org", "'quote@example.org", "plain@example.org"):
            subscriptions.subscribe(s, settings, email, ["industry"])
    out = io.StringIO()
    with db_of(app).session(readonly=True) as s:
        privacy.write_export(s, out, policy=BouncePolicy())
    cells = [row[0] for row in csv.reader(io.StringIO(out.getvalue()))][1:]
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells), cells
    assert "'" + FORMULA in cells and "plain@example.org" in cells
    parsed = importer.read(out.getvalue().encode(), settings)
    assert parsed.errors == ()
    with db_of(app).session(readonly=True) as s:
        stored = set(s.scalars(select(Subscriber.email)))
    assert {row.email for row in parsed.rows} == stored


def test_admin_download_is_formula_safe(settings: Settings) -> None:
    from auth_support import add_staff, log_in

    from feedsvc.web import create_app

    app = create_app(settings, TESTING=True)
    try:
        with db_of(app).session() as s:
            subscriptions.subscribe(s, settings, FORMULA, ["industry"])
        add_staff(db_of(app), "owner@example.org", "owner")
        client = app.test_client()
        log_in(client, "owner@example.org")
        response = client.get("/admin/subscribers.csv")
        assert response.status_code == 200
        rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
        assert rows[1][0] == "'" + FORMULA
    finally:
        db_of(app).dispose()


# --- 5. only the exact token -------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["é", "\u200b", "=", "%C3%A9", "%E2%80%8B"])
def test_altered_tokens_answer_400_and_change_nothing(
    app: Flask, client: FlaskClient, mailbox: Mailbox, settings: Settings, suffix: str
) -> None:
    signup(client, "reader@example.org", ["industry"])
    [mail] = mailbox.deliver()
    confirm = link_in(mail, "confirm")
    assert client.get(confirm + suffix).status_code == 400
    assert confirm_from(client, confirm + suffix).status_code == 400
    assert state_of(app, "reader@example.org")[0] == PENDING
    with db_of(app).session(readonly=True) as s:
        sub = s.scalars(select(Subscriber)).one()
    manage = "/manage/" + tokens.make_token(settings, "manage", sub.id, sub.token_version)
    unsubscribe = "/unsubscribe/" + tokens.make_token(settings, "unsubscribe", sub.id, sub.token_version)
    token = csrf(client, "/subscribe")
    assert confirm_from(client, confirm).status_code == 200
    assert client.get(manage + suffix).status_code == 400
    assert client.post(manage + suffix, data={"csrf_token": token, "action": "unsubscribe"}).status_code == 400
    assert client.post(unsubscribe + suffix, data={"List-Unsubscribe": "One-Click"}).status_code == 400
    assert state_of(app, "reader@example.org")[0] == ACTIVE
    assert client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert state_of(app, "reader@example.org")[0] == UNSUBSCRIBED


# --- 9. addresses ------------------------------------------------------------------------------------------


def test_full_width_address_is_the_same_subscriber(app: Flask, client: FlaskClient, mailbox: Mailbox) -> None:
    assert signup(client, "a@example.com", ["industry"]).status_code == 200
    assert signup(client, "ａ@ｅｘａｍｐｌｅ.ｃｏｍ", ["industry"]).status_code == 200
    with db_of(app).session(readonly=True) as s:
        assert list(s.scalars(select(Subscriber.email))) == ["a@example.com"]
    assert len(mailbox.deliver()) == 1


def test_a_non_ascii_local_part_is_refused_with_a_clear_message(app: Flask, client: FlaskClient) -> None:
    response = signup(client, "用户@例子.广告", ["industry"])
    assert response.status_code == 400
    assert "@ 前面含有非英文字符" in response.get_data(as_text=True)
    with db_of(app).session(readonly=True) as s:
        assert list(s.scalars(select(Subscriber.email))) == []


def test_import_refuses_a_non_ascii_local_part_with_its_line(settings: Settings) -> None:
    parsed = importer.read("email\nok@example.org\n用户@例子.广告\n".encode(), settings)
    [problem] = parsed.errors
    assert problem.line == 3 and "ASCII" in problem.message


def test_an_idn_domain_goes_out_with_a_valid_ascii_to_header(app: Flask, client: FlaskClient, mailbox: Mailbox) -> None:
    signup(client, "reader@例子.广告", ["industry"])
    mailbox.deliver()
    [eml] = list(mailbox.folder.glob("*.eml"))
    raw = eml.read_bytes()
    to = re.search(rb"^To: (.*)$", raw, re.MULTILINE)
    assert to and to.group(1).strip() == b"reader@xn--fsqu00a.xn--4rr70v", raw[:400]
    assert b"=?utf-8?" not in to.group(1)
    with db_of(app).session(readonly=True) as s:
        assert s.scalar(select(OutboxMessage.recipient)) == "reader@xn--fsqu00a.xn--4rr70v"


def test_migration_0005_gives_stored_unicode_domains_their_idna_form(database_url: str) -> None:
    import sqlalchemy as sa

    from feedsvc.db.engine import Database, downgrade

    database = Database(database_url)
    try:
        downgrade(database.engine, "0003")  # the test database is at head: go back to before 0005
        with database.session() as s:
            for email in ("a@例子.广告", "b@xn--fsqu00a.xn--4rr70v", "b@例子.广告", "用户@例子.广告"):
                s.execute(
                    sa.insert(Subscriber).values(
                        email=email,
                        status=ACTIVE,
                        source="form",
                        lang="zh-CN",
                        token_version=1,
                        bounce_count=0,
                        created_at=sa.func.now(),
                        updated_at=sa.func.now(),
                    )
                )
        database.upgrade("0005")  # to the migration under test, whatever comes after it
        with database.session(readonly=True) as s:
            stored = set(s.scalars(select(Subscriber.email)))
        assert stored == {"a@xn--fsqu00a.xn--4rr70v", "b@xn--fsqu00a.xn--4rr70v", "b@例子.广告", "用户@例子.广告"}
        with database.session() as s:  # the later migrations run on an empty table, as on a fresh install
            s.execute(sa.delete(Subscriber))
    finally:
        database.upgrade()  # the schema is shared by the tests after this one: leave it at head
        database.dispose()


def test_a_recorded_bounce_shows_on_the_sessions_own_subscriber_object(app: Flask, settings: Settings) -> None:
    with db_of(app).session() as s:
        subscriptions.subscribe(s, settings, "reader@example.org", ["industry"])
    with db_of(app).session() as s:
        reader = s.scalars(select(Subscriber).where(Subscriber.email == "reader@example.org")).one()
        assert (reader.status, reader.bounce_count) == ("pending", 0)
        assert subscriptions.record_bounce(s, reader.id, 1, "550 5.1.1 no such user")
        assert (reader.status, reader.bounce_count) == ("bounced", 1)  # scored in Core, read again
