"""Scheduled publishing: made, shown, moved, cancelled, refused in the past, fired once by a test clock."""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy import select

from feedsvc import schedule
from feedsvc.cli import main
from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.db.models import SCHEDULE_CANCELLED, SCHEDULE_FIRED, PublishedIssue, ScheduledIssue
from feedsvc.outbox import sends
from feedsvc.search import query as search_query

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2024, 1, 21, 0, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def candidate(tmp_path: Path, seed_path: Path) -> Path:
    path = tmp_path / "next" / "2024-01-29-399.md"
    path.parent.mkdir()
    path.write_text(seed_path.read_text(encoding="utf-8").replace("第 398 期", "第 399 期"), encoding="utf-8")
    return path


def test_parse_time_reads_offsets_and_defaults_to_the_publication_zone(settings: Settings) -> None:
    pub = settings.publication
    assert schedule.parse_time("2024-01-22T08:00+08:00", pub) == datetime(2024, 1, 22, 0, 0, tzinfo=UTC)
    assert schedule.parse_time("2024-01-22T08:00", pub) == datetime(2024, 1, 22, 0, 0, tzinfo=UTC)  # Asia/Shanghai
    assert schedule.format_local(datetime(2024, 1, 22, 0, 0, tzinfo=UTC), pub) == "2024-01-22 08:00 (Asia/Shanghai)"
    with pytest.raises(schedule.ScheduleError, match="not a date-time"):
        schedule.parse_time("next monday", pub)


def test_a_schedule_in_the_past_is_refused(db: Database, settings: Settings, candidate: Path) -> None:
    with db.session() as s, pytest.raises(schedule.ScheduleError, match="in the past"):
        schedule.schedule(s, settings, candidate, NOW - timedelta(minutes=1), now=NOW)
    with db.session(readonly=True) as s:
        assert schedule.pending(s) == []


def test_life_cycle_fires_once_at_its_time(db: Database, settings: Settings, candidate: Path) -> None:
    clock = Clock(NOW)
    due = NOW + timedelta(hours=2)
    with db.session() as s:
        schedule.schedule(s, settings, candidate, due, now=NOW)
    with db.session() as s, pytest.raises(schedule.ScheduleError, match="scheduled already"):
        schedule.schedule(s, settings, candidate, due, now=NOW)
    with db.session() as s:
        schedule.move(s, settings, 399, due + timedelta(hours=1), now=NOW)
    candidate.unlink()  # the schedule holds the file's bytes
    clock.now = due + timedelta(minutes=30)
    assert schedule.fire_due(db, settings, "w1", clock) == []  # moved: not due yet
    with db.session(readonly=True) as s:
        assert s.get(PublishedIssue, 399) is None
        assert [p.issue_number for p in schedule.pending(s)] == [399]
    clock.now = due + timedelta(hours=1)
    assert schedule.fire_due(db, settings, "w1", clock) == [399]
    assert schedule.fire_due(db, settings, "w2", clock) == []
    with db.session(readonly=True) as s:
        assert s.get(PublishedIssue, 399) is not None
        assert [c.number for c in sends.counts(s)] == [399]
        row = s.scalars(select(ScheduledIssue)).one()
        assert (row.state, row.fired_by) == (SCHEDULE_FIRED, "w1")
        assert {h.issue_number for h in search_query.search(s, "抖音").hits} == {398, 399}  # indexed at publish
    assert (settings.issues_dir / candidate.name).exists()
    assert (settings.site_dir / "current").exists() or any(settings.site_dir.iterdir())
    with db.session() as s, pytest.raises(schedule.ScheduleError, match="no schedule waiting"):
        schedule.cancel(s, 399)


def test_a_cancelled_schedule_never_fires(db: Database, settings: Settings, candidate: Path) -> None:
    with db.session() as s:
        schedule.schedule(s, settings, candidate, NOW + timedelta(hours=1), now=NOW)
    with db.session() as s:
        schedule.cancel(s, 399, now=NOW)
    assert schedule.fire_due(db, settings, "w1", Clock(NOW + timedelta(days=1))) == []
    with db.session(readonly=True) as s:
        assert s.scalars(select(ScheduledIssue.state)).one() == SCHEDULE_CANCELLED
        assert s.get(PublishedIssue, 399) is None


