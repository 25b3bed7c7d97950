"""The admin issue page: schedule with a date-time field (publication time zone), move, cancel; test sends
to several addresses. Signed in through the login form (tests/auth_support.py)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from auth_support import OWNER, add_staff, log_in
from builders import make_app
from flask.testing import FlaskClient

from feedsvc import schedule
from feedsvc.config import Settings
from feedsvc.db.engine import Database

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def client(settings: Settings, tmp_path: Path, seed_path: Path) -> Iterator[FlaskClient]:
    issues = tmp_path / "admin-issues"
    issues.mkdir()
    shutil.copyfile(seed_path, issues / "2024-01-29-399.md")
    (issues / "2024-01-29-399.md").write_text(
        seed_path.read_text(encoding="utf-8").replace("第 398 期", "第 399 期"), encoding="utf-8"
    )
    add_staff(settings.database_url, OWNER, "owner")
    with make_app(settings.with_overrides(issues_dir=issues)) as app:
        client = app.test_client()
        log_in(client, OWNER)
        yield client


def _post(client: FlaskClient, path: str, **form: str) -> str:
    page = client.get("/admin/issues/399").get_data(as_text=True)
    match = CSRF.search(page)
    assert match
    response = client.post(path, data={"csrf_token": match.group(1), **form}, follow_redirects=True)
    return response.get_data(as_text=True)


def test_schedule_move_and_cancel_from_the_issue_page(client: FlaskClient, db: Database) -> None:
    page = client.get("/admin/issues/399").get_data(as_text=True)
    assert 'type="datetime-local" name="at"' in page and "Asia/Shanghai" in page
    page = _post(client, "/admin/issues/399/schedule", at="2999-01-22T08:00")
    assert "2999-01-22 08:00 (Asia/Shanghai)" in page
    with db.session(readonly=True) as s:
        [waiting] = schedule.pending(s)
    assert waiting.due_at.isoformat() == "2999-01-22T00:00:00+00:00"  # read in the publication's zone
    page = _post(client, "/admin/issues/399/schedule", at="2999-01-23T09:30")
    assert "2999-01-23 09:30 (Asia/Shanghai)" in page
    assert "in the past" in _post(client, "/admin/issues/399/schedule", at="2001-01-01T00:00")
    assert "✓" in _post(client, "/admin/issues/399/schedule/cancel")
    with db.session(readonly=True) as s:
        assert schedule.pending(s) == []


def test_schedule_needs_the_csrf_token(client: FlaskClient, db: Database) -> None:
    response = client.post("/admin/issues/399/schedule", data={"at": "2999-01-22T08:00"})
    assert response.status_code == 400
    anonymous = client.application.test_client()
    assert anonymous.post("/admin/issues/399/schedule", data={"at": "2999-01-22T08:00"}).status_code in (401, 403)


def test_test_sends_to_several_addresses(client: FlaskClient, settings: Settings) -> None:
    page = _post(client, "/admin/issues/399/tests", addresses="a@example.org=research\nb@example.org")
    assert "✓ a@example.org (research)" in page and "✓ b@example.org (all)" in page
    assert len(list(settings.mail_dir.glob("*.eml"))) == 2
