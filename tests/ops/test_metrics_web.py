"""The web app's /metrics: behind a password (404 without one configured, 401 without the right one), and
every request counted by Flask endpoint and status, never by raw path."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from builders import make_app, make_settings
from flask.testing import FlaskClient
from metrics_support import Samples, parse, value


def client_for(tmp_path: Path, database_url: str, **env: str):  # type: ignore[no-untyped-def]
    return make_app(make_settings(tmp_path, database_url, env=env))


def basic(password: str, user: str = "prometheus") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def scrape(client: FlaskClient, password: str) -> Samples:
    answer = client.get("/metrics", headers=basic(password))
    assert answer.status_code == 200, answer.status_code
    assert answer.content_type.startswith("text/plain")
    return parse(answer.get_data(as_text=True))


def test_without_a_password_configured_there_is_no_metrics_page(tmp_path: Path, database_url: str) -> None:
    with client_for(tmp_path, database_url) as app:
        assert app.test_client().get("/metrics", headers=basic("")).status_code == 404


@pytest.mark.parametrize(
    ("env", "password"),
    [
        ({"FEEDSVC_METRICS_PASSWORD": "scrape-secret", "FEEDSVC_ADMIN_PASSWORD": "admin-secret"}, "scrape-secret"),
        ({"FEEDSVC_ADMIN_PASSWORD": "admin-secret"}, "admin-secret"),
    ],
)
def test_metrics_need_the_password(tmp_path: Path, database_url: str, env: dict[str, str], password: str) -> None:
    with client_for(tmp_path, database_url, **env) as app:
        client = app.test_client()
        refused = client.get("/metrics")
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
        assert b"feedsvc_" not in refused.data
        assert client.get("/metrics", headers=basic("wrong")).status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Basic !!not-base64"}).status_code == 401
        if "FEEDSVC_METRICS_PASSWORD" in env:  # the metrics password, when set, is the only one
            assert client.get("/metrics", headers=basic(env["FEEDSVC_ADMIN_PASSWORD"])).status_code == 401
        assert client.get("/metrics", headers={"Authorization": f"Bearer {password}"}).status_code == 200
        samples = scrape(client, password)
        assert value(samples, "feedsvc_queue_depth", state="queued") == 0  # the outbox, counted at scrape time


def test_requests_are_counted_by_endpoint_and_status(tmp_path: Path, database_url: str) -> None:
    with client_for(tmp_path, database_url, FEEDSVC_METRICS_PASSWORD="pw") as app:
        client = app.test_client()
        before = scrape(client, "pw")
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
        assert client.get("/no-such-page-4711").status_code == 404
        assert client.get("/issues/999999").status_code == 404
        assert client.get("/metrics").status_code == 401
        after = scrape(client, "pw")

    def delta(endpoint: str, status: str) -> float:
        labels = {"endpoint": endpoint, "status": status}
        return value(after, "feedsvc_http_requests_total", **labels) - value(
            before, "feedsvc_http_requests_total", **labels
        )

    assert delta("public.healthz", "200") == 3
    assert delta("none", "404") == 1
    assert delta("public.issue", "404") == 1
    assert delta("metrics.scrape", "401") == 1
    assert delta("metrics.scrape", "200") == 1  # the first scrape, counted once it was answered
    durations = "feedsvc_http_request_duration_seconds_count"
    assert value(after, durations, endpoint="public.healthz") - value(before, durations, endpoint="public.healthz") == 3
    labels = {v for (name, pairs) in after if name.startswith("feedsvc_http") for _, v in pairs}
    assert not any("4711" in v or "999999" in v for v in labels)  # no raw path becomes a series
