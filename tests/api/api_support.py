"""What the API tests share: the test members' addresses, bearer headers, and calling a route of the table."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from feedsvc.web.api.openapi import PREFIX
from feedsvc.web.api.routes import Route


def bearer(secret: str) -> dict[str, str]:
    """The Authorization header of a token."""
    return {"Authorization": f"Bearer {secret}"}


def member(role: str) -> str:
    """The address of the test member with `role`."""
    return f"{role}@example.org"


def url(route: Route, path: dict[str, int]) -> str:
    """The route's URL with `path` values put in."""
    return PREFIX + route.path.format(**path)


def call(
    client: FlaskClient,
    route: Route,
    secret: str,
    path: dict[str, int] | None = None,
    body: dict[str, Any] | None = None,
    query: dict[str, str] | None = None,
) -> TestResponse:
    """Call `route` with the token `secret`."""
    return client.open(
        url(route, path or {}),
        method=route.method,
        headers=bearer(secret),
        json=body,
        query_string=query or {},
    )
