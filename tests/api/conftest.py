"""The API's fixtures: an app on the test database with an issues folder, one staff member and token per
role, and a client that speaks bearer tokens. On SQLite and PostgreSQL (the `settings` fixture)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import member
from builders import make_app
from flask import Flask
from flask.testing import FlaskClient

from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.staff import accounts, tokens
from feedsvc.staff.roles import ROLES


@pytest.fixture
def api_settings(settings: Settings, tmp_path: Path, seed_path: Path) -> Settings:
    """Settings with an issues folder holding the seed (398)."""
    issues = tmp_path / "issues"
    issues.mkdir()
    shutil.copyfile(seed_path, issues / seed_path.name)
    return settings.with_overrides(issues_dir=issues)


@pytest.fixture
def app(api_settings: Settings) -> Iterator[Flask]:
    with make_app(api_settings) as app:
        yield app


@pytest.fixture
def database(app: Flask) -> Database:
    """The app's own database."""
    return app.extensions["feedsvc.db"]


@pytest.fixture
def secrets(database: Database) -> dict[str, str]:
    """A staff member per role and a token for each: role → the token's secret."""
    found = {}
    with database.session() as s:
        for role in ROLES:
            accounts.add(s, member(role), role, "test")
            found[role], _ = tokens.create(s, member(role), "test", name=f"{role} script")
    return found


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
