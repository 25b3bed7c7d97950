"""Errors under /api/v1 are RFC 9457 problem+json, never HTML; cookies never authenticate; rate limits answer 429
with Retry-After. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_support import bearer
from builders import make_app
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.test import TestResponse

from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.staff import accounts, audit, tokens
from feedsvc.staff.roles import EDITOR, OWNER, VIEWER
from feedsvc.web.api import MAX_BODY

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


def assert_problem(response: TestResponse, status: int, path: str) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert set(body) >= PROBLEM_KEYS and body["status"] == status and body["instance"] == path
    assert body["type"] == "about:blank" and body["title"] and body["detail"]
    assert "<html" not in response.get_data(as_text=True).lower()
    return body


def test_each_error_is_a_problem(client: FlaskClient, secrets: dict[str, str], api_settings: Settings) -> None:
    owner, viewer = bearer(secrets[OWNER]), bearer(secrets[VIEWER])
    assert_problem(
        client.post("/api/v1/issues/check", data="{not json", headers=owner, content_type="application/json"),
        400,
        "/api/v1/issues/check",
    )
    assert_problem(
        client.post("/api/v1/issues/check", data="x", headers=owner, content_type="text/plain"),
        400,
        "/api/v1/issues/check",
    )
    assert_problem(client.get("/api/v1/stats"), 401, "/api/v1/stats")
    forbidden = assert_problem(client.post("/api/v1/sends/398/pause", headers=viewer), 403, "/api/v1/sends/398/pause")
    assert forbidden["required_role"] == EDITOR and "editor" in forbidden["detail"]
    for path in ("/api/v1/nothing/here", "/api/v1", "/api/v1/", "/api/v1/sends/398", "/api/v1/sends/99999999999"):
        assert_problem(client.get(path, headers=owner), 404, path)
    wrong = assert_problem(client.put("/api/v1/stats", headers=owner), 405, "/api/v1/stats")
    assert "method" in wrong["detail"].lower()
    assert client.put("/api/v1/stats", headers=owner).headers["Allow"] == "GET"
    assert client.delete("/api/v1/subscribers/1", headers=owner).status_code == 404  # allowed method there
    assert set(client.put("/api/v1/subscribers/1", headers=owner).headers["Allow"].split(", ")) == {"DELETE", "PATCH"}
    assert_problem(client.open("/api/v1/openapi.json", method="TRACE"), 405, "/api/v1/openapi.json")
    big = {"markdown": "x" * (MAX_BODY + 1)}
    assert_problem(client.post("/api/v1/issues/check", json=big, headers=owner), 413, "/api/v1/issues/check")
    bad = assert_problem(
        client.post("/api/v1/issues/check", json={"markdown": 3}, headers=owner), 422, "/api/v1/issues/check"
    )
    assert "body.markdown" in bad["detail"]
    (api_settings.issues_dir / "2024-01-29-399.md").write_text("# 行业动态周报\n\n第 399 期\n", encoding="utf-8")
    assert_problem(client.post("/api/v1/issues/398/publish", headers=owner), 409, "/api/v1/issues/398/publish")


def test_an_uncaught_error_is_a_problem_too(client: FlaskClient, secrets: dict[str, str], database: Database) -> None:
    """A real failure: the database lost a column the stats read (put back afterwards)."""
    with database.session() as s:
        s.execute(text("ALTER TABLE issues RENAME COLUMN send_state TO send_state_gone"))
    try:
        body = assert_problem(client.get("/api/v1/stats", headers=bearer(secrets[VIEWER])), 500, "/api/v1/stats")
        assert "send_state" not in body["detail"]  # nothing of the internals is shown
    finally:
        with database.session() as s:
            s.execute(text("ALTER TABLE issues RENAME COLUMN send_state_gone TO send_state"))
    assert client.get("/api/v1/stats", headers=bearer(secrets[VIEWER])).status_code == 200


def test_a_cookie_session_cannot_call_the_api(client: FlaskClient, secrets: dict[str, str], database: Database) -> None:
    # A browser session as the staff login keeps it, with its CSRF token: the API does not read it at all.
    with client.session_transaction() as session:
        session.update({"staff": "owner@example.org", "staff_email": "owner@example.org", "csrf": "t" * 40})
    client.set_cookie("feedsvc_staff", "s" * 43)  # the login helper's session cookie name
    for response in (
        client.get("/api/v1/stats"),
        client.post("/api/v1/sends/398/pause", data={"csrf_token": "t" * 40}),
        client.post(
            "/api/v1/subscribers", json={"email": "x@example.org", "consent": True}, headers={"X-CSRF-Token": "t" * 40}
        ),
    ):
        assert_problem(response, 401, response.request.path)
    # A token request needs no CSRF token, with or without cookies, and sets none.
    answer = client.post(
        "/api/v1/subscribers", json={"email": "x@example.org", "consent": True}, headers=bearer(secrets[OWNER])
    )
    assert answer.status_code == 201 and "Set-Cookie" not in answer.headers
    assert answer.headers["Cache-Control"] == "no-store"
    with database.session(readonly=True) as s:
        assert audit.entries(s)[0].action == "subscribers_add"


@pytest.fixture
def strict_app(api_settings: Settings) -> Iterator[Flask]:
    limited = {**api_settings.extra, "FEEDSVC_API_RATE_LIMIT": "3/60", "FEEDSVC_API_AUTH_LIMIT": "4/600"}
    with make_app(api_settings.with_overrides(extra=limited)) as app:
        yield app


def test_requests_are_limited_per_token(strict_app: Flask) -> None:
    with strict_app.extensions["feedsvc.db"].session() as s:
        accounts.add(s, "a@example.org", VIEWER, "test")
        accounts.add(s, "b@example.org", VIEWER, "test")
        first, _ = tokens.create(s, "a@example.org", "test")
        second, _ = tokens.create(s, "b@example.org", "test")
    client = strict_app.test_client()
    statuses = [client.get("/api/v1/stats", headers=bearer(first)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = assert_problem(client.get("/api/v1/stats", headers=bearer(first)), 429, "/api/v1/stats")
    assert "token" in limited["detail"]
    assert 1 <= int(client.get("/api/v1/stats", headers=bearer(first)).headers["Retry-After"]) <= 60
    assert client.get("/api/v1/stats", headers=bearer(second)).status_code == 200  # another token has its own


def test_failed_authentication_is_limited_per_client(strict_app: Flask) -> None:
    with strict_app.extensions["feedsvc.db"].session() as s:
        accounts.add(s, "a@example.org", VIEWER, "test")
        good, _ = tokens.create(s, "a@example.org", "test")
    client = strict_app.test_client()
    guesses = [client.get("/api/v1/stats", headers=bearer("fsvc_" + f"{n}" * 43)).status_code for n in range(5)]
    assert guesses == [401, 401, 401, 401, 429]
    # Locked out means locked out: a good token from this client waits too, so the limit tells no guess.
    locked = client.get("/api/v1/stats", headers=bearer(good))
    assert_problem(locked, 429, "/api/v1/stats")
    assert 1 <= int(locked.headers["Retry-After"]) <= 600
    other = strict_app.test_client()
    assert (
        other.get("/api/v1/stats", headers=bearer(good), environ_base={"REMOTE_ADDR": "127.0.0.2"}).status_code == 200
    )
