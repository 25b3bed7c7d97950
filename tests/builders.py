"""Settings and apps for tests, built with overrides (in the manner of Datasette's `make_app_client`).

    settings = make_settings(tmp_path, database_url, admin_password="pw")
    with make_app(settings) as app:
        client = app.test_client()

The fixtures in the conftests are these builders with their defaults; a test that needs something
else builds its own instead of copying a fixture.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from support import ROOT, SEED

from feedsvc.config import Settings, load_settings
from feedsvc.web import create_app

SECRET_KEY = "test-secret-key-0123456789"
LOCAL_BASE_URL = "http://127.0.0.1:8000"


def make_settings(
    tmp_path: Path,
    database_url: str | None = None,
    *,
    base_url: str | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Settings from the real feedsvc.toml and templates, var/ (site, mail, SQLite) under `tmp_path`.

    The issues folder is `tmp_path/issues-folder` with a copy of the seed, so that no test can write into the
    repository's own issues/. Nothing is read from os.environ. `database_url` defaults to SQLite in var/,
    `base_url` to feedsvc.toml's;
    `env` adds FEEDSVC_* variables as the environment would; `overrides` replace Settings fields afterwards.
    """
    issues = tmp_path / "issues-folder"
    issues.mkdir(exist_ok=True)
    if not (issues / SEED.name).exists():
        shutil.copyfile(SEED, issues / SEED.name)
    variables = {
        "FEEDSVC_ISSUES_DIR": str(issues),
        "FEEDSVC_VAR_DIR": str(tmp_path / "var"),
        "FEEDSVC_SECRET_KEY": SECRET_KEY,
        "FEEDSVC_TEMPLATES_DIR": str(ROOT / "templates"),
    }
    if database_url is not None:
        variables["DATABASE_URL"] = database_url
    if base_url is not None:
        variables["FEEDSVC_BASE_URL"] = base_url
    settings = load_settings(ROOT / "feedsvc.toml", {**variables, **(env or {})})
    return settings.with_overrides(**overrides) if overrides else settings


@contextmanager
def make_app(settings: Settings, **config: Any) -> Iterator[Flask]:
    """The web app on `settings` (TESTING unless `config` says otherwise); its database is closed afterwards."""
    app = create_app(settings, **{"TESTING": True, **config})
    try:
        yield app
    finally:
        app.extensions["feedsvc.db"].dispose()


def cli_env(settings: Settings) -> dict[str, str]:
    """The environment under which `feedsvc` commands (CliRunner or a subprocess) see exactly `settings`."""
    return {
        "FEEDSVC_CONFIG": str(ROOT / "feedsvc.toml"),
        "FEEDSVC_VAR_DIR": str(settings.var_dir),
        "FEEDSVC_ISSUES_DIR": str(settings.issues_dir),
        "FEEDSVC_SITE_DIR": str(settings.site_dir),
        "FEEDSVC_SECRET_KEY": settings.secret_key,
        "FEEDSVC_BASE_URL": settings.base_url,
        "DATABASE_URL": settings.database_url,
    }
