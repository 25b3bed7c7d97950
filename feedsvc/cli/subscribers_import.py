"""`feedsvc subscribers import FILE.csv [--consented]`: the counterpart of `subscribers export`."""

from __future__ import annotations

from pathlib import Path

import click

from feedsvc import importing
from feedsvc.cli import get_settings, open_database
from feedsvc.cli.subscribers import subscribers_group


@subscribers_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--consented",
    is_flag=True,
    help="The people on the list already agreed (elsewhere): make them active without a confirmation mail.",
)
def import_command(path: Path, consented: bool) -> None:
    """Add subscribers from a CSV with a header row: email, sections (slugs separated by ';', empty = all).

    Without --consented each new address gets a confirmation mail and stays pending until it confirms.
    Erased, suppressed, unsubscribed and bounced addresses are never re-added. A bad row is reported with
    its line and skipped; every other row is imported.
    """
    settings = get_settings()
    parsed = importing.read(path.read_bytes(), settings)
    database = open_database(settings)
    try:
        with database.session() as session:
            result = importing.import_rows(session, settings, parsed, consented=consented)
    finally:
        database.dispose()
    for problem in result.errors:
        click.echo(f"{path}:{problem.line}: {problem.message}", err=True)
    for problem in result.skipped:
        click.echo(f"{path}:{problem.line}: skipped: {problem.message}", err=True)
    click.echo(
        f"imported {len(parsed.rows)} row(s): {result.activated} active, {result.confirmations} sent a confirmation, "
        f"{result.unchanged} already subscribed, {result.left} unsubscribed or bounced earlier (not re-added), "
        f"{result.suppressed} suppressed (not re-added), {result.throttled} confirmation(s) sent moments ago; "
        f"{len(result.errors)} bad row(s), {len(result.skipped)} skipped"
    )
    if result.errors:
        raise SystemExit(1)
