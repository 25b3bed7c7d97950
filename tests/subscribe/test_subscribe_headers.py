"""Issue 16, items 7 and 8: one header policy on every response, and only the base URL's host is served."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from auth_support import OWNER, add_staff, log_in
from flask import Flask

from feedsvc.config import Settings
from feedsvc.site.build import build
from feedsvc.web import create_app


@pytest.fixture
def site_app(settings: Settings) -> Iterator[Flask]:
    """The app over a built site of issues/ (the seed issue), with one staff owner."""
    add_staff(settings.database_url, OWNER, "owner")
    build(settings.issues_dir, settings.site_dir, settings.publication, settings.templates_dir)
    app = create_app(settings, TESTING=True)
    yield app
    app.extensions["feedsvc.db"].dispose()


PATHS = [
    ("/", 200),
    ("/issues/", 200),
    ("/issues/398", 200),
    ("/feeds/all.atom", 200),
    ("/feeds/all.json", 200),
    ("/nowhere", 404),
    ("/subscribe", 200),
    ("/healthz", 200),
    ("/admin/login", 200),
    ("/admin/", 200),
    ("/admin/subscribers.csv", 200),
]


@pytest.mark.parametrize(("path", "status"), PATHS)
def test_every_response_carries_the_policy(site_app: Flask, path: str, status: int) -> None:
    client = site_app.test_client()
    log_in(client, OWNER)
    response = client.get(path)
    assert response.status_code == status
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert "script-src" not in csp and "'unsafe-eval'" not in csp
    if response.mimetype != "text/html":
        assert "sandbox" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers.get("Server", "feedsvc") == "feedsvc"


def test_no_server_version_from_the_development_server(settings: Settings) -> None:
    """`feedsvc serve` (Werkzeug) would say "Werkzeug/3.x Python/3.x"; its handler names feedsvc only."""
    import http.client
    import threading

    from werkzeug.serving import make_server

    from feedsvc.web.security import QuietRequestHandler

    app = create_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        assert response.msg.get_all("Server") == ["feedsvc"]
    finally:
        server.shutdown()
        app.extensions["feedsvc.db"].dispose()


def test_a_foreign_host_is_refused_and_redirects_use_the_base_url(site_app: Flask) -> None:
    client = site_app.test_client()
    evil = client.get("/issues", headers={"Host": "evil.example"})
    assert evil.status_code == 400
    assert "evil.example" not in evil.headers.get("Location", "")
    assert client.get("/", headers={"Host": "evil.example:8000"}).status_code == 400
    # The test client's "localhost" (loopback) is served; the redirect is built on FEEDSVC_BASE_URL.
    redirect = client.get("/issues")
    assert redirect.status_code == 308
    assert redirect.headers["Location"] == "http://127.0.0.1:8000/issues/"


def test_redirects_of_a_public_site_use_its_base_url(settings: Settings) -> None:
    from dataclasses import replace

    public = settings.with_overrides(publication=replace(settings.publication, base_url="https://news.example.org"))
    app = create_app(public, TESTING=True)
    try:
        client = app.test_client()
        assert client.get("/healthz", headers={"Host": "news.example.org"}).status_code == 200
        response = client.get("/issues", headers={"Host": "news.example.org"})
        assert response.headers["Location"] == "https://news.example.org/issues/"
        assert client.get("/healthz", headers={"Host": "evil.example"}).status_code == 400
    finally:
        app.extensions["feedsvc.db"].dispose()
