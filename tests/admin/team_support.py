"""A team on the admin pages for tests: settings with the seed issue, an app with a viewer, an editor and an
owner (each with a password), and test clients logged in as each of them through the real login form.

    with team_app(settings) as app:
        editor = client_as(app, EDITOR)
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from auth_support import add_staff, log_in
from builders import make_app
from flask import Flask
from flask.testing import FlaskClient

from feedsvc.config import Settings
from feedsvc.staff.roles import EDITOR, OWNER, VIEWER

TEAM = {VIEWER: "viewer@example.org", EDITOR: "editor@example.org", OWNER: "owner@example.org"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def team_settings(settings: Settings, tmp_path: Path, seed_path: Path) -> Settings:
    """`settings` with an issues folder holding just the seed issue (398)."""
    issues = tmp_path / "team-issues"
    issues.mkdir()
    shutil.copyfile(seed_path, issues / seed_path.name)
    return settings.with_overrides(issues_dir=issues)


@contextmanager
def team_app(settings: Settings) -> Iterator[Flask]:
    """The app on `settings`, with one staff member of each role in TEAM."""
    with make_app(settings) as app:
        for role, email in TEAM.items():
            add_staff(app.extensions["feedsvc.db"], email, role)
        yield app


def client_as(app: Flask, role: str | None, remote_addr: str = "127.0.0.1") -> FlaskClient:
    """A test client of `app` from `remote_addr`, logged in as TEAM's member of `role` (or not at all, for None)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = remote_addr
    if role is not None:
        log_in(client, TEAM[role])
    return client


def csrf(client: FlaskClient, path: str = "/admin/") -> str:
    """The session's CSRF token, from a form on `path` or, for a page with none, from the login form."""
    found = CSRF.search(client.get(path).get_data(as_text=True))
    if found is None:
        found = CSRF.search(client.get("/admin/login").get_data(as_text=True))
    assert found is not None, f"no CSRF token on {path}"
    return found.group(1)
