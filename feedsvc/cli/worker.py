"""`feedsvc worker`: send the outbox (issue mail and transactional mail) through the configured transport.

A thin shell over `feedsvc.outbox.worker.SendWorker`: options, signals (drain on the first, stop at once on the
second), waiting for the database at start-up, deciding queued sign-up requests (`requests.Decider`, a thread),
housekeeping every minute, and a progress bar of the sends under way (on a terminal; a log line every 30 s
otherwise).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from types import FrameType

import click
from sqlalchemy.exc import DBAPIError

from feedsvc.cli.context import get_settings, open_database, setup_logs
from feedsvc.cli.progress import Counts, ProgressBar
from feedsvc.db.engine import Database, utcnow
from feedsvc.ops import metrics
from feedsvc.ops.outage import DatabaseOutage
from feedsvc.outbox import housekeeping, sends
from feedsvc.outbox.worker import SendWorker, WorkerStats
from feedsvc.subscribers import requests

log = logging.getLogger("feedsvc.worker")
HOUSEKEEPING_EVERY = 60.0
SCHEDULE_EVERY = 5.0
PROGRESS_EVERY = 2.0
DECIDER_STOP_SECONDS = 10.0  # a stopping worker waits this long for the sign-up batch being decided


@click.command()
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@click.option(
    "--concurrency",
    "-c",
    default=4,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Sending threads, each with its own persistent SMTP connection.",
)
@click.option("--rate", type=click.FloatRange(min=0), help="Messages per second at most (default FEEDSVC_SEND_RATE).")
@click.option("--batch", "batch_size", default=0, show_default=True, help="Rows claimed at a time (0: automatic).")
@click.option("--poll", "poll_interval", default=1.0, show_default=True, help="Seconds to wait when nothing is due.")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: when on a terminal).")
@click.option(
    "--metrics-port", type=click.IntRange(0, 65535), help="Serve Prometheus metrics on this port (0: any free port)."
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Address the metrics are served on.")
def worker(
    once: bool,
    concurrency: int,
    rate: float | None,
    batch_size: int,
    poll_interval: float,
    progress: bool | None,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Send queued mail: SMTP when FEEDSVC_SMTP_URL is set, else .eml files in the mail folder.

    Several workers (processes or machines on one PostgreSQL) share the queue without sending anything
    twice. Stops cleanly on SIGTERM or Ctrl-C: rows not started are handed back, messages in hand finish,
    exit 0. A second SIGTERM or Ctrl-C stops at once (exit 128 + the signal number: 143, 130); the rows it
    held go again after their lease. A database that is away (a PostgreSQL restart) is waited for.
    """
    from feedsvc.cli.dkim import check_at_start  # DKIM's libraries only for this check, not in every import

    setup_logs()
    if metrics_port is None:
        metrics.discard()  # nobody scrapes this process: count nothing, and leave prometheus_client unloaded
    settings = get_settings()
    check_at_start(settings)
    with open_database(settings, migrated=False) as database:
        _wait_for_database(database)
        if metrics_port is not None:
            _serve_metrics(database, metrics_host, metrics_port)
        show = sys.stderr.isatty() if progress is None else progress
        bar = ProgressBar(sys.stderr, label="sending", log_interval=30.0)
        runner = SendWorker(
            database,
            settings,
            concurrency=concurrency,
            rate=rate,
            batch_size=batch_size,
            poll_interval=poll_interval,
        )
        last = {"housekeeping": float("-inf"), "progress": float("-inf"), "schedule": time.monotonic()}
        runner.safely("scheduled publishing", lambda: _fire_schedules(database, runner.owner))
        watched: set[int] = set()

        def tick(_stats: WorkerStats) -> None:
            now = time.monotonic()
            if now - last["housekeeping"] >= HOUSEKEEPING_EVERY:
                last["housekeeping"] = now
                runner.safely("housekeeping", lambda: _housekeeping(database))
            if now - last["schedule"] >= SCHEDULE_EVERY:
                last["schedule"] = now
                runner.safely("scheduled publishing", lambda: _fire_schedules(database, runner.owner))
            if show and now - last["progress"] >= PROGRESS_EVERY:
                last["progress"] = now
                counts = runner.safely("progress", lambda: _sends_under_way(database, watched))
                if isinstance(counts, Counts) and counts.total:
                    bar.update(counts)

        runner.on_tick = tick
        stop = threading.Event()
        deciding: threading.Thread | None = None
        if once:
            runner.safely("sign-up requests", lambda: requests.process(database, settings))
        else:
            _on_stop_signals(stop, runner)
            decider = requests.Decider(database, settings, on_decided=runner.wake, outage=runner.outage)
            deciding = decider.start(stop)
            where = settings.smtp_url.rpartition("@")[2] or settings.mail_dir
            log.info(
                "worker %s: %d connection(s) to %s",
                runner.owner,
                concurrency,
                where,
                extra={"owner": runner.owner, "concurrency": concurrency, "transport": str(where)},
            )
        stats = runner.run(stop, until_idle=once)
        if deciding is not None:
            stop.set()
            deciding.join(DECIDER_STOP_SECONDS)
        if show:
            counts = _sends_under_way(database, watched)
            if counts.total:
                bar.finish(counts)
    click.echo(
        f"worker {runner.owner}: sent {stats.sent}, retried {stats.retried}, failed {stats.failed}, "
        f"skipped {stats.skipped}"
    )


