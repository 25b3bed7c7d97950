"""TOTP for owners (pyotp): enrol (the secret kept server-side), the code step at login, no replays, limits, removal.
On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re

import pyotp
from auth_support import OWNER, PASSWORD, Clock, add_staff, csrf_from, log_in
from builders import make_app
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.staff import audit
from feedsvc.staff.models import StaffMember
from feedsvc.web.auth import COOKIE

SECRET = re.compile(r"<code>([A-Z2-7]{32})</code>")


def enrol(client: FlaskClient, clock: Clock) -> str:
    """Turn TOTP on for the logged-in owner; the secret."""
    page = client.get("/admin/totp").get_data(as_text=True)
    [secret] = SECRET.findall(page)
    assert "otpauth://totp/" in page
    wrong = client.post("/admin/totp", data={"csrf_token": csrf_from(client, "/admin/totp"), "code": "000000"})
    assert wrong.status_code == 400
    code = pyotp.TOTP(secret).at(clock.now)
    done = client.post("/admin/totp", data={"csrf_token": csrf_from(client, "/admin/totp"), "code": code})
    assert done.status_code == 302
    return secret


def password_step(client: FlaskClient, password: str = PASSWORD) -> str:
    form = {"csrf_token": csrf_from(client, "/admin/login"), "email": OWNER, "password": password}
    return client.post("/admin/login", data=form).headers.get("Location", "")


def code_step(client: FlaskClient, code: str) -> int:
    return client.post(
        "/admin/login/totp", data={"csrf_token": csrf_from(client, "/admin/login"), "code": code}
    ).status_code


def test_enrol_then_login_asks_for_the_code(client: FlaskClient, clock: Clock, db: Database) -> None:
    log_in(client, OWNER)
    secret = enrol(client, clock)
    assert "两步验证已开启" in client.get("/admin/totp").get_data(as_text=True)
    client.post("/admin/logout", data={"csrf_token": csrf_from(client, "/admin/")})
    clock.advance(seconds=60)
    assert password_step(client).endswith("/admin/login/totp")
    assert client.get("/admin/").status_code == 302  # not logged in before the code
    assert code_step(client, "123456") == 200
    assert client.get("/admin/").status_code == 302
    code = pyotp.TOTP(secret).at(clock.now)
    assert code_step(client, code) == 302
    assert client.get("/admin/").status_code == 200
    # the same code, a second time (seen over a shoulder): refused
    other = client.application.test_client()
    password_step(other)
    assert code_step(other, code) == 200 and other.get("/admin/").status_code == 302
    with db.session(readonly=True) as s:
        actions = [e.action for e in audit.entries(s)]
    assert "totp.enrol" in actions and actions.count("login.failed") == 2


def test_the_code_step_expires_and_needs_the_password_first(client: FlaskClient, clock: Clock) -> None:
    log_in(client, OWNER)
    secret = enrol(client, clock)
    fresh = client.application.test_client()
    assert fresh.get("/admin/login/totp").status_code == 302  # no password given yet
    assert code_step(fresh, pyotp.TOTP(secret).at(clock.now)) == 302
    assert fresh.get("/admin/").status_code == 302
    clock.advance(seconds=60)
    password_step(fresh)
    clock.advance(minutes=6)
    assert code_step(fresh, pyotp.TOTP(secret).at(clock.now)) == 302  # back to the login page
    assert fresh.get("/admin/").status_code == 302


def test_wrong_codes_lock_like_passwords(client: FlaskClient, clock: Clock) -> None:
    log_in(client, OWNER)
    secret = enrol(client, clock)
    browser = client.application.test_client()
    clock.advance(seconds=60)
    password_step(browser)
    for _ in range(10):  # as many as login.ACCOUNT_LIMIT allows
        assert code_step(browser, "000000") == 200
    clock.advance(seconds=30)
    assert code_step(browser, pyotp.TOTP(secret).at(clock.now)) == 200  # locked: the right code is refused too
    assert browser.get("/admin/").status_code == 302


def test_removal_needs_a_code_and_only_owners_enrol(
    client: FlaskClient, clock: Clock, db: Database, settings: Settings
) -> None:
    log_in(client, OWNER)
    secret = enrol(client, clock)
    token = csrf_from(client, "/admin/totp")
    assert client.post("/admin/totp/remove", data={"csrf_token": token, "code": "000000"}).status_code == 400
    clock.advance(seconds=30)
    code = pyotp.TOTP(secret).at(clock.now)
    assert client.post("/admin/totp/remove", data={"csrf_token": token, "code": code}).status_code == 302
    with db.session(readonly=True) as s:
        assert s.scalar(select(StaffMember.totp_secret).where(StaffMember.email == OWNER)) is None
    add_staff(settings.database_url, "editor@example.org", "editor")
    editor = client.application.test_client()
    log_in(editor, "editor@example.org")
    assert editor.get("/admin/totp").status_code == 403
    assert "两步验证" not in editor.get("/admin/").get_data(as_text=True).split("</nav>")[0].split("<nav")[1]


def pending(db: Database) -> tuple[str | None, str | None]:
    """The owner's (pending secret, enrolled secret) as the database has them."""
    with db.session(readonly=True) as s:
        row = s.execute(
            select(StaffMember.totp_pending_secret, StaffMember.totp_secret).where(StaffMember.email == OWNER)
        )
        return tuple(row.one())  # type: ignore[return-value]


