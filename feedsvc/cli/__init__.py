"""The `feedsvc` command. A thin shell: parse options, call the core, print, set the exit code.

Each command group lives in a module of this package and is added to `main` here, by name.
"""

from __future__ import annotations

from pathlib import Path

import click

from feedsvc.cli import bounces, check, db, dkim, dns, mail, publish, site, staff, subscribers, worker


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


for command in (
    check.check,
    site.build,
    site.serve,
    mail.preview,
    publish.publish,
    publish.status,
    publish.send_group,
    publish.schedule_group,
    worker.worker,
    subscribers.subscribers_group,
    db.db_group,
    dkim.dkim_group,
    dns.dns_command,
    staff.staff_group,
    staff.audit_command,
    bounces.bounces_group,
):
    main.add_command(command)