def _on_stop_signals(stop: threading.Event, runner: SendWorker) -> None:
    """SIGTERM or SIGINT: drain (hand back what is not started, finish what is in hand, record, exit 0).
    A second one during the drain stops at once with exit status 128 + the signal number; the rows then
    in hand stay leased and another worker takes them when the lease expires."""

    def _stop(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning(
                "%s again: stopping at once; %d row(s) in hand go back to the queue when their lease expires",
                name,
                len(runner.held),
            )
            logging.shutdown()
            os._exit(128 + signum)
        log.info("%s: finishing the messages in hand, then exiting (%s again stops at once)", name, name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)


def _wait_for_database(database: Database) -> None:
    """Refuse an unmigrated database (with the fix); wait, with backoff, for one that cannot be reached yet,
    so that a worker started before PostgreSQL (or during its restart) does not exit and crash-loop."""
    outage = DatabaseOutage()
    while True:
        try:
            problem = database.schema_problem()
        except DBAPIError as exc:
            time.sleep(outage.failed("start-up", exc, "waiting for it"))
            continue
        outage.succeeded()
        if problem:
            raise click.ClickException(problem)
        return


def _fire_schedules(database: Database, owner: str) -> None:
    """Publish the scheduled issues that are due (each once, whichever worker gets there first)."""
    from feedsvc import schedule  # the publish sequence (site build, renderer) only once an issue is due

    for number in schedule.fire_due(database, get_settings(), owner):
        log.info("worker %s: published scheduled issue %d", owner, number, extra={"issue": number})


def _serve_metrics(database: Database, host: str, port: int) -> None:
    """Serve /metrics (this process's counters and the outbox's depth) from a background thread."""
    from prometheus_client import start_http_server

    try:
        server, _thread = start_http_server(port, host, registry=metrics.collector(database, own_process=True))
    except OSError as exc:
        raise click.ClickException(f"--metrics-port: cannot listen on {host}:{port}: {exc}") from exc
    bound = server.server_port
    log.info("metrics on http://%s:%d/metrics", host, bound, extra={"metrics_host": host, "metrics_port": bound})


def _housekeeping(database: Database) -> None:
    """Forget what is no longer needed (old rate-limit counters, unconfirmed sign-ups, old transactional rows)."""
    with database.transaction() as connection:
        housekeeping.housekeeping(connection, utcnow())


def _sends_under_way(database: Database, watched: set[int]) -> Counts:
    """Issue mail by state, summed over the sends with rows queued or in flight (and those seen so before)."""
    with database.transaction(readonly=True) as connection:
        every = sends.counts(connection)
    watched.update(c.number for c in every if c.remaining)
    found = [c for c in every if c.number in watched]
    return Counts(
        queued=sum(c.queued for c in found),
        sending=sum(c.sending for c in found),
        sent=sum(c.sent for c in found),
        failed=sum(c.failed for c in found),
        skipped=sum(c.skipped for c in found),
        cancelled=sum(c.cancelled for c in found),
    )
