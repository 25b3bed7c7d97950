"""Set-password and reset links mailed through the outbox: end to end, single use, expiry, no enumeration; the
first owner (bootstrap, one owner however requests race); `feedsvc staff add` without a password. On SQLite and
PostgreSQL."""

from __future__ import annotations

import re
import threading
import time

import pytest
from auth_support import OWNER, PASSWORD, Clock, csrf_from, log_in
from builders import cli_env, make_app
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from feedsvc.cli import main
from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.db.models import OutboxMessage
from feedsvc.mail.notices import Notice
from feedsvc.staff import audit
from feedsvc.staff.models import StaffMember
from feedsvc.web import auth

NEW_PASSWORD = "a brand new long password"
LINK = re.compile(r"http://127\.0\.0\.1:8000(/admin/password/[\w.-]+)")


def mailed_links(db: Database) -> list[tuple[str, str]]:
    """(recipient, set-password path) of every staff password mail in the outbox, oldest first."""
    with db.session(readonly=True) as s:
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "staff_password").order_by(OutboxMessage.id))
        found = []
        for row in rows:
            assert row.subscriber_id is None and row.message is not None
            notice = Notice.from_bytes(row.message)
            [path] = set(LINK.findall(notice.text))
            assert path in notice.html and "设置" in notice.subject and "Set your password" in notice.subject
            found.append((row.recipient, path))
        return found


def ask_reset(client: FlaskClient, email: str) -> tuple[int, bytes]:
    response = client.post(
        "/admin/password/reset", data={"csrf_token": csrf_from(client, "/admin/password/reset"), "email": email}
    )
    return response.status_code, response.get_data()


def set_password(client: FlaskClient, path: str, password: str, again: str | None = None) -> tuple[int, str]:
    form = {"csrf_token": csrf_from(client, "/admin/login"), "password": password, "password2": again or password}
    response = client.post(path, data=form)
    return response.status_code, response.get_data(as_text=True)


def test_reset_by_mailed_link_end_to_end(client: FlaskClient, db: Database, app: Flask) -> None:
    other_browser = app.test_client()
    log_in(other_browser, OWNER)
    known = ask_reset(client, OWNER)
    unknown = ask_reset(client, "nobody@example.org")
    assert known == unknown and known[0] == 200  # the same answer: no enumeration
    assert "如果这个地址属于一个员工账户" in known[1].decode()
    [(recipient, path)] = mailed_links(db)  # only the staff address got a mail
    assert recipient == OWNER
    form = client.get(path)
    assert form.status_code == 200 and OWNER in form.get_data(as_text=True)
    assert "img-src 'self' data:" in form.headers["Content-Security-Policy"]  # a token page: no remote images
    assert set_password(client, path, NEW_PASSWORD, "a different long password")[0] == 400
    status, page = set_password(client, path, NEW_PASSWORD)
    assert status == 200 and "密码已设置" in page
    assert other_browser.get("/admin/").status_code == 302  # a new password ends every session
    log_in(client, OWNER, NEW_PASSWORD)
    assert set_password(client.application.test_client(), path, "yet another long password")[0] == 404  # used once
    assert client.get(path).status_code == 404
    with db.session(readonly=True) as s:
        actions = [(e.action, e.client) for e in audit.entries(s) if e.action.startswith("password.")]
    assert actions == [("password.set", "127.0.0.1"), ("password.reset_request", "127.0.0.1")]


def test_a_link_expires_and_a_forged_one_is_refused(client: FlaskClient, db: Database, clock: Clock) -> None:
    ask_reset(client, OWNER)
    [(_, path)] = mailed_links(db)
    clock.advance(hours=23, minutes=59)
    assert client.get(path).status_code == 200
    clock.advance(minutes=2)
    assert client.get(path).status_code == 404
    assert set_password(client, path, NEW_PASSWORD)[0] == 404
    assert client.get(path + "x").status_code == 404
    assert client.get("/admin/password/" + path.rsplit("/", 1)[1] + "=").status_code == 404
    log_in(client, OWNER, PASSWORD)  # nothing changed


def test_a_short_password_is_refused_and_the_link_still_works(client: FlaskClient, db: Database) -> None:
    ask_reset(client, OWNER)
    [(_, path)] = mailed_links(db)
    status, page = set_password(client, path, "short")
    assert status == 400 and "12" in page
    assert set_password(client, path, NEW_PASSWORD)[0] == 200


def test_staff_add_without_a_password_mails_a_link(settings: Settings, db: Database) -> None:
    env = cli_env(settings)
    result = CliRunner().invoke(main, ["staff", "add", "new@example.org", "--role", "editor"], env=env)
    assert result.exit_code == 0, result.output
    assert "link" in result.output
    [(recipient, path)] = mailed_links(db)
    assert recipient == "new@example.org"
    with make_app(settings) as app:
        client = app.test_client()
        assert set_password(client, path, NEW_PASSWORD)[0] == 200
        log_in(client, "new@example.org", NEW_PASSWORD)
    result = CliRunner().invoke(
        main, ["staff", "add", "typed@example.org", "--role", "viewer", "--password-stdin"], env=env, input=PASSWORD
    )
    assert result.exit_code == 0 and len(mailed_links(db)) == 1  # a password given: no mail


