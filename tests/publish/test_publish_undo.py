"""A publish that fails at any step leaves issues/, the site and the database as they were; each file is
parsed once; hostile issue files in issues/ do not break the admin pages."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from feedsvc import publishing
from feedsvc.config import Settings
from feedsvc.content import reader
from feedsvc.db.engine import Database
from feedsvc.outbox import sends
from feedsvc.site.build import build
from feedsvc.web import create_app

HUGE = "99999999999999999999999999999"


@pytest.fixture
def live_settings(settings: Settings, tmp_path: Path, seed_path: Path) -> Settings:
    """issues/ with the seed, and a site already built from it."""
    issues = tmp_path / "issues"
    issues.mkdir()
    shutil.copyfile(seed_path, issues / seed_path.name)
    build(issues, settings.site_dir, settings.publication, settings.templates_dir)
    return settings.with_overrides(issues_dir=issues)


def _candidate(tmp_path: Path, seed_path: Path, front: str = "", number: int = 399) -> Path:
    path = tmp_path / "incoming" / f"2024-01-29-{number}.md"
    path.parent.mkdir(exist_ok=True)
    text = seed_path.read_text(encoding="utf-8").replace("第 398 期", f"第 {number} 期")
    path.write_text(f"---\n{front}\n---\n{text}" if front else text, encoding="utf-8")
    return path


def _unreal_date(s: Settings, tmp: Path, seed: Path, _mp: pytest.MonkeyPatch) -> tuple[Settings, Path]:
    return s, _candidate(tmp, seed, "date: 2024-02-30")


def _huge_number(s: Settings, tmp: Path, seed: Path, _mp: pytest.MonkeyPatch) -> tuple[Settings, Path]:
    return s, _candidate(tmp, seed, f"number: {HUGE}")


def _broken_neighbour(s: Settings, tmp: Path, seed: Path, _mp: pytest.MonkeyPatch) -> tuple[Settings, Path]:
    (s.issues_dir / "2024-01-15-397.md").write_bytes("# 坏\n\n第 397 期\n".encode("gb18030"))
    return s, _candidate(tmp, seed)


def _other_content_in_place(s: Settings, tmp: Path, seed: Path, _mp: pytest.MonkeyPatch) -> tuple[Settings, Path]:
    candidate = _candidate(tmp, seed)
    (s.issues_dir / candidate.name).write_text("something else", encoding="utf-8")
    return s, candidate


def _broken_template(s: Settings, tmp: Path, seed: Path, _mp: pytest.MonkeyPatch) -> tuple[Settings, Path]:
    templates = tmp / "templates"
    shutil.copytree(s.templates_dir, templates)
    (templates / "web" / "issue.html").write_text("{% extends 'web/base.html' %}{% block content %}{{ x.y() }}")
    return s.with_overrides(templates_dir=templates), _candidate(tmp, seed)


def _database_down(s: Settings, tmp: Path, seed: Path, mp: pytest.MonkeyPatch) -> tuple[Settings, Path]:
    def refuse(*_args: object, **_kw: object) -> None:
        raise OperationalError("INSERT INTO issues", {}, Exception("disk full"))

    mp.setattr(sends, "publish", refuse)
    return s, _candidate(tmp, seed)


def _snapshot(settings: Settings) -> tuple[dict[str, bytes], str, dict[str, bytes]]:
    def files(folder: Path) -> dict[str, bytes]:
        return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    return files(settings.issues_dir), os.readlink(settings.site_dir), files(settings.site_dir)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_unreal_date, "'2024-02-30' cannot be read"),
        (_huge_number, "is too large"),
        (_broken_neighbour, "is not UTF-8"),
        (_other_content_in_place, "exists with other content"),
        (_broken_template, "site build failed"),
        (_database_down, "recording the issue failed"),
    ],
    ids=["check-date", "check-number", "folder", "place", "build", "database"],
)
def test_a_failing_step_leaves_issues_the_site_and_the_database_as_they_were(
    db: Database,
    live_settings: Settings,
    tmp_path: Path,
    seed_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make: Callable[..., tuple[Settings, Path]],
    message: str,
) -> None:
    settings, candidate = make(live_settings, tmp_path, seed_path, monkeypatch)
    before = _snapshot(settings)
    with pytest.raises(publishing.PublishError, match=message), db.session() as s:
        publishing.publish_issue(s, settings, candidate)
    assert _snapshot(settings) == before
    with db.session(readonly=True) as s:
        assert sends.counts(s) == []


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often each issue file is parsed from now on (by file name)."""
    parsed: Counter[str] = Counter()
    real = reader.parse_text

    def counting(text: str, publication: object, source: str = "<issue>") -> reader.Issue:
        parsed[Path(source).name] += 1
        return real(text, publication, source=source)  # type: ignore[arg-type]

    monkeypatch.setattr(reader, "parse_text", counting)
    return parsed


def test_a_publish_parses_each_issue_file_once(
    db: Database, live_settings: Settings, tmp_path: Path, seed_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = _count_parses(monkeypatch)
    candidate = _candidate(tmp_path, seed_path)
    with db.session() as s:
        published = publishing.publish_issue(s, live_settings, candidate)
    assert published.site.issues == 2 and not published.result.already_published
    assert parsed == {seed_path.name: 1, candidate.name: 1}


@pytest.mark.parametrize("front", ["date: 2024-02-30", f"number: {HUGE}", "number: 398\nsubject: [1, 2]"])
def test_admin_pages_answer_with_a_hostile_file_in_issues(live_settings: Settings, front: str) -> None:
    text = "# 行业动态周报\n\n## 资本\n\n### 新闻\n\n正文。\n"
    (live_settings.issues_dir / "2024-01-29-399.md").write_text(f"---\n{front}\n---\n{text}", encoding="utf-8")
    from auth_support import add_staff, log_in

    app = create_app(live_settings, TESTING=True)
    try:
        add_staff(app.extensions["feedsvc.db"], "owner@example.org", "owner")
        client = app.test_client()
        log_in(client, "owner@example.org")
        for path in ("/admin/", "/admin/issues/398", f"/admin/issues/{HUGE}", "/admin/issues/399"):
            assert client.get(path).status_code < 500, path
        assert "2024-01-29-399.md" in client.get("/admin/").get_data(as_text=True)
    finally:
        app.extensions["feedsvc.db"].dispose()


def test_the_publish_command_parses_each_issue_file_once(
    db: Database, live_settings: Settings, tmp_path: Path, seed_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from builders import cli_env
    from click.testing import CliRunner

    from feedsvc.cli import main

    parsed = _count_parses(monkeypatch)
    candidate = _candidate(tmp_path, seed_path)
    env = cli_env(live_settings)
    result = CliRunner().invoke(main, ["publish", str(candidate)], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "queued" in result.output
    assert parsed == {seed_path.name: 1, candidate.name: 1}
