"""The `feedsvc` command. A thin shell: parse options, call the core, print, set the exit code.

Each area keeps its commands in a module of this package (check, site, mail, …); every module here
is imported when the command starts, and registers its commands on `main`.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import click

from feedsvc.config import ConfigError, Settings, load_settings
from feedsvc.db import Database


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="FEEDSVC_CONFIG",
    help="feedsvc.toml to use (default: the one in this folder or a parent).",
)
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """feedsvc: Markdown issues in; feeds, a web archive and newsletters out."""
    ctx.obj = {"config_path": config_path}


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


def open_database(settings: Settings) -> Database:
    """The database of `settings`, refusing with a clear message when it is not migrated to the code's schema."""
    database = Database(settings.database_url)
    problem = database.schema_problem()
    if problem:
        database.dispose()
        raise click.ClickException(problem)
    return database


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
