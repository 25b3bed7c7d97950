"""The one publish sequence: a refused publish leaves issues/, the site and the queue as they were."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from feedsvc import publishing
from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.outbox import sends


@pytest.fixture
def folder_settings(settings: Settings, tmp_path: Path, seed_path: Path) -> Settings:
    issues = tmp_path / "issues"
    issues.mkdir()
    shutil.copyfile(seed_path, issues / seed_path.name)
    return settings.with_overrides(issues_dir=issues)


def test_a_file_reusing_a_number_is_refused_before_anything_is_copied(
    db: Database, folder_settings: Settings, tmp_path: Path, seed_path: Path
) -> None:
    candidate = tmp_path / "elsewhere" / "copy-of-2024-01-22-398.md"
    candidate.parent.mkdir()
    shutil.copyfile(seed_path, candidate)
    before = sorted(p.name for p in folder_settings.issues_dir.iterdir())
    with db.session() as s, pytest.raises(publishing.PublishError, match="issue number 398 is already used"):
        publishing.publish_issue(s, folder_settings, candidate)
    assert sorted(p.name for p in folder_settings.issues_dir.iterdir()) == before
    assert not folder_settings.site_dir.exists()
    with db.session(readonly=True) as s:
        assert sends.counts(s) == []


def test_a_failing_build_removes_the_copy_it_made(
    db: Database, folder_settings: Settings, tmp_path: Path, seed_path: Path
) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(folder_settings.templates_dir, templates)
    (templates / "web" / "issue.html").write_text(
        "{% extends 'web/base.html' %}{% block content %}{{ x.y() }}", "utf-8"
    )
    broken = folder_settings.with_overrides(templates_dir=templates)
    candidate = tmp_path / "2024-01-29-399.md"
    candidate.write_text(seed_path.read_text(encoding="utf-8").replace("第 398 期", "第 399 期"), encoding="utf-8")
    with db.session() as s, pytest.raises(publishing.PublishError, match="site build failed"):
        publishing.publish_issue(s, broken, candidate)
    assert not (folder_settings.issues_dir / candidate.name).exists()


def test_publish_copies_builds_and_queues_once(
    db: Database, folder_settings: Settings, tmp_path: Path, seed_path: Path
) -> None:
    candidate = tmp_path / "2024-01-29-399.md"
    candidate.write_text(seed_path.read_text(encoding="utf-8").replace("第 398 期", "第 399 期"), encoding="utf-8")
    with db.session() as s:
        published = publishing.publish_issue(s, folder_settings, candidate)
    assert published.copied and published.placed == folder_settings.issues_dir / candidate.name
    assert published.site.issues == 2
    assert (folder_settings.site_dir / "issues" / "399.html").exists()
    with db.session() as s:
        again = publishing.publish_issue(s, folder_settings, candidate)
    assert again.result.already_published and not again.copied


def test_a_consented_import_row_that_signed_up_meanwhile_is_left_alone(db: Database, settings: Settings) -> None:
    # Two consented imports of one address at once (two tabs, or the admin page and the CLI), through two
    # real sessions: the second looks before the first commits. On PostgreSQL it then meets the first's row
    # at INSERT (no IntegrityError, no 500); on SQLite writers queue, so it finds the row when it looks.
    import threading

    import sqlalchemy as sa

    from feedsvc.db.models import Subscriber, SubscriberSection
    from feedsvc.subscribers import importer

    first = importer.read(b"email,sections\nrace@example.org,industry\n", settings)
    second = importer.read(b"email,sections\nrace@example.org,technology\n", settings)
    outcome: dict[str, object] = {}

    def import_second() -> None:
        try:
            with db.session() as s:
                outcome["result"] = importer.import_rows(s, settings, second, consented=True)
        except Exception as exc:  # reported below, on the test's thread
            outcome["error"] = exc

    with db.session() as holder:
        assert importer.import_rows(holder, settings, first, consented=True).activated == 1
        racer = threading.Thread(target=import_second)
        racer.start()
        if db.dialect == "postgresql":  # hold the commit until the second import waits on this row
            pid = holder.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            waiting = sa.text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")
            deadline = time.monotonic() + 30
            with db.engine.connect() as watcher:
                while not watcher.execute(waiting, {"pid": pid}).scalar_one():
                    assert time.monotonic() < deadline, "the second import never waited for the first"
                    time.sleep(0.01)
    racer.join(timeout=30)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert isinstance(result, importer.ImportResult)
    assert (result.activated, result.unchanged) == (0, 1)
    with db.session(readonly=True) as s:
        assert s.scalars(sa.select(Subscriber.status).where(Subscriber.email == "race@example.org")).all() == ["active"]
        assert s.scalars(sa.select(SubscriberSection.section)).all() == ["industry"]  # the first import's choice
