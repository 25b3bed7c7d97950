"""`feedsvc db`: bring the database schema up to date (Alembic, run in-process from the installed package)."""

from __future__ import annotations

import click

from feedsvc.cli.context import get_settings, open_database
from feedsvc.db.engine import current_revision, downgrade, head_revision


@click.group("db")
def db_group() -> None:
    """The database schema (DATABASE_URL; default SQLite under var/)."""


@db_group.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Migrate the database up to REVISION (default: the newest)."""
    with open_database(get_settings(), migrated=False) as database:
        before = current_revision(database.engine)
        database.upgrade(revision)
        after = current_revision(database.engine)
    if before == after:
        click.echo(f"database is up to date ({after})")
    else:
        click.echo(f"database migrated: {before or 'empty'} -> {after}")


@db_group.command("downgrade")
@click.argument("revision")
def downgrade_command(revision: str) -> None:
    """Migrate the database down to REVISION ('base' removes every table)."""
    with open_database(get_settings(), migrated=False) as database:
        downgrade(database.engine, revision)
        click.echo(f"database at {current_revision(database.engine) or 'base'}")


@db_group.command()
def current() -> None:
    """Print the database's revision and the newest one; exit 1 if it is behind."""
    with open_database(get_settings(), migrated=False) as database:
        revision = current_revision(database.engine)
    head = head_revision()
    click.echo(f"current: {revision or 'empty'}\nhead: {head}")
    if revision != head:
        raise SystemExit(1)
