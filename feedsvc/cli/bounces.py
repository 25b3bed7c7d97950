"""`feedsvc bounces fetch|serve`: take in what comes back, from the bounce mailbox (IMAP) or from the MTA (LMTP).

A thin shell: options, signals, log lines; `feedsvc.bounces.imap` and `feedsvc.bounces.lmtp` do the mechanics and
`feedsvc.bounces.intake.take_in` the matching and recording.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType

import click

from feedsvc.bounces import imap, lmtp
from feedsvc.bounces.classify import BouncePolicy
from feedsvc.bounces.intake import take_in
from feedsvc.cli.context import get_settings, open_database
from feedsvc.config import ConfigError, Settings


@click.group("bounces")
def bounces_group() -> None:
    """Take in bounces and complaints: from an IMAP mailbox, or handed over by the MTA over LMTP."""


def _max_bytes(settings: Settings) -> int:
    try:
        return BouncePolicy.from_env(settings.extra).max_bytes
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _logging(name: str) -> None:
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


@bounces_group.command("fetch")
@click.option("--once", is_flag=True, help="Read the mailbox once, then exit (non-zero if it could not be read).")
@click.option(
    "--interval",
    default=imap.DEFAULT_INTERVAL,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds between rounds.",
)
def fetch(once: bool, interval: float) -> None:
    """Read FEEDSVC_BOUNCE_IMAP_URL: reports are recorded and moved to feedsvc-processed; other mail stays put."""
    _logging("bounces-fetch")
    settings = get_settings()
    try:
        mailbox = imap.Mailbox.from_env(settings.extra)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    max_bytes = _max_bytes(settings)
    state_file = imap.state_file_for(settings.var_dir, mailbox)
    with open_database(settings) as database:

        def handle(raw: bytes) -> bool:
            return take_in(database, settings, raw, source="imap").handled

        if once:
            try:
                result = imap.fetch_once(mailbox, handle, max_bytes=max_bytes, state_file=state_file)
            except imap.MailboxError as exc:
                raise click.ClickException(str(exc)) from exc
            click.echo(
                f"{mailbox.shown}: {result.handled} handled (moved to {mailbox.processed}), {result.left} left, "
                f"{result.failed} failed, {result.skipped} skipped"
            )
            if result.failed:
                raise SystemExit(1)
            return
        stop = _stop_on_signals()
        click.echo(f"bounces fetch: reading {mailbox.shown} every {interval:g} s", err=True)
        imap.run_fetcher(mailbox, handle, max_bytes=max_bytes, state_file=state_file, interval=interval, stop=stop)


@bounces_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", default=2424, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free).")
@click.option("--smtp", "use_smtp", is_flag=True, help="Speak SMTP instead of LMTP (one answer per message).")
def serve(host: str, port: int, use_smtp: bool) -> None:
    """Receive reports from the MTA (its transport map: bounce domain -> lmtp:inet:127.0.0.1:2424)."""
    _logging("bounces-serve")
    settings = get_settings()
    max_bytes = _max_bytes(settings)
    source = "smtp" if use_smtp else "lmtp"
    with open_database(settings) as database:

        def take(raw: bytes, recipients: Sequence[str]) -> bool:
            return take_in(database, settings, raw, source=source, envelope_to=tuple(recipients)).handled

        def ready(bound_host: str, bound_port: int) -> None:
            click.echo(f"bounces serve: {source.upper()} on {bound_host}:{bound_port}", err=True)

        lmtp.serve(take, host=host, port=port, lmtp=not use_smtp, max_bytes=max_bytes, ready=ready)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return stop