def test_the_secret_being_enrolled_waits_on_the_server_not_in_the_cookie(
    app: Flask, client: FlaskClient, clock: Clock, db: Database
) -> None:
    log_in(client, OWNER)
    [secret] = SECRET.findall(client.get("/admin/totp").get_data(as_text=True))
    assert pending(db) == (secret, None)
    cookie = client.get_cookie("session")
    assert cookie is not None and secret not in cookie.value
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    assert secret not in json.dumps(serializer.loads(cookie.value))  # signed, not encrypted: what a thief reads
    clock.advance(minutes=2)
    assert SECRET.findall(client.get("/admin/totp").get_data(as_text=True)) == [secret]  # a reload: the same one
    token = csrf_from(client, "/admin/totp")
    wrong = client.post("/admin/totp", data={"csrf_token": token, "code": "000000"})
    assert wrong.status_code == 400 and SECRET.findall(wrong.get_data(as_text=True)) == [secret]
    assert pending(db) == (secret, None)  # a wrong code changes nothing
    right = client.post("/admin/totp", data={"csrf_token": token, "code": pyotp.TOTP(secret).at(clock.now)})
    assert right.status_code == 302
    assert pending(db) == (None, secret)  # enrolled: the pending secret is spent


def test_an_expired_enrolment_needs_the_new_secret(client: FlaskClient, clock: Clock, db: Database) -> None:
    log_in(client, OWNER)
    [old] = SECRET.findall(client.get("/admin/totp").get_data(as_text=True))
    clock.advance(minutes=11)  # past totp.ENROL_WINDOW
    token = csrf_from(client, "/admin/totp")
    late = client.post("/admin/totp", data={"csrf_token": token, "code": pyotp.TOTP(old).at(clock.now)})
    [new] = SECRET.findall(late.get_data(as_text=True))
    assert late.status_code == 400 and new != old and pending(db) == (new, None)
    assert (
        client.post("/admin/totp", data={"csrf_token": token, "code": pyotp.TOTP(new).at(clock.now)}).status_code == 302
    )
    assert pending(db) == (None, new)


def test_enrolment_survives_a_restart_and_a_new_browser_session(
    client: FlaskClient, clock: Clock, db: Database, settings: Settings
) -> None:
    log_in(client, OWNER)
    [secret] = SECRET.findall(client.get("/admin/totp").get_data(as_text=True))
    staff_cookie = client.get_cookie(COOKIE)
    assert staff_cookie is not None
    with make_app(settings, FEEDSVC_CLOCK=clock) as restarted:  # another process: nothing shared but the database
        browser = restarted.test_client()
        browser.set_cookie(COOKIE, staff_cookie.value)  # the staff login only, a fresh Flask session
        token = csrf_from(browser, "/admin/totp")
        code = pyotp.TOTP(secret).at(clock.now)
        assert browser.post("/admin/totp", data={"csrf_token": token, "code": code}).status_code == 302
    assert pending(db) == (None, secret)
