"""`feedsvc subscribers`: the subscriber list for the publisher's records and for checks."""

from __future__ import annotations

import sys

import click

from feedsvc import subscriptions
from feedsvc.cli import get_settings, main, open_database
from feedsvc.models import SUBSCRIBER_STATUSES


@main.group("subscribers")
def subscribers_group() -> None:
    """Export and import subscribers (CSV: email, status, sections)."""


@subscribers_group.command("export")
@click.option("--status", type=click.Choice(SUBSCRIBER_STATUSES), help="Only subscribers with this status.")
def export_command(status: str | None) -> None:
    """Print every subscriber as CSV: email, status, sections (slugs separated by ';')."""
    database = open_database(get_settings())
    try:
        with database.session(readonly=True) as session:
            subscriptions.write_export(session, sys.stdout, status)
    finally:
        database.dispose()
