"""Every form the login pages add refuses a POST without this session's CSRF token, and changes nothing.
On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable

import pyotp
import pytest
from auth_support import OWNER, PASSWORD, Clock, csrf_from, log_in
from builders import make_app
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.db.models import OutboxMessage
from feedsvc.staff import passwords
from feedsvc.staff.models import StaffMember, StaffSession

FORGED = {"csrf_token": "x" * 43}
SECRET = re.compile(r"<code>([A-Z2-7]{32})</code>")  # the secret on the TOTP page


def state(db: Database) -> tuple[object, ...]:
    """Everything a login form could change: staff rows (with hashes and TOTP), sessions, queued mail."""
    with db.session(readonly=True) as s:
        staff = tuple(s.execute(select(StaffMember.email, StaffMember.password_hash, StaffMember.totp_secret)))
        count = s.scalar(select(func.count()).select_from(StaffSession))
        mail = s.scalar(select(func.count()).select_from(OutboxMessage))
    return staff, count, mail


def _login(client: FlaskClient, clock: Clock, db: Database) -> tuple[str, dict[str, str]]:
    return "/admin/login", {"email": OWNER, "password": PASSWORD}


def _logout(client: FlaskClient, clock: Clock, db: Database) -> tuple[str, dict[str, str]]:
    log_in(client, OWNER)
    return "/admin/logout", {}


def _reset(client: FlaskClient, clock: Clock, db: Database) -> tuple[str, dict[str, str]]:
    return "/admin/password/reset", {"email": OWNER}


def _set_password(client: FlaskClient, clock: Clock, db: Database) -> tuple[str, dict[str, str]]:
    with db.session(readonly=True) as s:
        member = s.scalar(select(StaffMember).where(StaffMember.email == OWNER))
        assert member is not None
        token = passwords.make_token(client.application.extensions["feedsvc.settings"], member, clock.now)
    return f"/admin/password/{token}", {"password": "a new long password", "password2": "a new long password"}


def _enrol(client: FlaskClient, clock: Clock, db: Database) -> tuple[str, dict[str, str]]:
    log_in(client, OWNER)
    [secret] = SECRET.findall(client.get("/admin/totp").get_data(as_text=True))
    return "/admin/totp", {"code": pyotp.TOTP(secret).at(clock.now)}


def _turn_on(client: FlaskClient, clock: Clock) -> str:
    log_in(client, OWNER)
    [secret] = SECRET.findall(client.get("/admin/totp").get_data(as_text=True))
    token = csrf_from(client, "/admin/totp")
    assert (
        client.post("/admin/totp", data={"csrf_token": token, "code": pyotp.TOTP(secret).at(clock.now)}).status_code
        == 302
    )
    clock.advance(seconds=60)
    return secret


def _remove_totp(client: FlaskClient, clock: Clock, db: Database) -> tuple[str, dict[str, str]]:
    secret = _turn_on(client, clock)
    return "/admin/totp/remove", {"code": pyotp.TOTP(secret).at(clock.now)}


def _totp_step(client: FlaskClient, clock: Clock, db: Database) -> tuple[str, dict[str, str]]:
    secret = _turn_on(client, clock)
    client.post("/admin/logout", data={"csrf_token": csrf_from(client, "/admin/")})
    form = {"csrf_token": csrf_from(client, "/admin/login"), "email": OWNER, "password": PASSWORD}
    assert client.post("/admin/login", data=form).headers["Location"].endswith("/admin/login/totp")
    clock.advance(seconds=30)
    return "/admin/login/totp", {"code": pyotp.TOTP(secret).at(clock.now)}


FORMS: dict[str, Callable[[FlaskClient, Clock, Database], tuple[str, dict[str, str]]]] = {
    "login": _login,
    "logout": _logout,
    "reset": _reset,
    "set password": _set_password,
    "totp enrol": _enrol,
    "totp remove": _remove_totp,
    "totp step": _totp_step,
}


@pytest.mark.parametrize("form", list(FORMS))
def test_every_form_refuses_a_post_without_its_token(
    client: FlaskClient, clock: Clock, db: Database, form: str
) -> None:
    path, data = FORMS[form](client, clock, db)
    before = state(db)
    for token in ({}, FORGED):
        response = client.post(path, data={**data, **token})
        assert response.status_code == 400, (form, token)
        assert "什么都没有改变" in response.get_data(as_text=True)
    assert state(db) == before


def test_the_bootstrap_form_refuses_a_post_without_its_token(settings: Settings, db: Database) -> None:
    with make_app(settings.with_overrides(admin_password="bootstrap secret")) as app:
        client = app.test_client()
        form = {"admin_password": "bootstrap secret", "email": OWNER, "password": PASSWORD, "password2": PASSWORD}
        for token in ({}, FORGED):
            assert client.post("/admin/setup", data={**form, **token}).status_code == 400
    assert state(db) == ((), 0, 0)


def test_a_token_from_another_browser_is_refused(app: Flask, client: FlaskClient) -> None:
    token = csrf_from(app.test_client(), "/admin/login")
    response = client.post("/admin/login", data={"csrf_token": token, "email": OWNER, "password": PASSWORD})
    assert response.status_code == 400 and client.get("/admin/").status_code == 302
