"""Shared fixtures: the real publication config, the seed issue (file and parsed), databases, settings.

Helpers a test module imports live in tests/support.py (paths, `require`) and tests/builders.py
(`make_settings`, `make_app`); the fixtures here are those builders with their defaults.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from builders import LOCAL_BASE_URL, make_settings
from support import ROOT, SEED, require, require_tool

from feedsvc.config import Publication, Settings, load_publication
from feedsvc.content.model import Issue
from feedsvc.content.reader import parse

if TYPE_CHECKING:
    from feedsvc.db.engine import Database


@pytest.fixture(scope="session")
def publication() -> Publication:
    return load_publication(ROOT / "feedsvc.toml")


@pytest.fixture(scope="session")
def seed_path() -> Path:
    return SEED


@pytest.fixture(scope="session")
def seed_issue(seed_path: Path, publication: Publication) -> Issue:
    """The seed issue, parsed once per session (an `Issue` is frozen: tests cannot change it for others)."""
    return parse(seed_path, publication)


@pytest.fixture(scope="session")
def seed(seed_issue: Issue) -> Issue:
    """`seed_issue` under the name the email and parse tests use."""
    return seed_issue


@pytest.fixture(scope="session", name="require")
def require_fixture() -> Callable[[bool, str], None]:
    """`support.require` as a fixture: skip when something is missing locally, fail in CI."""
    return require


@pytest.fixture(scope="session", name="require_tool")
def require_tool_fixture() -> Callable[[str], str]:
    """`support.require_tool` as a fixture: the path of an executable; skip without it locally, fail in CI."""
    return require_tool


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository's root folder."""
    return ROOT


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
    return make_settings(tmp_path, database_url, base_url=LOCAL_BASE_URL)


@pytest.fixture(autouse=True)
def _metrics_count_again() -> Iterator[None]:
    """A `feedsvc worker` run in this process (CliRunner) discards the metrics process-wide: undo it after."""
    yield
    from feedsvc.ops import metrics

    for name in metrics.METRICS:
        if isinstance(vars(metrics).get(name), metrics.Discarded):
            delattr(metrics, name)
