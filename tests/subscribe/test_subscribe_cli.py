"""`feedsvc db upgrade`, `feedsvc subscribers export`, `feedsvc worker --once`, and the packaged migrations."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from feedsvc.cli import main
from feedsvc.config import Settings
from feedsvc.db.engine import Database, head_revision
from feedsvc.subscribers import subscriptions, tokens

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], settings: Settings, database_url: str) -> tuple[int, str]:
    env = {
        "FEEDSVC_CONFIG": str(ROOT / "feedsvc.toml"),
        "FEEDSVC_VAR_DIR": str(settings.var_dir),
        "FEEDSVC_SECRET_KEY": settings.secret_key,
        "DATABASE_URL": database_url,
    }
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_db_upgrade_creates_then_keeps_the_schema(tmp_path: Path, settings: Settings) -> None:
    url = f"sqlite:///{tmp_path / 'fresh' / 'feedsvc.db'}"
    assert run(["db", "current"], settings, url)[0] == 1
    code, out = run(["db", "upgrade"], settings, url)
    assert (code, out.strip()) == (0, f"database migrated: empty -> {head_revision()}")
    code, out = run(["db", "upgrade"], settings, url)
    assert (code, out.strip()) == (0, f"database is up to date ({head_revision()})")
    assert run(["db", "current"], settings, url)[0] == 0
    engine = sa.create_engine(url)
    tables = set(sa.inspect(engine).get_table_names())
    assert {
        "subscribers",
        "subscriber_sections",
        "subscriber_events",
        "suppressions",
        "outbox",
        "rate_limits",
    } <= tables
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()
    assert run(["db", "downgrade", "base"], settings, url)[0] == 0
    engine = sa.create_engine(url)
    assert "subscribers" not in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_db_upgrade_on_the_test_database_is_a_no_op(settings: Settings, database_url: str) -> None:
    code, out = run(["db", "upgrade"], settings, database_url)
    assert (code, out.strip()) == (0, f"database is up to date ({head_revision()})")


def test_sqlite_connections_have_foreign_keys_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with database.engine.connect() as connection:
        pragmas = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("foreign_keys", "journal_mode", "busy_timeout")
        }
    database.dispose()
    assert pragmas == {"foreign_keys": 1, "journal_mode": "wal", "busy_timeout": 15000}


def test_subscribers_export_csv(db: Database, settings: Settings, database_url: str) -> None:
    with db.session() as s:
        subscriptions.subscribe(s, settings, "b@example.org", ["research", "industry"])
        subscriptions.subscribe(s, settings, "a.reader@例子.广告", ["people"])
    with db.session(readonly=True) as s:
        from feedsvc.db.models import Subscriber

        b = s.scalars(sa.select(Subscriber).where(Subscriber.email == "b@example.org")).one()
    with db.session() as s:
        subscriptions.confirm(s, settings, tokens.make_token(settings, "confirm", b.id, b.token_version))
    code, out = run(["subscribers", "export"], settings, database_url)
    assert code == 0
    assert list(csv.reader(io.StringIO(out))) == [
        ["email", "status", "sections", "bounce_score"],
        ["a.reader@xn--fsqu00a.xn--4rr70v", "pending", "people", "0"],
        ["b@example.org", "active", "industry;research", "0"],
    ]
    code, out = run(["subscribers", "export", "--status", "active"], settings, database_url)
    assert out.splitlines() == ["email,status,sections,bounce_score", "b@example.org,active,industry;research,0"]


def test_subscribers_export_of_an_empty_list_is_the_header(settings: Settings, database_url: str) -> None:
    assert run(["subscribers", "export"], settings, database_url) == (0, "email,status,sections,bounce_score\n")


def test_worker_once_sends_to_the_mail_folder(db: Database, settings: Settings, database_url: str) -> None:
    with db.session() as s:
        subscriptions.subscribe(s, settings, "reader@example.org", ["industry"])
    code, out = run(["worker", "--once"], settings, database_url)
    assert code == 0
    assert "sent 1," in out
    [eml] = list(settings.mail_dir.glob("*.eml"))
    assert b"reader@example.org" in eml.read_bytes()


def test_migrations_ship_in_the_package() -> None:
    """What setuptools packages (pyproject: packages.find + package-data) includes every migration file."""
    import fnmatch
    import tomllib

    from setuptools import find_packages

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    packages = find_packages(str(ROOT), include=config["packages"]["find"]["include"])
    assert {"feedsvc.db.migrations", "feedsvc.db.migrations.versions"} <= set(packages)
    patterns = config["package-data"]["feedsvc.db"]
    folder = ROOT / "feedsvc" / "db" / "migrations"
    for path in [folder / "script.py.mako", *folder.glob("versions/*.py")]:
        relative = path.relative_to(ROOT / "feedsvc" / "db").as_posix()
        shipped = path.suffix == ".py" or any(fnmatch.fnmatch(relative, p) for p in patterns)
        assert shipped, relative


@pytest.mark.parametrize("url", ["postgresql://u@h/db", "postgres://u@h/db"])
def test_plain_postgresql_urls_use_psycopg3(url: str) -> None:
    from feedsvc.db.engine import normalise_url

    assert normalise_url(url).drivername == "postgresql+psycopg"
