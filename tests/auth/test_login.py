"""Staff login and logout through the real forms, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from auth_support import PASSWORD, add_staff, csrf_from, log_in
from builders import make_app
from flask import Flask
from flask.testing import FlaskClient

from feedsvc.config import Settings

OWNER = "owner@example.org"


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    with make_app(settings) as app:
        yield app


@pytest.fixture
def client(app: Flask, settings: Settings) -> FlaskClient:
    add_staff(settings.database_url, OWNER, "owner")
    return app.test_client()


def test_login_reaches_admin_and_logout_ends_it(client: FlaskClient) -> None:
    assert client.get("/admin/").status_code == 302
    log_in(client, OWNER, PASSWORD)
    assert client.get("/admin/").status_code == 200
    token = csrf_from(client, "/admin/")
    response = client.post("/admin/logout", data={"csrf_token": token})
    assert response.status_code == 302
    anonymous = client.get("/admin/")
    assert anonymous.status_code == 302
    assert "/admin/login" in anonymous.headers["Location"]
