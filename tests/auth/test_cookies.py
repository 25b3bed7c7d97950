"""The cookies a browser gets, read from the Set-Cookie headers of real responses: Flask's signed session and
the staff login are HttpOnly, SameSite=Lax and Path=/ everywhere, Secure and `__Host-` named on an https site,
and the signed session is taken for no longer than a staff session lives. On SQLite and PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from auth_support import OWNER, PASSWORD, add_staff, csrf_from
from builders import make_app, make_settings
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous.timed import TimestampSigner

from feedsvc.config import Settings


def set_cookie(response_headers: list[str], name: str) -> dict[str, str]:
    """The attributes of the Set-Cookie header for `name` (lower-cased keys; flags map to "")."""
    [header] = [h for h in response_headers if h.startswith(name + "=")]
    attributes = {}
    for part in header.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        attributes[key.lower()] = value
    return attributes


def log_in_headers(client: FlaskClient, **kwargs: str) -> tuple[list[str], list[str]]:
    """The Set-Cookie headers of the login page (which starts the Flask session) and of a right login."""
    page = client.get("/admin/login", **kwargs)
    token = csrf_from(client, "/admin/login")
    login = client.post("/admin/login", data={"csrf_token": token, "email": OWNER, "password": PASSWORD}, **kwargs)
    assert login.status_code == 302 and "/admin/login" not in login.headers["Location"]
    return page.headers.getlist("Set-Cookie"), login.headers.getlist("Set-Cookie")


def test_an_http_site_sets_httponly_lax_cookies_for_the_browser_session_only(client: FlaskClient) -> None:
    page, login = log_in_headers(client)
    for attributes in (set_cookie(page, "session"), set_cookie(login, "feedsvc_staff")):
        assert attributes.keys() == {"httponly", "path", "samesite"}  # no Secure, Domain, Expires or Max-Age
        assert (attributes["path"], attributes["samesite"]) == ("/", "Lax")
    assert client.get("/admin/").status_code == 200
    chosen = client.get("/?lang=en").headers.getlist("Set-Cookie")
    assert "secure" not in set_cookie(chosen, "lang")  # a plain-http site could not read it back


def test_an_https_site_names_its_cookies_host_only_and_secure(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, base_url="https://news.example.org")
    add_staff(database_url, OWNER, "owner")
    with make_app(settings) as app:
        client = app.test_client()
        page, login = log_in_headers(client, base_url="https://localhost")
        assert not [h for h in page + login if h.startswith(("session=", "feedsvc_staff="))]
        for attributes in (set_cookie(page, "__Host-session"), set_cookie(login, "__Host-feedsvc_staff")):
            # __Host- (RFC 6265bis): Secure, Path=/ and no Domain, so no other host can set or shadow it
            assert attributes.keys() == {"secure", "httponly", "path", "samesite"}
            assert (attributes["path"], attributes["samesite"]) == ("/", "Lax")
        assert client.get("/admin/", base_url="https://localhost").status_code == 200  # read back by that name
        chosen = client.get("/?lang=en", base_url="https://localhost").headers.getlist("Set-Cookie")
        assert set_cookie(chosen, "lang").keys() == {"secure", "httponly", "path", "samesite", "max-age", "expires"}


@pytest.mark.parametrize(("age_hours", "accepted"), [(11.9, True), (12.1, False)])
def test_the_signed_session_is_taken_only_as_long_as_a_staff_session_lives(
    app: Flask,
    client: FlaskClient,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    age_hours: float,
    accepted: bool,
) -> None:
    assert settings.staff_session_hours == 12
    token = "t" * 43
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    with monkeypatch.context() as patched:
        signed_at = int(time.time() - age_hours * 3600)
        patched.setattr(TimestampSigner, "get_timestamp", lambda self: signed_at)
        client.set_cookie("session", serializer.dumps({"csrf": token}))
    response = client.post("/admin/login", data={"csrf_token": token, "email": OWNER, "password": PASSWORD})
    assert (response.status_code == 302) is accepted
    assert (response.status_code == 400) is not accepted  # the CSRF page: the old session was not taken
