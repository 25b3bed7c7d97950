"""`feedsvc subscribers export|import`: the subscriber list as CSV, out and in."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from feedsvc.bounces.classify import BouncePolicy
from feedsvc.cli.context import get_settings, open_database, record
from feedsvc.db.models import SUBSCRIBER_STATUSES
from feedsvc.subscribers import importer, privacy


@click.group("subscribers")
def subscribers_group() -> None:
    """Export and import subscribers (CSV: email, status, sections)."""


@subscribers_group.command("export")
@click.option("--status", type=click.Choice(SUBSCRIBER_STATUSES), help="Only subscribers with this status.")
def export_command(status: str | None) -> None:
    """Print every subscriber as CSV: email, status, sections (slugs separated by ';'), bounce_score."""
    settings = get_settings()
    with open_database(settings) as database:
        with database.session(readonly=True) as session:
            privacy.write_export(session, sys.stdout, status, policy=BouncePolicy.from_env(settings.extra))
        with database.session() as session:
            record(session, "subscribers_export", f"status {status or 'all'}")


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
    parsed = importer.read(path.read_bytes(), settings)
    with open_database(settings) as database, database.session() as session:
        result = importer.import_rows(session, settings, parsed, consented=consented)
        detail = f"{path.name}: {len(parsed.rows)} row(s), {result.activated} active, {result.confirmations} to confirm"
        record(session, "subscribers_import", detail + (" (consented)" if consented else ""))
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
