"""`feedsvc worker`: send the outbox (confirmation and manage-link mail now) through the configured transport."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import click

from feedsvc.cli import get_settings, main
from feedsvc.db import Database
from feedsvc.delivery import Worker


@main.command()
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@click.option("--batch", "batch_size", default=20, show_default=True, help="Rows claimed per batch.")
@click.option("--poll", "poll_interval", default=1.0, show_default=True, help="Seconds to wait when nothing is due.")
def worker(once: bool, batch_size: int, poll_interval: float) -> None:
    """Send queued mail: SMTP when FEEDSVC_SMTP_URL is set, else .eml files in the mail folder.

    Stops cleanly on SIGTERM or Ctrl-C after the message in hand.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s")
    settings = get_settings()
    database = Database(settings.database_url)
    runner = Worker(database, settings, batch_size=batch_size, poll_interval=poll_interval)
    try:
        if once:
            stats = runner.drain()
        else:
            stop = threading.Event()

            def _stop(_signum: int, _frame: FrameType | None) -> None:
                stop.set()

            signal.signal(signal.SIGTERM, _stop)
            signal.signal(signal.SIGINT, _stop)
            click.echo(f"worker {runner.owner}: sending to {settings.smtp_url.split('@')[-1] or settings.mail_dir}")
            stats = runner.run(stop)
    finally:
        database.dispose()
    click.echo(
        f"worker {runner.owner}: sent {stats.sent}, retried {stats.retried}, failed {stats.failed}, "
        f"skipped {stats.skipped}"
    )
