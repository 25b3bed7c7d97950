"""What every command shares: the settings of this run and the database, opened and closed around a command."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from feedsvc.config import ConfigError, Settings, load_settings
from feedsvc.db.engine import Database
from feedsvc.ops import logs

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

CLI_ACTOR = "cli"  # who the audit log names for a command run on the server


def get_settings(ctx: click.Context | None = None) -> Settings:
    """The settings of this run, loaded once; a configuration problem is a clean CLI error."""
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    root.obj = root.obj or {}
    if "settings" not in root.obj:
        try:
            root.obj["settings"] = load_settings(root.obj.get("config_path"))
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
    return root.obj["settings"]


@contextmanager
def open_database(settings: Settings, *, migrated: bool = True) -> Iterator[Database]:
    """The database of `settings`, disposed afterwards; unless `migrated=False`, refused with the fix
    (`feedsvc db upgrade`) when it is not at the code's schema."""
    database = Database(settings.database_url)
    try:
        problem = database.schema_problem() if migrated else None
        if problem:
            raise click.ClickException(problem)
        yield database
    finally:
        database.dispose()


def setup_logs() -> None:
    """Logging for a long-running command (worker, serve) as FEEDSVC_LOG_FORMAT says; a bad value is a CLI error."""
    try:
        logs.setup()
    except logs.LogConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def record(session: Session, action: str, detail: str = "") -> None:
    """Write what this command did to the audit log, in `session`'s transaction: actor "cli", from the OS user."""
    from feedsvc.staff import audit  # the staff models: for commands that write the audit log, not the worker

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    audit.record(session, CLI_ACTOR, action, detail, f"cli:{user}"[:64])
