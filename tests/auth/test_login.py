"""Staff login and logout through the real forms: sessions, fixation, cookie flags, expiry, fresh roles, and the
failed-login limits that give nothing away. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Literal

import pytest
from argon2 import PasswordHasher, extract_parameters
from auth_support import OWNER, PASSWORD, Clock, add_staff, csrf_from, log_in
from builders import make_settings
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.staff import accounts, audit
from feedsvc.staff.models import StaffMember, StaffSession
from feedsvc.web.auth import COOKIE


def session_rows(db: Database) -> int:
    with db.session(readonly=True) as s:
        return s.scalar(select(func.count()).select_from(StaffSession)) or 0


def cookie_value(client: FlaskClient) -> str | None:
    cookie = client.get_cookie(COOKIE)
    return cookie.value if cookie is not None else None


def client_from(app: Flask, address: str) -> FlaskClient:
    """A browser on another machine (another client address)."""
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = address
    return other


def attempt(client: FlaskClient, email: str, password: str) -> tuple[int, bytes]:
    token = csrf_from(client, "/admin/login")
    response = client.post("/admin/login", data={"csrf_token": token, "email": email, "password": password})
    return response.status_code, response.get_data()


def test_login_reaches_admin_and_logout_ends_the_session(client: FlaskClient, db: Database) -> None:
    anonymous = client.get("/admin/")
    assert anonymous.status_code == 302 and "/admin/login" in anonymous.headers["Location"]
    log_in(client, OWNER, PASSWORD)
    page = client.get("/admin/")
    assert page.status_code == 200 and OWNER in page.get_data(as_text=True)
    assert session_rows(db) == 1
    response = client.post("/admin/logout", data={"csrf_token": csrf_from(client, "/admin/")})
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/login")
    assert session_rows(db) == 0 and cookie_value(client) is None
    assert client.get("/admin/").status_code == 302
    with db.session(readonly=True) as s:
        logged = [(e.actor, e.action, e.client) for e in audit.entries(s) if e.action in ("login", "logout")]
    assert logged == [(OWNER, "logout", "127.0.0.1"), (OWNER, "login", "127.0.0.1")]


def test_a_post_without_login_is_refused_and_next_stays_on_the_site(client: FlaskClient) -> None:
    assert client.post("/admin/issues/398/publish", data={"confirm": "yes"}).status_code == 403
    token = csrf_from(client, "/admin/login")
    form = {"csrf_token": token, "email": OWNER, "password": PASSWORD, "next": "https://evil.example/admin/"}
    response = client.post("/admin/login", data=form)
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/")
    assert "evil.example" not in response.headers["Location"]


def test_login_makes_a_new_session_id_and_drops_the_old_one(app: Flask, client: FlaskClient, db: Database) -> None:
    client.set_cookie(COOKIE, "planted-by-an-attacker")
    log_in(client, OWNER)
    first = cookie_value(client)
    assert first and first != "planted-by-an-attacker"
    log_in(client, OWNER)
    second = cookie_value(client)
    assert second and second != first
    assert session_rows(db) == 1  # logging in again ended the session the browser had
    stale = app.test_client()
    stale.set_cookie(COOKIE, first)
    assert stale.get("/admin/").status_code == 302
    with db.session(readonly=True) as s:
        assert s.scalar(select(StaffSession.id_hash)) not in (first, second)  # only a hash is stored


def _set_cookie_header(client: FlaskClient, **kwargs: str) -> str:
    token = csrf_from(client, "/admin/login")
    response = client.post("/admin/login", data={"csrf_token": token, "email": OWNER, "password": PASSWORD}, **kwargs)
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE + "=")]
    return header


def test_cookie_flags(client: FlaskClient) -> None:
    header = _set_cookie_header(client)
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    assert "Secure" not in header
    assert "Secure" in _set_cookie_header(client, base_url="https://localhost")


# An https site's cookies (Secure, __Host- names): tests/auth/test_cookies.py.


def test_idle_timeout(client: FlaskClient, clock: Clock, settings: Settings) -> None:
    assert settings.staff_idle_minutes == 30
    log_in(client, OWNER)
    for _ in range(4):  # active every 29 minutes: two hours on, still logged in
        clock.advance(minutes=29)
        assert client.get("/admin/").status_code == 200
    clock.advance(minutes=31)
    assert client.get("/admin/").status_code == 302


def test_absolute_timeout(client: FlaskClient, clock: Clock, settings: Settings, db: Database) -> None:
    assert settings.staff_session_hours == 12
    log_in(client, OWNER)
    for _ in range(35):  # 11 h 40 min of steady activity
        clock.advance(minutes=20)
        assert client.get("/admin/").status_code == 200
    clock.advance(minutes=21)
    assert client.get("/admin/").status_code == 302
    assert session_rows(db) == 0  # the expired row is gone


def test_timeouts_come_from_the_environment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"FEEDSVC_STAFF_IDLE_MINUTES": "5", "FEEDSVC_STAFF_SESSION_HOURS": "2"}
    settings = make_settings(tmp_path, env=env)
    assert (settings.staff_idle_minutes, settings.staff_session_hours) == (5, 2)


def test_role_is_read_fresh_and_removal_or_new_password_ends_sessions(client: FlaskClient, db: Database) -> None:
    log_in(client, OWNER)
    assert "· owner" in client.get("/admin/").get_data(as_text=True)
    with db.session() as s:
        accounts.set_role(s, OWNER, "viewer", "test")
    assert "· viewer" in client.get("/admin/").get_data(as_text=True)
    with db.session() as s:
        accounts.set_password(s, OWNER, "another long password", "test")
    assert client.get("/admin/").status_code == 302
    log_in(client, OWNER, "another long password")
    with db.session() as s:
        accounts.remove(s, OWNER, "test")
    assert client.get("/admin/").status_code == 302 and session_rows(db) == 0


def test_a_locked_account_answers_exactly_like_a_wrong_password(app: Flask, client: FlaskClient) -> None:
    wrong = attempt(client, OWNER, "not the password")
    assert wrong[0] == 200 and "邮箱或密码不正确" in wrong[1].decode()
    answers = [attempt(client, OWNER, "not the password") for _ in range(9)]  # 10 failures: the account locks
    assert set(answers) == {wrong}
    assert attempt(client, OWNER, PASSWORD) == wrong  # the right password, locked: byte for byte the same
    elsewhere = client_from(app, "192.0.2.7")
    other_status, other_page = attempt(elsewhere, OWNER, PASSWORD)  # the account is locked from anywhere
    assert other_status == 200 and "邮箱或密码不正确" in other_page.decode()
    assert elsewhere.get("/admin/").status_code == 302


def test_a_client_is_limited_across_addresses(app: Flask, client: FlaskClient, settings: Settings) -> None:
    add_staff(settings.database_url, "editor@example.org", "editor")
    for n in range(20):
        attempt(client, f"guess{n}@example.org", "guess")
    status, page = attempt(client, "editor@example.org", PASSWORD)
    assert status == 200 and "邮箱或密码不正确" in page.decode()
    log_in(client_from(app, "192.0.2.8"), "editor@example.org")  # others still can


def test_unknown_address_answers_like_a_wrong_password_with_the_same_argon2_work(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, db: Database
) -> None:
    verified: list[str] = []

    class CountingHasher(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            verified.append(str(hash))
            return super().verify(hash, password)

    with db.session(readonly=True) as s:
        stored = s.scalar(select(StaffMember.password_hash).where(StaffMember.email == OWNER))
    assert extract_parameters(accounts.dummy_hash()) == extract_parameters(stored)  # the same argon2 cost
    monkeypatch.setattr(accounts, "_HASHER", CountingHasher.from_parameters(extract_parameters(stored)))
    known = attempt(client, OWNER, "not the password")
    unknown = attempt(client, "nobody@example.org", "not the password")
    assert known[0] == unknown[0]
    assert known[1] == unknown[1].replace(b"nobody@example.org", OWNER.encode())
    assert verified == [stored, accounts.dummy_hash()]  # one verification each, at the same cost
    with db.session(readonly=True) as s:
        failed = [(e.actor, e.client) for e in audit.entries(s) if e.action == "login.failed"]
    assert failed == [("nobody@example.org", "127.0.0.1"), (OWNER, "127.0.0.1")]


def test_pages_are_bilingual_and_need_no_script(client: FlaskClient) -> None:
    zh = client.get("/admin/login").get_data(as_text=True)
    en = client.get("/admin/login?lang=en").get_data(as_text=True)
    assert "登录管理后台" in zh and "Log in to the admin pages" in en
    assert "<script" not in zh + en and re.search(r'<form method="post" action="/admin/login">', zh)
