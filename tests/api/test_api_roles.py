"""Every API route against every role, driven by the route table itself: allowed (its real answer) or 403,
never 401 or 500, and every allowed write in the audit log naming the member and the token.

A route added to `routes.ROUTES` without an entry in CASES fails `test_every_route_has_a_case`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from api_support import call, member
from flask import Flask
from flask.testing import FlaskClient

from feedsvc import publishing
from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.staff import audit
from feedsvc.staff.roles import ROLES, may, role_needed
from feedsvc.subscribers import importer
from feedsvc.subscribers.csvfile import ImportRow, ParsedCsv
from feedsvc.web.api.routes import ROUTES, Route

SEED_NUMBER = 398


@dataclass(frozen=True)
class Case:
    """How to call a route, what an allowed role gets, and what the state must be first."""

    status: int
    path: dict[str, int] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    query: dict[str, str] = field(default_factory=dict)
    published: bool = False  # the seed issue published first
    subscriber: bool = False  # one active subscriber first (id 1)


CASES: dict[tuple[str, str], Case] = {
    ("GET", "/issues"): Case(200),
    ("POST", "/issues/check"): Case(200, body={"markdown": "", "filename": "x.md"}),  # filled in below
    ("POST", "/issues/{number}/publish"): Case(200, path={"number": SEED_NUMBER}),
    ("GET", "/sends"): Case(200, published=True),
    ("GET", "/sends/{number}"): Case(200, path={"number": SEED_NUMBER}, published=True),
    ("POST", "/sends/{number}/pause"): Case(200, path={"number": SEED_NUMBER}, published=True),
    ("POST", "/sends/{number}/resume"): Case(200, path={"number": SEED_NUMBER}, published=True),
    ("POST", "/sends/{number}/cancel"): Case(200, path={"number": SEED_NUMBER}, published=True),
    ("GET", "/subscribers"): Case(200, query={"status": "active"}, subscriber=True),
    ("POST", "/subscribers"): Case(201, body={"email": "new@example.org", "consent": True}),
    ("GET", "/subscribers/export"): Case(200, subscriber=True),
    ("PATCH", "/subscribers/{id}"): Case(200, path={"id": 1}, body={"sections": ["technology"]}, subscriber=True),
    ("POST", "/subscribers/{id}/unsubscribe"): Case(200, path={"id": 1}, subscriber=True),
    ("DELETE", "/subscribers/{id}"): Case(204, path={"id": 1}, subscriber=True),
    ("GET", "/stats"): Case(200, subscriber=True),
}


def test_every_route_has_a_case() -> None:
    assert {(r.method, r.path) for r in ROUTES} == set(CASES)


def _prepare(case: Case, database: Database, settings: Settings) -> None:
    if case.published:
        with database.session() as s:
            publishing.publish_issue(s, settings, settings.issues_dir / "2024-01-22-398.md")
    if case.subscriber:
        rows = ParsedCsv(rows=(ImportRow(1, "reader@example.org", ("industry",)),), errors=())
        with database.session() as s:
            importer.import_rows(s, settings, rows, consented=True)


def _entries(database: Database) -> list[audit.Entry]:
    with database.session(readonly=True) as s:
        return audit.entries(s)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_each_role_is_allowed_or_refused(
    route: Route,
    client: FlaskClient,
    app: Flask,
    database: Database,
    api_settings: Settings,
    secrets: dict[str, str],
    seed_path: Any,
) -> None:
    case = CASES[(route.method, route.path)]
    if route.path == "/issues/check":
        case = Case(200, body={"markdown": seed_path.read_text(encoding="utf-8"), "filename": seed_path.name})
    _prepare(case, database, api_settings)
    for role in ROLES:  # weakest first: a refusal changes nothing for the next role to find
        before = len(_entries(database))
        response = call(client, route, secrets[role], case.path, case.body, case.query)
        if may(role, route.action):
            assert response.status_code == case.status, (role, response.get_data(as_text=True))
            if route.writes:
                newest = _entries(database)[0]
                assert newest.actor == member(role) and f"{role} script" in newest.detail
        else:
            assert response.status_code == 403, (role, response.get_data(as_text=True))
            problem = response.get_json()
            assert response.mimetype == "application/problem+json"
            assert problem["status"] == 403 and problem["required_role"] == role_needed(route.action)
            assert len(_entries(database)) == before  # nothing was done, so nothing recorded