# --- the first owner ------------------------------------------------------------------------------------


def bootstrap(client: FlaskClient, admin_password: str, email: str = OWNER, password: str = NEW_PASSWORD):  # type: ignore[no-untyped-def]
    form = {
        "csrf_token": csrf_from(client, "/admin/password/reset"),
        "admin_password": admin_password,
        "email": email,
        "password": password,
        "password2": password,
    }
    return client.post("/admin/setup", data=form)


def test_bootstrap_creates_the_first_owner_once(settings: Settings, db: Database) -> None:
    with make_app(settings.with_overrides(admin_password="bootstrap secret")) as app:
        client = app.test_client()
        page = client.get("/admin/login").get_data(as_text=True)
        assert "FEEDSVC_ADMIN_PASSWORD" in page and 'name="admin_password"' in page
        english = app.test_client().get("/admin/login?lang=en").get_data(as_text=True)
        assert "Use FEEDSVC_ADMIN_PASSWORD" in english
        wrong = bootstrap(client, "not it")
        assert wrong.status_code == 400 and "管理员密码不正确" in wrong.get_data(as_text=True)
        made = bootstrap(client, "bootstrap secret")
        assert made.status_code == 302
        assert "· owner" in client.get("/admin/").get_data(as_text=True)  # logged in as the new owner
        with db.session(readonly=True) as s:
            assert [(m.email, m.role) for m in s.scalars(select(StaffMember))] == [(OWNER, "owner")]
        # from now on the admin password does nothing
        stranger = app.test_client()
        assert 'name="admin_password"' not in stranger.get("/admin/login").get_data(as_text=True)
        assert bootstrap(stranger, "bootstrap secret", "intruder@example.org").status_code == 404
        log_in(stranger, OWNER, NEW_PASSWORD)


def _blocked_on_the_staff_lock(db: Database) -> bool:
    """True when another PostgreSQL session waits for the staff table's lock (the second bootstrap)."""
    with db.session(readonly=True) as s:
        waiting = s.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE staff%'"
            )
        ).scalar()
    return bool(waiting)


def test_two_racing_bootstraps_make_one_owner(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first request is held inside its transaction, after its insert; the second must wait for it (on
    PostgreSQL the test sees it blocked on the lock), then find the owner and answer 404."""
    first, second = "first@example.org", "second@example.org"
    inserted, release = threading.Event(), threading.Event()
    real_start = auth.start_session

    def held(s: Session, member: StaffMember, target: str | None = None) -> object:
        if member.email == first:
            inserted.set()
            assert release.wait(30)
        return real_start(s, member, target)

    monkeypatch.setattr(auth, "start_session", held)
    statuses: dict[str, int] = {}
    with make_app(settings.with_overrides(admin_password="bootstrap secret")) as app:
        browsers = {email: app.test_client() for email in (first, second)}

        def run(email: str) -> None:
            statuses[email] = bootstrap(browsers[email], "bootstrap secret", email).status_code

        threads = {email: threading.Thread(target=run, args=(email,)) for email in (first, second)}
        threads[first].start()
        assert inserted.wait(30)
        threads[second].start()
        deadline = time.monotonic() + 0.5 if db.dialect == "sqlite" else time.monotonic() + 30
        while threads[second].is_alive() and time.monotonic() < deadline:
            if db.dialect == "postgresql" and _blocked_on_the_staff_lock(db):
                break
            time.sleep(0.02)
        second_waited = threads[second].is_alive()  # it must not get past the first's uncommitted owner
        release.set()
        for thread in threads.values():
            thread.join(60)
    assert second_waited and statuses == {first: 302, second: 404}
    with db.session(readonly=True) as s:
        assert [(m.email, m.role) for m in s.scalars(select(StaffMember))] == [(first, "owner")]


def test_without_staff_or_admin_password_the_page_says_what_to_run(settings: Settings) -> None:
    with make_app(settings) as app:
        client = app.test_client()
        page = client.get("/admin/login").get_data(as_text=True)
        assert "feedsvc staff add EMAIL --role owner" in page and 'name="password"' not in page
        assert bootstrap(client, "").status_code == 404


def test_a_reset_for_an_address_that_is_not_staff_renders_the_same_mail(
    client: FlaskClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rendering is the costly part of a reset; done only for staff, the answer's timing told who is staff."""
    from feedsvc.mail import notices

    rendered: list[str] = []
    real = notices.render

    def counting(settings: Settings, kind: str, recipient: str, *args: object, **kwargs: object) -> Notice:
        rendered.append(recipient)
        return real(settings, kind, recipient, *args, **kwargs)

    monkeypatch.setattr(notices, "render", counting)
    assert ask_reset(client, OWNER)[0] == ask_reset(client, "nobody@example.org")[0] == 200
    assert rendered == [OWNER, "nobody@example.org"]
    assert [to for to, _ in mailed_links(db)] == [OWNER]  # only staff get a mail
