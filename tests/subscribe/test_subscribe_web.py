"""Every subscription flow through the Flask test client, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from subscribe_support import CSRF, Mailbox, csrf, link_in, signup, text_of, the_welcome

from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.db.models import ACTIVE, PENDING, UNSUBSCRIBED, OutboxMessage, Subscriber, Suppression
from feedsvc.subscribers import tokens


def db_of(app: Flask) -> Database:
    return app.extensions["feedsvc.db"]


def status_of(app: Flask, email: str) -> str | None:
    with db_of(app).session(readonly=True) as s:
        return s.scalar(select(Subscriber.status).where(Subscriber.email == email))


def sections_of(app: Flask, email: str) -> list[str]:
    with db_of(app).session(readonly=True) as s:
        sub = s.scalars(select(Subscriber).where(Subscriber.email == email)).one()
        return sub.section_slugs


def outbox_count(app: Flask) -> int:
    with db_of(app).session(readonly=True) as s:
        return s.scalar(select(func.count()).select_from(OutboxMessage)) or 0


def subscribe_and_confirm(client: FlaskClient, mailbox: Mailbox, email: str, sections: list[str]) -> str:
    """Sign up, confirm through the mailed link; the manage page path from the confirmation page."""
    assert signup(client, email, sections).status_code == 200
    [mail] = mailbox.deliver()
    confirm = link_in(mail, "confirm")
    page = client.get(confirm)
    token = CSRF.search(page.get_data(as_text=True))
    assert token
    done = client.post(confirm, data={"csrf_token": token.group(1)})
    assert done.status_code == 200
    match = re.search(r'href="(/manage/[^"]+)"', done.get_data(as_text=True))
    assert match
    the_welcome(mailbox.deliver(), email)  # confirming sends the welcome mail, with the manage link
    return match.group(1)


# --- signing up ------------------------------------------------------------------------------------------


def test_form_has_every_section_checked_a_csrf_token_and_a_honeypot(client: FlaskClient, settings: Settings) -> None:
    html = client.get("/subscribe").get_data(as_text=True)
    for slug in settings.publication.slugs:
        assert f'name="sections" value="{slug}" checked' in html
    assert CSRF.search(html)
    assert 'name="website"' in html
    assert "<script" not in html


def test_landing_page_includes_the_form(client: FlaskClient) -> None:
    html = client.get("/").get_data(as_text=True)
    assert 'action="/subscribe"' in html
    assert CSRF.search(html)


def test_signup_mails_a_confirmation_and_confirming_activates(
    app: Flask, client: FlaskClient, mailbox: Mailbox
) -> None:
    response = signup(client, "Reader@Example.org", ["industry", "research"])
    assert response.status_code == 200
    assert "请查收邮件" in response.get_data(as_text=True)
    assert status_of(app, "reader@example.org") == PENDING
    [mail] = mailbox.deliver()
    assert mail["To"] == "reader@example.org"
    assert "请确认订阅" in mail["Subject"]
    assert mail.get_body(("html",)) is not None
    confirm = link_in(mail, "confirm")
    # GET (a mail scanner, or the reader) shows a button and changes nothing.
    for _ in range(3):
        page = client.get(confirm)
        assert page.status_code == 200
        assert 'method="post"' in page.get_data(as_text=True)
    assert status_of(app, "reader@example.org") == PENDING
    token = CSRF.search(page.get_data(as_text=True))
    assert token
    done = client.post(confirm, data={"csrf_token": token.group(1)})
    assert done.status_code == 200
    assert "订阅成功" in done.get_data(as_text=True)
    assert status_of(app, "reader@example.org") == ACTIVE
    assert sections_of(app, "reader@example.org") == ["industry", "research"]


def test_same_answer_for_new_pending_and_active_addresses(app: Flask, client: FlaskClient, mailbox: Mailbox) -> None:
    subscribe_and_confirm(client, mailbox, "active@example.org", ["industry"])
    signup(client, "pending@example.org", ["industry"])
    answers = {
        email: signup(client, email, ["industry"]).get_data(as_text=True)
        for email in ("new@example.org", "pending@example.org", "active@example.org")
    }
    assert len(set(answers.values())) == 1
    assert "请查收邮件" in answers["new@example.org"]
    # Same page, same status; the form is also the same for /manage requests of known and unknown addresses.
    manage_answers = {
        email: client.post("/manage", data={"csrf_token": csrf(client, "/manage"), "email": email}).get_data(
            as_text=True
        )
        for email in ("nobody@example.org", "active@example.org")
    }
    assert len(set(manage_answers.values())) == 1


def test_active_subscriber_signing_up_again_gets_a_manage_link_not_a_confirmation(
    app: Flask, client: FlaskClient, mailbox: Mailbox
) -> None:
    subscribe_and_confirm(client, mailbox, "reader@example.org", ["industry"])
    with db_of(app).session() as s:  # the ten-minute window has passed
        s.execute(Subscriber.__table__.update().values(notified_at=None))
    signup(client, "reader@example.org", ["capital"])
    [mail] = mailbox.deliver()
    assert link_in(mail, "manage")
    assert "confirm/" not in text_of(mail)
    assert sections_of(app, "reader@example.org") == ["industry"]


def test_repeated_signups_send_one_mail(app: Flask, client: FlaskClient, mailbox: Mailbox) -> None:
    for _ in range(5):
        assert signup(client, "reader@example.org", ["industry"]).status_code == 200
    assert len(mailbox.deliver()) == 1


@pytest.mark.parametrize("email", ["", "not-an-address", "a@b", "<script>alert(1)</script>@x.org", "x" * 400])
def test_invalid_addresses_are_refused_with_the_form_again(app: Flask, client: FlaskClient, email: str) -> None:
    response = signup(client, email, ["industry"])
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "这不是一个有效的电子邮件地址" in html
    assert "<script>alert(1)</script>" not in html  # escaped when echoed back
    assert outbox_count(app) == 0


def test_no_section_is_refused(app: Flask, client: FlaskClient) -> None:
    response = signup(client, "reader@example.org", [])
    assert response.status_code == 400
    assert "请至少选择一个栏目" in response.get_data(as_text=True)
    assert status_of(app, "reader@example.org") is None


def test_honeypot_looks_like_success_and_does_nothing(app: Flask, client: FlaskClient) -> None:
    response = signup(client, "reader@example.org", ["industry"], website="http://spam.example")
    assert response.status_code == 200
    assert "请查收邮件" in response.get_data(as_text=True)
    assert status_of(app, "reader@example.org") is None
    assert outbox_count(app) == 0


# --- CSRF ------------------------------------------------------------------------------------------------


def test_csrf_is_enforced_on_every_form(app: Flask, client: FlaskClient, mailbox: Mailbox) -> None:
    manage = subscribe_and_confirm(client, mailbox, "reader@example.org", ["industry"])
    fresh = app.test_client()  # another browser: no session cookie
    forged = [
        fresh.post("/subscribe", data={"email": "victim@example.org", "sections": ["industry"]}),
        client.post("/subscribe", data={"csrf_token": "forged", "email": "victim@example.org", "sections": ["people"]}),
        fresh.post("/manage", data={"email": "reader@example.org"}),
        fresh.post(manage, data={"action": "unsubscribe"}),
        fresh.post(manage, data={"action": "erase", "confirm": "yes"}),
        client.post(manage, data={"action": "sections", "sections": ["people"], "csrf_token": "x"}),
    ]
    assert [r.status_code for r in forged] == [400] * len(forged)
    assert status_of(app, "victim@example.org") is None
    assert status_of(app, "reader@example.org") == ACTIVE
    assert sections_of(app, "reader@example.org") == ["industry"]
    assert mailbox.deliver() == []


def test_csrf_failure_keeps_what_was_typed(client: FlaskClient) -> None:
    client.get("/subscribe")
    response = client.post("/subscribe", data={"email": "reader@example.org", "sections": ["people"]})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'value="reader@example.org"' in html
    assert 'value="people" checked' in html
    assert 'value="industry" checked' not in html


def test_confirm_post_needs_the_csrf_token(app: Flask, client: FlaskClient, mailbox: Mailbox) -> None:
    signup(client, "reader@example.org", ["industry"])
    confirm = link_in(mailbox.deliver()[0], "confirm")
    assert app.test_client().post(confirm).status_code == 400
    assert status_of(app, "reader@example.org") == PENDING


# --- rate limit ------------------------------------------------------------------------------------------


def test_rate_limit_answers_429_per_client(app: Flask, settings: Settings) -> None:
    app.extensions["feedsvc.signup_limit"] = type(app.extensions["feedsvc.signup_limit"]).parse("3/600")
    client = app.test_client()
    codes = [signup(client, f"r{i}@example.org", ["industry"]).status_code for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    limited = signup(client, "r9@example.org", ["industry"])
    wait = int(limited.headers["Retry-After"])
    assert 0 < wait <= 600
    page = limited.get_data(as_text=True)
    assert f"大约 {-(-wait // 60)} 分钟后可以再次提交" in page and 'href="/"' in page
    assert status_of(app, "r9@example.org") is None
    # Another client is not affected; the /manage form shares the budget.
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert signup(other, "r10@example.org", ["industry"]).status_code == 200
    assert (
        client.post("/manage", data={"csrf_token": csrf(client, "/manage"), "email": "x@example.org"}).status_code
        == 429
    )


def test_trusted_proxy_header_names_the_client(app: Flask, settings: Settings) -> None:
    app.extensions["feedsvc.settings"] = settings.with_overrides(trusted_proxies=1)
    app.extensions["feedsvc.signup_limit"] = type(app.extensions["feedsvc.signup_limit"]).parse("1/600")
    client = app.test_client()
    first = signup(client, "a@example.org", ["industry"], csrf_token=csrf(client))
    assert first.status_code == 200
    spoofed = client.post(
        "/subscribe",
        data={"csrf_token": csrf(client), "email": "b@example.org", "sections": ["industry"]},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    assert spoofed.status_code == 200  # a different client behind the proxy
    again = client.post(
        "/subscribe",
        data={"csrf_token": csrf(client), "email": "c@example.org", "sections": ["industry"]},
        headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.9"},  # the client cannot pick its own address
    )
    assert again.status_code == 429


# --- manage ----------------------------------------------------------------------------------------------


def test_manage_page_changes_sections(app: Flask, client: FlaskClient, mailbox: Mailbox) -> None:
    manage = subscribe_and_confirm(client, mailbox, "reader@example.org", ["industry"])
    page = client.get(manage)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "reader@example.org" in html
    assert 'value="industry" checked' in html
    token = CSRF.search(html)
    assert token
    saved = client.post(
        manage, data={"csrf_token": token.group(1), "action": "sections", "sections": ["people", "capital"]}
    )
    assert saved.status_code == 303
    assert "done=sections" in saved.headers["Location"]
    assert sections_of(app, "reader@example.org") == ["capital", "people"]
    assert "栏目已更新" in client.get(saved.headers["Location"]).get_data(as_text=True)
    refused = client.post(manage, data={"csrf_token": token.group(1), "action": "sections"})
    assert "error=no-sections" in refused.headers["Location"]
    assert sections_of(app, "reader@example.org") == ["capital", "people"]


def test_manage_link_by_mail(app: Flask, client: FlaskClient, mailbox: Mailbox) -> None:
    subscribe_and_confirm(client, mailbox, "reader@example.org", ["industry"])
    with db_of(app).session() as s:
        s.execute(Subscriber.__table__.update().values(notified_at=None))
    response = client.post("/manage", data={"csrf_token": csrf(client, "/manage"), "email": "READER@example.org"})
    assert response.status_code == 200
    [mail] = mailbox.deliver()
    assert "管理订阅" in mail["Subject"] or "订阅" in mail["Subject"]
    page = client.get(link_in(mail, "manage"))
    assert page.status_code == 200
    assert "reader@example.org" in page.get_data(as_text=True)
    # Unknown addresses: the same page, no mail.
    client.post("/manage", data={"csrf_token": csrf(client, "/manage"), "email": "nobody@example.org"})
    assert mailbox.deliver() == []


def test_manage_unsubscribe_and_resubscribe_needs_confirmation(
    app: Flask, client: FlaskClient, mailbox: Mailbox
) -> None:
    manage = subscribe_and_confirm(client, mailbox, "reader@example.org", ["industry"])
    token = csrf(client, manage)
    client.post(manage, data={"csrf_token": token, "action": "unsubscribe"})
    assert status_of(app, "reader@example.org") == UNSUBSCRIBED
    assert "重新订阅" in client.get(manage).get_data(as_text=True)
    with db_of(app).session() as s:
        s.execute(Subscriber.__table__.update().values(notified_at=None))
    client.post(manage, data={"csrf_token": token, "action": "resubscribe"})
    assert status_of(app, "reader@example.org") == UNSUBSCRIBED  # until the owner confirms (issue 16)
    [mail] = mailbox.deliver()
    confirm = link_in(mail, "confirm")
    client.post(confirm, data={"csrf_token": csrf(client, confirm)})
    assert status_of(app, "reader@example.org") == ACTIVE


def test_download_my_data(client: FlaskClient, mailbox: Mailbox) -> None:
    manage = subscribe_and_confirm(client, mailbox, "reader@example.org", ["industry", "people"])
    response = client.post(manage, data={"csrf_token": csrf(client, manage), "action": "export"})
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    data = json.loads(response.get_data(as_text=True))
    assert (data["email"], data["status"], data["sections"]) == ("reader@example.org", ACTIVE, ["industry", "people"])
    assert [m["kind"] for m in data["mail"]] == ["confirm", "welcome"]
    assert [m["state"] for m in data["mail"]] == ["sent", "sent"]


def test_erase_me(app: Flask, client: FlaskClient, mailbox: Mailbox) -> None:
    manage = subscribe_and_confirm(client, mailbox, "reader@example.org", ["industry"])
    token = csrf(client, manage)
    unconfirmed = client.post(manage, data={"csrf_token": token, "action": "erase"})
    assert "error=erase-unconfirmed" in unconfirmed.headers["Location"]
    assert status_of(app, "reader@example.org") == ACTIVE
    erased = client.post(manage, data={"csrf_token": token, "action": "erase", "confirm": "yes"})
    assert erased.status_code == 200
    assert "数据已删除" in erased.get_data(as_text=True)
    assert status_of(app, "reader@example.org") is None
    with db_of(app).session(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Suppression)) == 1
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    gone = client.get(manage)
    assert gone.status_code == 400
    assert "链接无效" in gone.get_data(as_text=True)


def test_reset_links_revokes_the_old_ones(app: Flask, client: FlaskClient, mailbox: Mailbox) -> None:
    manage = subscribe_and_confirm(client, mailbox, "reader@example.org", ["industry"])
    moved = client.post(manage, data={"csrf_token": csrf(client, manage), "action": "reset"})
    assert moved.status_code == 303
    new = moved.headers["Location"].split("?")[0]
    assert new != manage
    assert client.get(manage).status_code == 400
    assert client.get(new).status_code == 200


def test_unknown_manage_action_is_refused(client: FlaskClient, mailbox: Mailbox) -> None:
    manage = subscribe_and_confirm(client, mailbox, "reader@example.org", ["industry"])
    assert client.post(manage, data={"csrf_token": csrf(client, manage), "action": "drop-table"}).status_code == 400


# --- unsubscribe -----------------------------------------------------------------------------------------


def unsubscribe_path(app: Flask, settings: Settings, email: str) -> str:
    with db_of(app).session(readonly=True) as s:
        sub = s.scalars(select(Subscriber).where(Subscriber.email == email)).one()
        return "/" + tokens.link(settings, "unsubscribe", sub.id, sub.token_version).split("/", 3)[3]


def test_unsubscribe_page_asks_first_and_post_unsubscribes(
    app: Flask, client: FlaskClient, mailbox: Mailbox, settings: Settings
) -> None:
    subscribe_and_confirm(client, mailbox, "reader@example.org", ["industry"])
    path = unsubscribe_path(app, settings, "reader@example.org")
    page = client.get(path)
    assert page.status_code == 200
    assert "确认退订" in page.get_data(as_text=True)
    assert status_of(app, "reader@example.org") == ACTIVE
    assert client.post(path).status_code == 400  # the page's form carries a CSRF token
    done = client.post(path, data={"csrf_token": csrf(client, path)})
    assert done.status_code == 200
    assert status_of(app, "reader@example.org") == UNSUBSCRIBED


def test_one_click_unsubscribe_rfc8058(app: Flask, client: FlaskClient, mailbox: Mailbox, settings: Settings) -> None:
    subscribe_and_confirm(client, mailbox, "reader@example.org", ["industry"])
    path = unsubscribe_path(app, settings, "reader@example.org")
    provider = app.test_client(use_cookies=False)  # the mailbox provider: no cookie, no CSRF token
    for _ in range(2):  # twice is harmless
        response = provider.post(
            path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
        )
        assert response.status_code == 200
        assert "Location" not in response.headers
        assert status_of(app, "reader@example.org") == UNSUBSCRIBED
    multipart = provider.post(path, data={"List-Unsubscribe": "One-Click"}, content_type="multipart/form-data")
    assert multipart.status_code == 200


@pytest.mark.parametrize("purpose", ["confirm", "manage", "unsubscribe"])
def test_tampered_and_foreign_tokens_get_a_clear_page_and_change_nothing(
    app: Flask, client: FlaskClient, mailbox: Mailbox, settings: Settings, purpose: str
) -> None:
    subscribe_and_confirm(client, mailbox, "reader@example.org", ["industry"])
    with db_of(app).session(readonly=True) as s:
        sub = s.scalars(select(Subscriber)).one()
    good = {p: tokens.make_token(settings, p, sub.id, sub.token_version) for p in ("confirm", "manage", "unsubscribe")}
    other = settings.with_overrides(secret_key="someone-else")
    bad = [
        good[purpose][:-3] + "xyz",
        next(t for p, t in good.items() if p != purpose),  # a token for another purpose
        tokens.make_token(other, purpose, sub.id, sub.token_version),  # another installation
        tokens.make_token(settings, purpose, sub.id, sub.token_version + 1),  # a revoked version
        "nonsense",
    ]
    before = outbox_count(app)
    token = csrf(client)
    for value in bad:
        for response in (
            client.get(f"/{purpose}/{value}"),
            client.post(f"/{purpose}/{value}", data={"csrf_token": token, "action": "unsubscribe"}),
            client.post(f"/{purpose}/{value}", data={"List-Unsubscribe": "One-Click"}),
        ):
            assert response.status_code == 400, (purpose, value)
            assert "什么都没有改变" in response.get_data(as_text=True)
    assert status_of(app, "reader@example.org") == ACTIVE
    assert outbox_count(app) == before


def test_expired_confirmation_link_says_so(
    app: Flask, client: FlaskClient, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    import itsdangerous.timed

    signup(client, "reader@example.org", ["industry"])
    confirm = link_in(mailbox.deliver()[0], "confirm")
    later = itsdangerous.timed.time.time() + tokens.CONFIRM_MAX_AGE.total_seconds() + 60
    monkeypatch.setattr(itsdangerous.timed, "time", type("Clock", (), {"time": staticmethod(lambda: later)}))
    page = client.get(confirm)
    assert page.status_code == 400
    assert "链接已过期" in page.get_data(as_text=True)
    assert status_of(app, "reader@example.org") == PENDING


# --- language, escaping, headers ---------------------------------------------------------------------------


def test_pages_in_english_on_request(client: FlaskClient, mailbox: Mailbox) -> None:
    html = client.get("/subscribe?lang=en").get_data(as_text=True)
    assert "Email address" in html
    assert "Industry" in html
    assert '<html lang="en">' in html
    manage = subscribe_and_confirm(client, mailbox, "reader@example.org", ["industry"])
    english = client.get(manage + "?lang=en").get_data(as_text=True)
    assert "Manage subscription" in english
    assert "Download my data" in english


def test_english_signup_gets_english_first_mail(client: FlaskClient, mailbox: Mailbox) -> None:
    client.get("/subscribe?lang=en")
    signup(client, "reader@example.org", ["industry"])
    [mail] = mailbox.deliver()
    assert mail["Subject"].startswith("Please confirm")
    assert text_of(mail).startswith("Hello")
    assert "您好" in text_of(mail)


def test_security_headers_on_subscription_pages(client: FlaskClient, mailbox: Mailbox) -> None:
    manage = subscribe_and_confirm(client, mailbox, "reader@example.org", ["industry"])
    for path in ("/subscribe", manage, "/manage"):
        headers = client.get(path).headers
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Cache-Control"] == "no-store"
        assert headers["X-Content-Type-Options"] == "nosniff"
    session_cookie = client.get_cookie("session")
    assert session_cookie is not None
    assert session_cookie.http_only
    assert session_cookie.same_site == "Lax"


def test_session_cookie_is_secure_behind_https(settings: Settings) -> None:
    from feedsvc.web import create_app

    app = create_app(settings.with_overrides(publication=_https(settings)), TESTING=True)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    app.extensions["feedsvc.db"].dispose()


def _https(settings: Settings):
    from dataclasses import replace

    return replace(settings.publication, base_url="https://news.example.org")


def test_an_unsubscribed_reader_can_still_get_a_manage_link(app: Flask, client: FlaskClient, mailbox: Mailbox) -> None:
    manage = subscribe_and_confirm(client, mailbox, "reader@example.org", ["industry"])
    client.post(manage, data={"csrf_token": csrf(client, manage), "action": "unsubscribe"})
    with db_of(app).session() as s:
        s.execute(Subscriber.__table__.update().values(notified_at=None))
    client.post("/manage", data={"csrf_token": csrf(client, "/manage"), "email": "reader@example.org"})
    [mail] = mailbox.deliver()  # to download or erase their data, or subscribe again
    assert client.get(link_in(mail, "manage")).status_code == 200