def _race(
    settings: Settings, owner: str, barrier: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue
) -> None:
    database = Database(settings.database_url)
    try:
        barrier.wait(timeout=30)
        out.put((owner, schedule.fire_due(database, settings, owner, Clock(NOW + timedelta(hours=2)))))
    finally:
        database.dispose()


def test_two_worker_processes_racing_fire_it_once(db: Database, settings: Settings, candidate: Path) -> None:
    with db.session() as s:
        schedule.schedule(s, settings, candidate, NOW + timedelta(hours=1), now=NOW)
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_race, args=(settings, f"w{i}", barrier, out)) for i in (1, 2)]
    for worker in workers:
        worker.start()
    results = dict(out.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert sorted(results.values()) == [[], [399]]
    with db.session(readonly=True) as s:
        row = s.scalars(select(ScheduledIssue)).one()
        assert row.state == SCHEDULE_FIRED and results[row.fired_by] == [399]


def _run(args: list[str], settings: Settings) -> tuple[int, str]:
    env = {
        "FEEDSVC_CONFIG": str(ROOT / "feedsvc.toml"),
        "FEEDSVC_VAR_DIR": str(settings.var_dir),
        "FEEDSVC_SECRET_KEY": settings.secret_key,
        "DATABASE_URL": settings.database_url,
        "FEEDSVC_ISSUES_DIR": str(settings.issues_dir),
    }
    result = CliRunner().invoke(main, args, env=env)
    return result.exit_code, result.output


def test_cli_schedules_shows_moves_and_cancels(db: Database, settings: Settings, candidate: Path) -> None:
    code, out = _run(["publish", str(candidate), "--at", "2999-01-22T08:00+08:00"], settings)
    assert code == 0, out
    assert "scheduled for 2999-01-22 08:00 (Asia/Shanghai)" in out
    code, out = _run(["status"], settings)
    assert "issue 399: scheduled for 2999-01-22 08:00 (Asia/Shanghai)" in out
    code, out = _run(["schedule", "move", "399", "--at", "2999-01-23T00:00Z"], settings)
    assert code == 0 and "2999-01-23 08:00 (Asia/Shanghai)" in out
    code, out = _run(["schedule", "cancel", "399"], settings)
    assert code == 0 and "cancelled" in out
    code, out = _run(["publish", str(candidate), "--at", "2000-01-01T08:00"], settings)
    assert code != 0 and "in the past" in out
    with db.session(readonly=True) as s:
        assert s.get(PublishedIssue, 399) is None


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite runs the two one after the other
def test_a_cancel_waiting_on_a_schedule_that_fires_meanwhile_says_so(
    db: Database, settings: Settings, candidate: Path
) -> None:
    with db.session() as s:
        schedule.schedule(s, settings, candidate, NOW + timedelta(hours=1), now=NOW)
    outcome: queue.Queue[object] = queue.Queue()

    def cancel() -> None:  # read the row while it is pending, then wait on its lock
        try:
            with db.session() as s:
                schedule.cancel(s, 399, now=NOW)
            outcome.put("cancelled")
        except schedule.ScheduleError as exc:
            outcome.put(exc)

    firing = db.engine.connect()  # what `_fire` does first: the claim, held while the issue is published
    try:
        firing.execute(sa.update(ScheduledIssue).where(ScheduledIssue.issue_number == 399).values(state=SCHEDULE_FIRED))
        waiter = threading.Thread(target=cancel)
        waiter.start()
        deadline = time.monotonic() + 10
        while not _blocked(db) and time.monotonic() < deadline:
            time.sleep(0.02)
        firing.commit()
    finally:
        firing.close()
    waiter.join(10)
    result = outcome.get(timeout=1)
    assert isinstance(result, schedule.ScheduleError) and "no schedule waiting to fire" in str(result)
    with db.session(readonly=True) as s:
        assert s.scalar(sa.select(ScheduledIssue.state)) == SCHEDULE_FIRED  # never relabelled cancelled


def _blocked(db: Database) -> bool:
    """Whether some session of this database waits on a lock now."""
    with db.engine.connect() as connection:
        waiting = (
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return bool(connection.exec_driver_sql(waiting).scalar_one())
