"""The owner's pages and the audit trail of the admin: staff add (with the mailed set-password link), role
change and removal, erasing a subscriber, the audit log page (newest first, paged, who/what/when/where),
an entry for each staff action done on the admin pages, and CSRF refused on every admin form. On SQLite
and PostgreSQL."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from team_support import TEAM, client_as, csrf, team_app, team_settings
from test_roles_every_endpoint import FORMS, admin_requests

from feedsvc.config import Settings
from feedsvc.db.models import OutboxMessage, Subscriber
from feedsvc.outbox import rules
from feedsvc.staff import accounts, audit
from feedsvc.staff.models import AuditEntry
from feedsvc.staff.roles import EDITOR, OWNER, VIEWER
from feedsvc.subscribers import privacy
from feedsvc.web.admin_owner import AUDIT_PAGE_SIZE

OWNER_ADDR = "198.51.100.7"


@pytest.fixture
def app(settings: Settings, tmp_path: Path, seed_path: Path) -> Iterator[Flask]:
    with team_app(team_settings(settings, tmp_path, seed_path)) as app:
        yield app


@pytest.fixture
def owner(app: Flask) -> FlaskClient:
    return client_as(app, OWNER, OWNER_ADDR)


def _entries(app: Flask) -> list[audit.Entry]:
    with app.extensions["feedsvc.db"].session(readonly=True) as s:
        return audit.entries(s)


def _post(client: FlaskClient, path: str, **form: object) -> str:
    response = client.post(path, data={"csrf_token": csrf(client), **form}, follow_redirects=True)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def test_every_admin_form_refuses_a_post_without_the_csrf_token(app: Flask, owner: FlaskClient) -> None:
    with app.extensions["feedsvc.db"].session(readonly=True) as s:
        before = s.scalar(select(func.count()).select_from(AuditEntry))
    posts = [path for method, path in admin_requests(app) if method == "POST"]
    assert "/admin/staff/add" in posts and "/admin/subscribers/erase" in posts
    for path in posts:
        for token in ({}, {"csrf_token": "forged-" + "x" * 40}):
            response = owner.post(path, data={**FORMS.get(path, {}), **token})
            assert response.status_code == 400, (path, token, response.status_code)
    with app.extensions["feedsvc.db"].session(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == before  # nothing was done
        assert [m.email for m in accounts.members(s)] == sorted(TEAM.values())


def test_an_owner_adds_a_member_who_is_mailed_a_set_password_link(app: Flask, owner: FlaskClient) -> None:
    page = _post(owner, "/admin/staff/add", email="New@Example.org", role=EDITOR)
    assert "✓" in page and "new@example.org" in page
    with app.extensions["feedsvc.db"].session(readonly=True) as s:
        assert ("new@example.org", EDITOR, False) in [(m.email, m.role, m.has_password) for m in accounts.members(s)]
        (row,) = s.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "new@example.org"))
        mail = rules.stored_message(row.id, row.kind, row.message)
    assert "/admin/password/" in mail.get_body(("plain",)).get_content()
    again = _post(owner, "/admin/staff/add", email="new@example.org", role=VIEWER)
    assert "✗" in again and "这个地址已经是员工了。" in again and "staff already" not in again  # the page's words
    bad = _post(owner, "/admin/staff/add", email="nobody", role=VIEWER)
    assert "✗" in bad and "邮箱地址无效。" in bad
    (entry, *_) = _entries(app)
    assert (entry.actor, entry.action, entry.detail, entry.client) == (
        TEAM[OWNER],
        "staff.add",
        "new@example.org editor",
        OWNER_ADDR,
    )


def test_role_change_and_removal_are_audited_and_an_owner_cannot_lock_themselves_out(
    app: Flask, owner: FlaskClient
) -> None:
    assert "✓" in _post(owner, "/admin/staff/role", email=TEAM[VIEWER], role=EDITOR)
    assert "✗" in _post(owner, "/admin/staff/role", email=TEAM[VIEWER], role="superuser")
    assert "✓" in _post(owner, "/admin/staff/remove", email=TEAM[EDITOR])
    assert "✗" in _post(owner, "/admin/staff/remove", email=TEAM[EDITOR])  # gone already
    assert "不能修改自己的账户" in _post(owner, "/admin/staff/remove", email=TEAM[OWNER].upper())
    assert "不能修改自己的账户" in _post(owner, "/admin/staff/role", email=TEAM[OWNER], role=VIEWER)
    with app.extensions["feedsvc.db"].session(readonly=True) as s:
        assert [(m.email, m.role) for m in accounts.members(s)] == [(TEAM[OWNER], OWNER), (TEAM[VIEWER], EDITOR)]
    found = [(e.actor, e.action, e.detail, e.client) for e in _entries(app)[:2]]
    assert found == [
        (TEAM[OWNER], "staff.remove", TEAM[EDITOR], OWNER_ADDR),
        (TEAM[OWNER], "staff.role", f"{TEAM[VIEWER]} viewer -> editor", OWNER_ADDR),
    ]
    listing = owner.get("/admin/staff").get_data(as_text=True)
    assert TEAM[VIEWER] in listing and TEAM[EDITOR] not in listing


def test_erasing_a_subscriber_leaves_only_a_hash_in_the_log(app: Flask, owner: FlaskClient) -> None:
    data = {
        "csrf_token": csrf(owner),
        "consented": "yes",
        "file": (io.BytesIO(b"email,sections\ngone@example.org,\n"), "a.csv"),
    }
    assert owner.post("/admin/subscribers/import", data=data, content_type="multipart/form-data").status_code == 200
    assert "请先勾选确认框" in _post(owner, "/admin/subscribers/erase", email="gone@example.org")
    page = _post(owner, "/admin/subscribers/erase", email="Gone@example.org", confirm="yes")
    assert "✓" in page
    assert "✗" in _post(owner, "/admin/subscribers/erase", email="gone@example.org", confirm="yes")
    with app.extensions["feedsvc.db"].session(readonly=True) as s:
        assert s.scalar(select(Subscriber).where(Subscriber.email == "gone@example.org")) is None
        assert privacy.is_suppressed(s, "gone@example.org")
    entry = _entries(app)[0]
    assert (entry.action, entry.client) == ("subscribers_erase", OWNER_ADDR)
    assert "gone@" not in entry.detail and privacy.email_hash("gone@example.org").startswith(entry.detail[7:])


def test_each_action_on_the_admin_pages_is_audited(app: Flask, owner: FlaskClient) -> None:
    editor = client_as(app, EDITOR, "203.0.113.5")
    rows = b"email,sections\nr1@example.org,\nr2@example.org,technology\n"
    data = {"csrf_token": csrf(owner), "consented": "yes", "file": (io.BytesIO(rows), "readers.csv")}
    owner.post("/admin/subscribers/import", data=data, content_type="multipart/form-data")
    assert owner.get("/admin/subscribers.csv?status=active").status_code == 200
    _post(editor, "/admin/issues/398/test", address="t@example.org", sections="all")
    _post(editor, "/admin/issues/398/tests", addresses="u@example.org=technology")
    _post(editor, "/admin/issues/398/schedule", at="2099-01-01T09:00")
    _post(editor, "/admin/issues/398/schedule/cancel")
    _post(editor, "/admin/issues/398/publish", confirm="yes")
    for action in ("pause", "resume", "cancel"):
        _post(editor, f"/admin/issues/398/{action}")
    _post(editor, "/admin/issues/398/pause")  # a cancelled send cannot pause: refused, so not recorded
    staff_made = [e for e in reversed(_entries(app)) if e.actor != "test" and e.action != "login"]  # not the setup
    found = [(e.actor, e.action, e.detail, e.client) for e in staff_made]
    by_editor = [
        (TEAM[EDITOR], action, detail, "203.0.113.5")
        for action, detail in [
            ("test_send", "issue 398 to t@example.org (all)"),
            ("test_send", "issue 398 to u@example.org (technology)"),
        ]
    ]
    assert found[0] == (
        TEAM[OWNER],
        "subscribers_import",
        "readers.csv: 2 activated, 0 confirmations (consented)",
        OWNER_ADDR,
    )
    assert found[1] == (TEAM[OWNER], "subscribers_export", "status active", OWNER_ADDR)
    assert found[2:4] == by_editor
    assert [e[1] for e in found[4:]] == ["schedule", "schedule", "publish", "pause", "resume", "cancel"]
    assert found[6][2] == "issue 398: 2 queued"
    assert {e[0] for e in found[4:]} == {TEAM[EDITOR]} and {e[3] for e in found[4:]} == {"203.0.113.5"}


def test_the_audit_page_is_newest_first_and_paged(app: Flask, owner: FlaskClient) -> None:
    with app.extensions["feedsvc.db"].session() as s:
        for n in range(AUDIT_PAGE_SIZE + 5):
            audit.record(s, "cli", "publish", f"entry {n:03d}", "")
        audit.record(s, "ed@example.org", "pause", "<b>issue 398</b>", "192.0.2.44")
    first = owner.get("/admin/audit").get_data(as_text=True)
    assert first.index("&lt;b&gt;issue 398&lt;/b&gt;") < first.index(f"entry {AUDIT_PAGE_SIZE + 4:03d}")
    assert "192.0.2.44" in first and "<b>issue" not in first
    # 50 a page: the newest entry and entries 054 … 006 on the first; 005 … 000, the login and the setup after.
    assert "entry 006" in first and "entry 005" not in first and 'href="/admin/audit?page=2"' in first
    second = owner.get("/admin/audit?page=2").get_data(as_text=True)
    assert "entry 005" in second and "entry 000" in second and "entry 006" not in second
    assert 'href="/admin/audit?page=1"' in second and "page=3" not in second
    assert owner.get("/admin/audit?page=0").status_code == 400
    assert "Audit log" in owner.get("/admin/audit?lang=en").get_data(as_text=True)
