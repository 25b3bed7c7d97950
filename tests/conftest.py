"""Shared fixtures: the real publication config, the seed issue, and a guard for external tools."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from feedsvc.config import Publication, Settings, load_publication

if TYPE_CHECKING:
    from feedsvc.db.engine import Database

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "issues" / "2024-01-22-398.md"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, what: str) -> None:
    """Skip when `what` is missing on a developer machine; in CI (CI=true) nothing is skipped: fail."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI", pytrace=False)
    pytest.skip(f"{what} is not available")


def require_tool(name: str) -> str:
    """The path of an executable, or skip (fail in CI) when it is missing."""
    path = shutil.which(name)
    require(path is not None, f"the {name} executable")
    return path or ""


@pytest.fixture(scope="session")
def publication() -> Publication:
    return load_publication(ROOT / "feedsvc.toml")


@pytest.fixture(scope="session")
def seed_path() -> Path:
    return SEED


# --- databases: every test that takes `database_url` runs on SQLite and on PostgreSQL -------------------

PG_URL = os.environ.get("FEEDSVC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database file, made once per session; each test gets a copy."""
    from feedsvc.db.engine import Database

    path = tmp_path_factory.mktemp("sqlite-template") / "feedsvc.db"
    database = Database(f"sqlite:///{path}")
    database.upgrade()
    database.dispose()  # closing the last connection checkpoints the WAL into the file
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, migrated schema on the test PostgreSQL for this session (dropped afterwards); its URL.

    The URL sets the schema through libpq's `options`, so subprocesses (a live server, gunicorn, the
    worker) given it as DATABASE_URL use the same schema. Missing PostgreSQL skips locally, fails in CI.
    """
    import secrets

    import sqlalchemy as sa

    from feedsvc.db.engine import Database

    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError:
        admin.dispose()
        require(False, "PostgreSQL at 127.0.0.1:5432 (user postgres, database test)")
    schema = f"feedsvc_test_{os.getpid()}_{secrets.token_hex(3)}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    try:
        database = Database(url)
        database.upgrade()
        database.dispose()
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


def _empty_tables(url: str) -> None:
    import sqlalchemy as sa

    from feedsvc.db.models import Base

    engine = sa.create_engine(url)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated database: a copy of the SQLite template, or the session's PostgreSQL schema emptied."""
    if request.param == "sqlite":
        path = tmp_path / "feedsvc.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_url")
    _empty_tables(url)
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A `feedsvc.db.Database` on `database_url`."""
    from feedsvc.db.engine import Database

    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings for a test: the real feedsvc.toml and templates, var/ and mail in tmp_path, the test database."""
    from feedsvc.config import load_settings

    env = {
        "FEEDSVC_VAR_DIR": str(tmp_path / "var"),
        "FEEDSVC_SECRET_KEY": "test-secret-key-0123456789",
        "DATABASE_URL": database_url,
        "FEEDSVC_BASE_URL": "http://127.0.0.1:8000",
    }
    return load_settings(ROOT / "feedsvc.toml", env)
