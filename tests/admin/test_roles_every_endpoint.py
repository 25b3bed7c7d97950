"""Every admin endpoint (taken from app.url_map, so a new one cannot be missed) against every role: the role
this table says it needs and those above get 2xx/3xx, those below a 403 page naming the role, and someone
logged out goes to the login page (a form post is refused). Never a 500. On SQLite and PostgreSQL."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from team_support import TEAM, client_as, csrf, team_app, team_settings

from feedsvc.config import Settings
from feedsvc.staff.roles import EDITOR, OWNER, ROLES, VIEWER, allows
from feedsvc.web import access

# What each admin page and form needs, written out here independently of web/access.py: (method, path) -> role.
EXPECTED = {
    ("GET", "/admin/"): VIEWER,
    ("GET", "/admin/issues/398"): VIEWER,
    ("GET", "/admin/subscribers"): VIEWER,
    ("GET", "/admin/issues/398/email"): EDITOR,
    ("POST", "/admin/issues/398/test"): EDITOR,
    ("POST", "/admin/issues/398/tests"): EDITOR,
    ("POST", "/admin/issues/398/publish"): EDITOR,
    ("POST", "/admin/issues/398/schedule"): EDITOR,
    ("POST", "/admin/issues/398/schedule/cancel"): EDITOR,
    ("POST", "/admin/issues/398/pause"): EDITOR,
    ("POST", "/admin/issues/398/resume"): EDITOR,
    ("POST", "/admin/issues/398/cancel"): EDITOR,
    ("GET", "/admin/subscribers.csv"): OWNER,
    ("POST", "/admin/subscribers/import"): OWNER,
    ("POST", "/admin/subscribers/erase"): OWNER,
    ("GET", "/admin/staff"): OWNER,
    ("POST", "/admin/staff/add"): OWNER,
    ("POST", "/admin/staff/role"): OWNER,
    ("POST", "/admin/staff/remove"): OWNER,
    ("GET", "/admin/audit"): OWNER,
}
# Values for the URL variables of admin routes; a route with a variable not named here fails the test.
SAMPLE_ARGS = {"number": 398}
# A form each POST can be answered on (besides the CSRF token); the answer may well be "✗ …" on the page.
FORMS: dict[str, dict[str, object]] = {
    "/admin/issues/398/test": {"address": "t@example.org", "sections": "all"},
    "/admin/issues/398/tests": {"addresses": "t@example.org"},
    "/admin/issues/398/publish": {"confirm": "yes"},
    "/admin/issues/398/schedule": {"at": "2099-01-01T09:00"},
    "/admin/subscribers/erase": {"email": "nobody@example.org", "confirm": "yes"},
    "/admin/staff/add": {"email": "new@example.org", "role": VIEWER},
    "/admin/staff/role": {"email": "spare@example.org", "role": EDITOR},
    "/admin/staff/remove": {"email": "spare@example.org"},
}


def admin_requests(app: Flask) -> Iterator[tuple[str, str]]:
    """(method, path) for every method of every admin route, with each value of an `any(...)` variable."""
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("admin."):
            continue
        choices: list[dict[str, object]] = [{}]
        for name in rule.arguments:
            converter = rule._converters[name]
            values = sorted(converter.items) if hasattr(converter, "items") else [SAMPLE_ARGS.get(name)]
            assert values != [None], f"{rule.rule}: add a sample value for <{name}> to SAMPLE_ARGS"
            choices = [{**c, name: v} for c in choices for v in values]
        for args in choices:
            path = rule.build(args, append_unknown=False)[1]  # type: ignore[index]
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                yield method, path


def _request(client, method: str, path: str):  # type: ignore[no-untyped-def]
    if method == "GET":
        return client.get(path)
    form: dict[str, object] = {"csrf_token": csrf(client), **FORMS.get(path, {})}
    if path == "/admin/subscribers/import":
        form["file"] = (io.BytesIO(b"email,sections\nimported@example.org,\n"), "list.csv")
        return client.post(path, data=form, content_type="multipart/form-data")
    return client.post(path, data=form)


@pytest.fixture
def app(settings: Settings, tmp_path: Path, seed_path: Path) -> Iterator[Flask]:
    with team_app(team_settings(settings, tmp_path, seed_path)) as app:
        yield app


def test_every_admin_endpoint_is_in_both_tables(app: Flask) -> None:
    found = set(admin_requests(app))
    assert found == set(EXPECTED), f"missing here: {found - set(EXPECTED)}; gone: {set(EXPECTED) - found}"
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith("admin.")}
    assert endpoints == set(access.ENDPOINTS), "web/access.py ENDPOINTS must name every admin endpoint, no more"


@pytest.mark.parametrize("role", [*ROLES, None], ids=[*ROLES, "logged-out"])
def test_each_role_against_every_admin_endpoint(app: Flask, role: str | None) -> None:
    from auth_support import add_staff

    add_staff(app.extensions["feedsvc.db"], "spare@example.org", VIEWER)  # what the staff forms change
    client = client_as(app, role)
    wrong = []
    for method, path in admin_requests(app):
        needed = EXPECTED.get((method, path))
        assert needed is not None, f"{method} {path} is not in EXPECTED"
        response = _request(client, method, path)
        status = response.status_code
        if role is None:
            to_login = status in (302, 303) and "/admin/login" in response.headers.get("Location", "")
            if not (to_login if method == "GET" else to_login or status == 403):
                wrong.append(f"{method} {path}: {status} logged out")
        elif allows(role, needed):
            if not 200 <= status < 400:
                wrong.append(f"{method} {path}: {status} for {role}")
        elif status != 403 or access.ROLE_LABELS[needed] not in response.get_data(as_text=True):
            wrong.append(f"{method} {path}: {status} for {role}, not the 403 page naming {needed}")
    assert not wrong, "\n".join(wrong)


def test_an_endpoint_missing_from_the_table_is_refused_to_everyone(app: Flask) -> None:
    assert access.action_for("admin.some_new_page", {}) is None
    assert access.action_for("admin.control", {"action": "explode"}) is None
    assert access.action_for("admin.control", {"action": "pause"}) == "pause"
    owner = client_as(app, OWNER)
    saved = access.ENDPOINTS.pop("admin.staff_page")
    try:
        refused = owner.get("/admin/staff")
    finally:
        access.ENDPOINTS["admin.staff_page"] = saved
    assert refused.status_code == 403 and "没有列入权限表" in refused.get_data(as_text=True)
    assert owner.get("/admin/staff").status_code == 200


def test_the_refusal_page_reads_in_english_too(app: Flask) -> None:
    viewer = client_as(app, VIEWER)
    page = viewer.get("/admin/staff?lang=en")
    assert page.status_code == 403
    text = page.get_data(as_text=True)
    assert "This needs the role Owner or higher." in text and "Your role: Viewer." in text
    assert "<script" not in text


def test_buttons_follow_the_role(app: Flask) -> None:
    marks = {
        'action="/admin/issues/398/publish"': EDITOR,
        'action="/admin/issues/398/test"': EDITOR,
        'action="/admin/issues/398/schedule"': EDITOR,
        "/admin/issues/398/email": EDITOR,
    }
    for role in ROLES:
        page = client_as(app, role).get("/admin/issues/398").get_data(as_text=True)
        for mark, needed in marks.items():
            assert (mark in page) == allows(role, needed), f"{mark} for {role}"
        subscribers = client_as(app, role).get("/admin/subscribers").get_data(as_text=True)
        for mark in ('action="/admin/subscribers/import"', 'action="/admin/subscribers/erase"', "subscribers.csv"):
            assert (mark in subscribers) == (role == OWNER), f"{mark} for {role}"
        for link in ('href="/admin/staff"', 'href="/admin/audit"'):
            assert (link in page) == (role == OWNER), f"nav {link} for {role}"


def test_a_role_change_applies_at_the_next_request(app: Flask) -> None:
    editor = client_as(app, EDITOR)
    assert editor.get("/admin/issues/398/email").status_code == 200
    owner = client_as(app, OWNER)
    changed = owner.post("/admin/staff/role", data={"csrf_token": csrf(owner), "email": TEAM[EDITOR], "role": VIEWER})
    assert changed.status_code == 303
    assert editor.get("/admin/issues/398/email").status_code == 403
