"""`feedsvc publish` (now or `--at` a time), `feedsvc status`, `feedsvc send pause|resume|cancel` and
`feedsvc schedule move|cancel`: an issue's send, from the shell."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from feedsvc import publishing, schedule
from feedsvc.cli.context import get_settings, open_database, record
from feedsvc.cli.progress import Counts, ProgressBar
from feedsvc.config import Settings
from feedsvc.content.model import Issue
from feedsvc.db.engine import Database
from feedsvc.outbox import sends
from feedsvc.reports import figures


@click.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check and count recipients per section set; change nothing.")
@click.option("--wait", is_flag=True, help="Then show the send's progress until it is finished.")
@click.option(
    "--at",
    "at",
    default="",
    metavar="TIME",
    help="Publish at TIME instead (2024-01-22T08:00+08:00; no offset: the publication's time zone). "
    "`feedsvc worker` fires it.",
)
def publish(path: Path, dry_run: bool, wait: bool, at: str) -> None:
    """Publish the issue in PATH: check it, build the site, record it and queue its mail.

    One message per active subscriber who chose at least one of the issue's sections; publishing the
    same issue again queues nothing. `feedsvc worker` does the sending.
    """
    settings = get_settings()
    with open_database(settings) as database:
        if dry_run or at:
            issue = _checked(path, settings)
            if dry_run:
                _plan(database, issue)
            else:
                _schedule(database, path, at)
            return
        try:  # publish_issue reads and parses the file itself, once
            with database.session() as session:
                published = publishing.publish_issue(session, settings, path)
                record(session, "publish", f"issue {published.issue.number} from {path.name}")
        except publishing.PublishError as exc:
            raise click.ClickException(str(exc)) from exc
        _report(path, published)
        if wait:
            _wait(database, published.issue.number)


def _checked(path: Path, settings: Settings) -> Issue:
    """The parsed issue, its warnings printed; a refusal is a clean CLI error."""
    try:
        issue = publishing.check(path, settings)
    except publishing.PublishError as exc:
        raise click.ClickException(str(exc)) from exc
    _warn(path, issue)
    return issue


def _warn(path: Path, issue: Issue) -> None:
    for warning in issue.warnings:
        click.echo(f"warning: {path}:{warning}", err=True)


def _plan(database: Database, issue: Issue) -> None:
    with database.session(readonly=True) as session:
        per_variant, skipped = sends.plan(session, issue.slugs)
    click.echo(f"issue {issue.number}: {sum(per_variant.values())} recipient(s) would get mail")
    for variant, count in per_variant.items():
        click.echo(f"  {count:>8}  {variant.replace(';', ', ')}")
    click.echo(f"  {skipped:>8}  active subscriber(s) with none of their sections in this issue (skipped)")


def _report(path: Path, published: publishing.Published) -> None:
    issue = published.issue
    _warn(path, issue)
    if published.copied:
        click.echo(f"copied {path} to {published.placed}")
    site = published.site
    click.echo(f"site: {site.issues} issue(s), {site.files} files in {site.out_dir}")
    result = published.result
    if result.already_published:
        click.echo(f"issue {issue.number} was published before: nothing new queued")
    else:
        click.echo(
            f"issue {issue.number}: queued {result.enqueued} message(s); "
            f"{result.skipped_no_sections} active subscriber(s) chose none of its sections (skipped)"
        )


def _schedule(database: Database, path: Path, at: str) -> None:
    settings = get_settings()
    try:
        due_at = schedule.parse_time(at, settings.publication)
        with database.session() as session:
            made = schedule.schedule(session, settings, path, due_at)
            record(session, "schedule", f"issue {made.issue_number} at {made.local(settings.publication)}")
    except (schedule.ScheduleError, publishing.PublishError) as exc:
        raise click.ClickException(str(exc)) from exc
    when = made.local(settings.publication)
    click.echo(f"issue {made.issue_number}: scheduled for {when}; `feedsvc worker` fires it")


def _wait(database: Database, number: int, interval: float = 0.5, stall_warning: float = 30.0) -> None:
    bar = ProgressBar(label=f"issue {number}")
    last_done, last_change, warned = -1, time.monotonic(), False
    while True:
        with database.session(readonly=True) as session:
            [found] = sends.counts(session, [number])
        counts = _counts(found)
        if counts.remaining == 0 or (found.state == sends.STOPPED and counts.sending == 0):
            bar.finish(counts)
            return
        bar.update(counts)
        if counts.done != last_done:
            last_done, last_change = counts.done, time.monotonic()
        elif not warned and time.monotonic() - last_change > stall_warning:
            state = f"the send is {found.state}" if found.state != sends.RUNNING else "is `feedsvc worker` running?"
            click.echo(f"\nno progress for {stall_warning:.0f} s: {state}", err=True)
            warned = True
        time.sleep(interval)


def _counts(found: sends.IssueCounts) -> Counts:
    return Counts(
        queued=found.queued,
        sending=found.sending,
        sent=found.sent,
        failed=found.failed,
        skipped=found.skipped,
        cancelled=found.cancelled,
    )


@click.command()
@click.argument("numbers", nargs=-1, type=int)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="A JSON list: number, queued, sending, sent, failed, skipped, bounced_hard, bounced_soft, policy, "
    "complaints, complaint_rate.",
)
def status(numbers: tuple[int, ...], as_json: bool) -> None:
    """Mail of each published issue (or of issue NUMBERS) by state."""
    settings = get_settings()
    with open_database(settings) as database, database.session(readonly=True) as session:
        found = sends.counts(session, list(numbers) or None)
        status_list = figures.send_status(session, list(numbers) or None) if as_json else []
        waiting = [s for s in schedule.pending(session) if not numbers or s.issue_number in numbers]
    if as_json:
        click.echo(json.dumps(status_list, indent=2))
        return
    for s in waiting:
        click.echo(f"issue {s.issue_number}: scheduled for {s.local(settings.publication)} ({s.source_name})")
    if not found and waiting:
        return
    if not found:
        click.echo("no issue has been published")
        return
    header = ("issue", "send", "queued", "sending", "sent", "failed", "skipped", "cancelled")
    click.echo("{:>6} {:<10} {:>8} {:>8} {:>8} {:>7} {:>8} {:>9}".format(*header))
    for c in found:
        click.echo(
            f"{c.number:>6} {c.progress:<10} {c.queued:>8} {c.sending:>8} {c.sent:>8} {c.failed:>7} {c.skipped:>8} "
            f"{c.cancelled:>9}"
        )


@click.group("send")
def send_group() -> None:
    """Pause, resume or cancel the send of an issue."""


def _control(number: int, action: str) -> None:
    settings = get_settings()
    with open_database(settings) as database:
        try:
            with database.session() as session:
                if action == "pause":
                    sends.pause(session, number)
                    click.echo(f"issue {number}: paused (messages already being sent finish)")
                elif action == "resume":
                    requeued = sends.resume(session, number)
                    extra = f"; {requeued} cancelled message(s) queued again" if requeued else ""
                    click.echo(f"issue {number}: running{extra}")
                else:
                    cancelled = sends.cancel(session, number)
                    click.echo(f"issue {number}: cancelled, {cancelled} queued message(s) will not be sent")
                record(session, action, f"issue {number}")
        except sends.SendError as exc:
            raise click.ClickException(str(exc)) from exc


@send_group.command("pause")
@click.argument("number", type=int)
def pause_command(number: int) -> None:
    """Stop sending issue NUMBER for now; `send resume` carries on where it stopped."""
    _control(number, "pause")


@send_group.command("resume")
@click.argument("number", type=int)
def resume_command(number: int) -> None:
    """Carry on sending issue NUMBER (after a pause, or the rest after a cancel)."""
    _control(number, "resume")


@send_group.command("cancel")
@click.argument("number", type=int)
def cancel_command(number: int) -> None:
    """Send nothing more of issue NUMBER."""
    _control(number, "cancel")


@click.group("schedule")
def schedule_group() -> None:
    """Move or cancel a scheduled publish before it fires (`feedsvc status` lists them)."""


@schedule_group.command("move")
@click.argument("number", type=int)
@click.option("--at", "at", required=True, metavar="TIME", help="The new time (2024-01-22T08:00+08:00).")
def schedule_move(number: int, at: str) -> None:
    """Publish issue NUMBER at TIME instead."""
    settings = get_settings()
    with open_database(settings) as database:
        try:
            due_at = schedule.parse_time(at, settings.publication)
            with database.session() as session:
                moved = schedule.move(session, settings, number, due_at)
                record(session, "schedule", f"issue {number} at {moved.local(settings.publication)}")
        except schedule.ScheduleError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"issue {number}: scheduled for {moved.local(settings.publication)}")


@schedule_group.command("cancel")
@click.argument("number", type=int)
def schedule_cancel(number: int) -> None:
    """Do not publish issue NUMBER at its time (it can be published or scheduled again)."""
    settings = get_settings()
    with open_database(settings) as database:
        try:
            with database.session() as session:
                schedule.cancel(session, number)
                record(session, "schedule", f"issue {number}: schedule cancelled")
        except schedule.ScheduleError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"issue {number}: schedule cancelled")
