"""The `feedsvc` command. A thin shell: parse options, call the core, print, set the exit code.

Each command group lives in a module of this package; COMMANDS lists them all, by name.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click

# Every command, by name: the module that holds it and the attribute, imported only when the command runs,
# so that `feedsvc worker` loads the worker and not the renderer, the web app or DKIM.
COMMANDS: dict[str, str] = {
    "check": "check:check",
    "build": "site:build",
    "serve": "site:serve",
    "preview": "mail:preview",
    "publish": "publish:publish",
    "status": "publish:status",
    "send": "publish:send_group",
    "schedule": "publish:schedule_group",
    "worker": "worker:worker",
    "subscribers": "subscribers:subscribers_group",
    "db": "db:db_group",
    "dkim": "dkim:dkim_group",
    "dns": "dns:dns_command",
    "staff": "staff:staff_group",
    "audit": "staff:audit_command",
    "bounces": "bounces:bounces_group",
}


class LazyGroup(click.Group):
    """A group whose commands are COMMANDS, each imported the first time it is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, attribute = where.split(":")
        command = getattr(importlib.import_module(f"feedsvc.cli.{module}"), attribute)
        assert command.name == cmd_name, f"COMMANDS[{cmd_name!r}] names the command {command.name!r}"
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
